"""images.lock is written as JSON (one line per pin), read fast, and a YAML lock still reads the same."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from buildtool.config.source import JsonDoc, SourceDoc
from buildtool.lock.format import dump_lock, load_lock

ROOT = Path(__file__).resolve().parents[2]
YAML_FIXTURE = ROOT / "tests" / "fixtures" / "minimal" / "images.lock"


def _sorted_closures(bases):
    return {k: replace(b, installs={key: tuple(sorted(v)) for key, v in b.installs.items()}) for k, b in bases.items()}


def test_a_yaml_lock_and_its_json_rewrite_hold_the_same_pins(tmp_path):
    from_yaml = load_lock(YAML_FIXTURE)
    assert type(from_yaml.doc) is SourceDoc
    text = dump_lock(from_yaml)
    (tmp_path / "images.lock").write_text(text, encoding="utf-8")
    from_json = load_lock(tmp_path / "images.lock")
    assert type(from_json.doc) is JsonDoc  # the fast path, no YAML parse
    assert from_yaml.bases and from_yaml.pip  # the comparison below is not between two empty locks
    # a closure is a set: the JSON writes its names sorted, the hand-written YAML need not
    assert (_sorted_closures(from_json.bases), from_json.pip) == (_sorted_closures(from_yaml.bases), from_yaml.pip)
    assert from_json.bases["debian12"].manifest == from_yaml.bases["debian12"].manifest
    assert from_json.apt == from_yaml.apt
    assert yaml.safe_load(text) == json.loads(text)  # still YAML for anything that reads it as YAML
    assert dump_lock(from_json) == text


def test_the_written_lock_has_a_line_per_pin_and_per_requirement():
    lock = load_lock(YAML_FIXTURE)
    lines = dump_lock(lock).splitlines()
    assert lock.bases
    for entry in lock.bases.values():
        assert entry.packages and entry.installs and entry.manifest
        for name, pin in entry.packages.items():  # one line per .deb, everything needed to fetch and check it
            line = (f'        "{name}": {{"arch": "{pin.arch}", "archive": "{pin.archive}", "filename": "{pin.filename}", '
                    f'"sha256": "{pin.sha256}", "size": {pin.size}, "version": "{pin.version}"}}')
            assert f"{line}," in lines or line in lines, line
        for key, names in entry.installs.items():  # one line per closure
            line = f'        "{key}": {json.dumps(sorted(names))}'
            assert f"{line}," in lines or line in lines, line
        for item in entry.manifest:  # one line per package of the base itself
            assert f'        "{item}",' in lines or f'        "{item}"' in lines, item
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
    where = doc.where(("pip", "py3.11-pip-7880e25958c2", "requires"))
    lines = path.read_text().splitlines()
    start = lines.index('    "py3.11-pip-7880e25958c2": {')
    assert where.line == lines.index('      "requires": [', start) + 1


def test_a_version_1_lock_is_refused_but_buildtool_lock_keeps_its_pip_sets(tmp_path):
    from buildtool.errors import UserError

    v1 = {"lock": {"version": "1"}, "sources": {"debian12": "Packages.xz"}, "apt": {"debian12": {"curl": "7.88.1-10"}},
          "pip": {"s": {"python": "3.11", "requires": ["pip==25.3"], "constraints": [], "pins": [{"name": "pip", "version": "25.3", "sha256": "a" * 64}]}}}
    path = tmp_path / "images.lock"
    path.write_text(json.dumps(v1), encoding="utf-8")
    with pytest.raises(UserError, match="unsupported lock version"):
        load_lock(path)
    upgraded = load_lock(path, upgrading=True)  # what `buildtool lock` reads: the apt half is resolved again
    assert upgraded.bases == {} and list(upgraded.pip) == ["s"] and upgraded.pip["s"].pins[0].version == "25.3"


def test_lock_apt_follows_a_replaced_base_entry() -> None:
    """Lock.apt (what flavors read their facts from) reads a base again when its entry is replaced (a refresh)."""
    from dataclasses import replace as _replace

    from fake_lock import fake_base_apt, fake_deb

    from buildtool.lock.format import Lock as _Lock

    lock = _Lock(path="images.lock", bases={"debian12": fake_base_apt({"fuse3": "3.14.0-4"})})
    assert lock.apt["debian12"]["fuse3"] == "3.14.0-4"
    entry = lock.bases["debian12"]
    lock.bases["debian12"] = _replace(entry, packages={"fuse3": fake_deb("fuse3", "3.14.0-4+deb12u1")})
    assert lock.apt["debian12"]["fuse3"] == "3.14.0-4+deb12u1"
