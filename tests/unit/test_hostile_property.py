"""Property: an arbitrary string in any string field either fails validation (exit-2 error, never another
exception) or reaches the generated files only where it is safe: as plain grammar-checked text, or inside a
correctly escaped LABEL value. The Dockerfile keeps its instruction lines (no injected RUN)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildtool.config.loader import load_config
from buildtool.errors import UserError
from buildtool.lock.format import load_lock
from buildtool.render.generate import generate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "minimal"
HASH = re.compile(r"h-[0-9a-f]{20}")  # content-hash tags: they change with any input
SAFE = re.compile(r"[A-Za-z0-9._/:@+=,%~-]*")
LABEL_LINE = re.compile(r'(?:LABEL |      )[A-Za-z0-9._/-]+="((?:[^"\\$\n]|\\["\\$])*)"(?: \\)?')
INSTRUCTION = re.compile(r"^(FROM|RUN|ENV|LABEL|USER|WORKDIR|COPY|ADD|SHELL|ARG|ENTRYPOINT|CMD|VOLUME|EXPOSE|ONBUILD|HEALTHCHECK|STOPSIGNAL)\b", re.M)


def q(value: str) -> str:
    return json.dumps(value)


FIELDS = {
    "workdir": ("workdir: /home/app", lambda v: f"workdir: {q(v)}"),
    "locale": ("  uid: 1000\n", lambda v: f"  uid: 1000\n  locale: {q(v)}\n"),
    "user": ("  user: app\n", lambda v: f"  user: {q(v)}\n"),
    "description": ("  description: test fixture for buildtool", lambda v: f"  description: {q(v)}"),
    "vendor": ("  name: fixture-images\n", lambda v: f"  name: fixture-images\n  vendor: {q(v)}\n"),
    "source": ("  source: https://example.invalid/fixture", lambda v: f"  source: {q(v)}"),
    "venv": ('      pip: "25.3"\n', lambda v: f'      pip: "25.3"\n      venv: {q(v)}\n'),
    "mpi-tag": ('tag: "openmpi{version}"', lambda v: f"tag: {q(v)}"),
    "image-template": ('  image: "{mpi.tag}-{onnxruntime.tag}-{python.tag}-{os.tag}"', lambda v: f"  image: {q(v + '-{os.tag}')}"),
    "check-command": ('    command: "getent passwd app | cut -d: -f7"', lambda v: f"    command: {q(v)}"),
}

# Text with what injection needs: shell metacharacters, quotes, newlines and other control characters.
HOSTILE = st.text(alphabet=st.sampled_from(list("aZ09/._-:@ ;&|$`'\"\\(){}[]<>*?!#~\n\r\t\x00\x1b\u2028\u0085é")), max_size=24)
TEXT = st.one_of(HOSTILE, st.text(max_size=24))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("prop")
    shutil.copytree(FIXTURE, d / "m")
    return d / "m"


@pytest.fixture(scope="module")
def baseline(workdir) -> dict[str, str]:
    config = load_config(workdir / "images.yaml", None, {})
    g = generate(config, load_lock(workdir / "images.lock"))
    return {rel: text for rel, (text, _) in g.tree.items() if rel.endswith(("Dockerfile", "requirements.txt"))}


def _check_safe(value: str, tree: dict[str, tuple[str, int]], baseline: dict[str, str]) -> None:
    """Every line the value changed is a correctly escaped LABEL line, or the value is plain grammar text."""
    for rel, (text, _mode) in tree.items():
        if not rel.endswith(("Dockerfile", "requirements.txt")):
            continue
        before = baseline.get(rel, "")
        if rel.endswith("Dockerfile") and before:
            assert len(INSTRUCTION.findall(text)) == len(INSTRUCTION.findall(before)), f"{rel}: instructions changed for {value!r}"
        old_lines = set(HASH.sub("h-HASH", before).split("\n"))
        for line in HASH.sub("h-HASH", text).split("\n"):
            if line in old_lines:
                continue
            m = LABEL_LINE.fullmatch(line)
            if m:
                continue
            assert SAFE.fullmatch(value), f"{rel}: {value!r} changed a line outside a quoted LABEL value: {line!r}"


@pytest.mark.parametrize("field", sorted(FIELDS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=TEXT)
def test_any_string_is_refused_or_safely_quoted(field, value, workdir, baseline):
    anchor, make = FIELDS[field]
    original = (FIXTURE / "images.yaml").read_text(encoding="utf-8")
    assert original.count(anchor) == 1
    (workdir / "images.yaml").write_text(original.replace(anchor, make(value)), encoding="utf-8")
    try:
        config = load_config(workdir / "images.yaml", None, {})
        g = generate(config, load_lock(workdir / "images.lock"))
    except UserError as exc:
        text = exc.render()
        assert "images.yaml" in text or "images.lock" in text, text
        return
    _check_safe(value, g.tree, baseline)
