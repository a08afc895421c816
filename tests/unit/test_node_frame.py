"""The node frame (buildtool.render.node_frame): the lines every Dockerfile shares. Pure logic."""

from __future__ import annotations

from buildtool.render.render import _tidy, node_frame


def test_frame_puts_env_partial_and_sorted_labels_in_their_places():
    text = node_frame.dockerfile("a.b", "stage x", "buildtool/a:h-1", (("A", "1"), ("PATH", "/x:$PATH")),
                                 "RUN true\n", (("k1", "v1"), ("k2", "v2")), 1000, "/home/app")
    assert text == (
        f"{node_frame.HEADER}\n# node: a.b (stage x)\nFROM buildtool/a:h-1\n{node_frame.SHELL}\nUSER 0\n"
        "ENV A=1 \\\n    PATH=/x:$PATH\n\nRUN true\n\n"
        'LABEL k1="v1" \\\n      k2="v2"\nUSER 1000\nWORKDIR /home/app\n'
    )
    assert _tidy(text) == text


def test_frame_without_env_or_partial_keeps_one_blank_line_between_parts():
    text = node_frame.dockerfile("a", "stage x", "p", (), "\n\n", (("k", "v"),), 1, "/w")
    assert "\n\n\n" not in text and text.count("\n\n") == 1 and _tidy(text) == text


def test_frame_label_values_are_taken_literally():
    text = node_frame.dockerfile("a", "s", "p", (), "", (("d", 'say "hi" \\ to $HOME'),), 1, "/w")
    assert 'LABEL d="say \\"hi\\" \\\\ to \\$HOME"' in text
