"""images.lock is written as JSON (one line per pin), read fast, and a YAML lock still reads the same."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from buildtool.lock import dump_lock, load_lock
from buildtool.source import JsonDoc, SourceDoc

ROOT = Path(__file__).resolve().parents[2]
YAML_FIXTURE = ROOT / "tests" / "fixtures" / "minimal" / "images.lock"


def test_a_yaml_lock_and_its_json_rewrite_hold_the_same_pins(tmp_path):
    from_yaml = load_lock(YAML_FIXTURE)
    assert type(from_yaml.doc) is SourceDoc
    text = dump_lock(from_yaml)
    (tmp_path / "images.lock").write_text(text, encoding="utf-8")
    from_json = load_lock(tmp_path / "images.lock")
    assert type(from_json.doc) is JsonDoc  # the fast path, no YAML parse
    assert (from_json.apt, from_json.pip, from_json.sources) == (from_yaml.apt, from_yaml.pip, from_yaml.sources)
    assert yaml.safe_load(text) == json.loads(text)  # still YAML for anything that reads it as YAML
    assert dump_lock(from_json) == text


def test_the_written_lock_has_a_line_per_pin_and_per_requirement():
    lock = load_lock(YAML_FIXTURE)
    lines = dump_lock(lock).splitlines()
    for pins in lock.apt.values():
        for name, version in pins.items():
            assert f'      "{name}": "{version}",' in lines or f'      "{name}": "{version}"' in lines
    for pip_set in lock.pip.values():
        for pin in pip_set.pins:
            line = f'{{"name": "{pin.name}", "sha256": "{pin.sha256}", "version": "{pin.version}"}}'
            assert f"        {line}," in lines or f"        {line}" in lines


def test_the_repository_lock_is_written_the_way_buildtool_writes_it():
    """`buildtool lock` output, not a hand edit: loading and writing it again changes nothing."""
    path = ROOT / "images.lock"
    assert dump_lock(load_lock(path)) == path.read_text(encoding="utf-8")


def test_lines_of_a_json_lock_are_found_only_when_an_error_asks(tmp_path):
    path = tmp_path / "images.lock"
    path.write_text(dump_lock(load_lock(YAML_FIXTURE)), encoding="utf-8")
    doc = load_lock(path).doc
    assert doc.lines == {}
    where = doc.where(("pip", "debian12.sys.system-python", "requires"))
    lines = path.read_text().splitlines()
    start = lines.index('    "debian12.sys.system-python": {')
    assert where.line == lines.index('      "requires": [', start) + 1
