"""Memoised partials (buildtool.partial_memo) and the node frame (buildtool.node_frame): pure logic."""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
import pytest

from buildtool import node_frame
from buildtool.partial_memo import NotMemoisable, PartialRenderer, template_reads
from buildtool.render import _tidy

MACROS = '{% macro pip(cache) -%}RUN pip --cache {{ cache }}{%- endmacro %}'


@dataclass(frozen=True)
class FakeNode:
    id: str


def env_with(**templates: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.DictLoader({"_macros.j2": MACROS, **templates}),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["shout"] = lambda s: s.upper() + "!"
    return env


def contexts(n: int) -> list[dict]:
    return [{"node": FakeNode(f"n{i}"), "facts": {"os": f"os{i % 2}", "python.version": f"3.{i}"}, "apt": (("curl", "8"),),
             "wheel_cache": f"os{i % 2}-ort"} for i in range(n)]


def test_reads_are_refined_to_the_keys_and_attributes_a_partial_uses():
    env = env_with(p='{% import "_macros.j2" as m %}{{ m.pip(wheel_cache) }} {{ facts["os"] }} {{ node.id }} {% for a, b in apt %}{{ a }}{% endfor %}')
    assert template_reads(env, "p") == {("wheel_cache", None, None), ("facts", "item", "os"), ("node", "attr", "id"), ("apt", None, None)}


def test_a_partial_is_rendered_once_per_distinct_value_of_what_it_reads():
    env = env_with(p='{% import "_macros.j2" as m %}{{ m.pip(wheel_cache) }}\nFROM {{ facts["os"] }}\n')
    renderer = PartialRenderer(env, _tidy)
    texts = [renderer.render("p", c) for c in contexts(6)]  # facts differ in python.version, which p never reads
    assert renderer.renders == 2
    assert texts == [_tidy(env.get_template("p").render(c)) for c in contexts(6)]


def test_a_partial_reading_something_per_node_is_still_right_just_not_shared():
    env = env_with(p='{{ node.id }} on {{ facts["os"] }}\n')
    renderer = PartialRenderer(env, _tidy)
    texts = [renderer.render("p", c) for c in contexts(4)]
    assert texts == ["n0 on os0\n", "n1 on os1\n", "n2 on os0\n", "n3 on os1\n"]
    assert renderer.renders == 4


@pytest.mark.parametrize("source", [
    '{{ facts["os"] | shout }}',  # a filter that is not the stock one
    '{% include "_macros.j2" %}{{ facts["os"] }}',  # includes see the whole context
    '{% import "_macros.j2" as m with context %}{{ facts["os"] }}',
    '{{ facts["os"] | random }}',
    '{{ facts.update({"os": 1}) }}',  # a call that may change what later nodes see
])
def test_partials_outside_the_analysis_render_every_time(source):
    env = env_with(p=source)
    with pytest.raises(NotMemoisable):
        template_reads(env, "p")
    renderer = PartialRenderer(env, _tidy)
    for c in contexts(3):
        renderer.render("p", c)
    assert renderer.renders == 3


def test_an_undefined_read_is_the_render_s_strict_error_not_a_stale_text():
    env = env_with(p='{{ facts["missing"] }}')
    renderer = PartialRenderer(env, _tidy)
    with pytest.raises(jinja2.UndefinedError):
        renderer.render("p", contexts(1)[0])


def test_analysis_is_redone_when_the_environment_reloads_a_changed_template():
    templates = {"_macros.j2": MACROS, "p": '{{ facts["os"] }}'}
    env = jinja2.Environment(loader=jinja2.DictLoader(templates), undefined=jinja2.StrictUndefined)
    assert template_reads(env, "p") == {("facts", "item", "os")}
    templates["p"] = '{{ node.id }}'
    env.cache.clear()  # what render.fresh_templates does when a template changed on disk
    assert template_reads(env, "p") == {("node", "attr", "id")}


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
