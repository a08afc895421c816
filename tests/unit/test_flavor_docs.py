"""docs/flavors.md is `buildtool docs --flavors`, and what it says about partials and facts is what the code does."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

from buildtool.cli.main import main
from buildtool.components import FLAVORS
from buildtool.config.loader import load_config
from buildtool.config.model import LAYER_AXES
from buildtool.lock.format import load_lock
from buildtool.render.flavor_docs import AXIS_FACTS, OS_FACTS, flavor_reference
from buildtool.render.generate import generate
from buildtool.render.render import PARTIAL_CONTEXT

ROOT = Path(__file__).resolve().parents[2]


def test_committed_reference_is_what_buildtool_docs_flavors_prints(capsys):
    assert main(["docs", "--flavors"]) == 0
    printed = capsys.readouterr().out
    assert printed == flavor_reference()
    assert (ROOT / "docs" / "flavors.md").read_text(encoding="utf-8") == printed, \
        "docs/flavors.md is stale: run `buildtool docs --flavors > docs/flavors.md`"


def test_every_flavor_and_field_is_documented():
    text = flavor_reference()
    for name, fl in FLAVORS.items():
        assert f"### `{name}`" in text
        section = text.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        for field in fl.fields:
            assert re.search(rf"^\| `{re.escape(field)}` \|", section, re.M), (name, field)


def test_the_documented_context_and_facts_are_what_partials_get(monkeypatch):
    """Render the shipped matrix and record every partial's context: its names are PARTIAL_CONTEXT's, and every
    fact is one the reference describes (os.*/system.* by name, <axis>.* by the common four or a flavor's table)."""
    seen: list[dict] = []
    original = jinja2.Template.render

    def recording(self, *args, **kwargs):
        if self.name and self.name.startswith("partials/"):
            seen.append(dict(*args, **kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Template, "render", recording)
    config = load_config(ROOT / "images.yaml", None, {})
    generate(config, load_lock(ROOT / "images.lock"))
    assert seen and all(set(c) == set(PARTIAL_CONTEXT) for c in seen)
    text = flavor_reference()
    provides = {f"os.{k}" for b in config.bases.values() for k, _ in b.provides}
    for context in seen:
        for fact in context["facts"]:
            axis = fact.split(".")[0]
            if axis in ("os", "system"):
                assert fact in OS_FACTS or fact in provides, fact
            else:
                assert axis in LAYER_AXES, fact
                generic = "<axis>" + fact[len(axis):]
                assert generic in AXIS_FACTS or f"| `{fact}` |" in text or fact == f"{axis}.version", fact
