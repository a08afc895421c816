"""buildtool.publish.release: release numbers, the record, package manifests and release notes (pure)."""

from __future__ import annotations

import pytest

from buildtool.errors import UserError
from buildtool.publish.release import (
    ImageNotes,
    Manifest,
    add_release,
    components_from_labels,
    diff_packages,
    empty_record,
    next_release_number,
    parse_manifest_output,
    previous_entry,
    release_pattern,
    release_tag,
    render_notes,
    render_template,
    safe_name,
)

TEMPLATE = "{date}.v{n}"


def test_release_numbers():
    assert next_release_number(TEMPLATE, "20261123", set()) == 1
    tags = {"20261123.v1", "20261123.v2", "20261123.v10", "20261122.v40", "latest", "h-abc", "20261123.vX"}
    assert next_release_number(TEMPLATE, "20261123", tags) == 11
    assert next_release_number(TEMPLATE, "20261124", tags) == 1
    assert release_tag(TEMPLATE, "20261123", 3) == "20261123.v3"


def test_other_release_templates():
    assert next_release_number("r{date}-{n}", "20261123", {"r20261123-4", "20261123.v9"}) == 5
    with pytest.raises(UserError, match="must contain"):
        release_pattern("{date}", "20261123")
    with pytest.raises(UserError, match="may only use"):
        release_pattern("{date}.{os}.v{n}", "20261123")


def test_render_template_dotted_facts():
    assert render_template("{os.tag}-line", {"os.tag": "debian12"}, key="tags.moving") == "debian12-line"
    assert render_template("latest", {}, key="tags.moving") == "latest"
    with pytest.raises(UserError, match="unknown value"):
        render_template("{nope}", {"os.tag": "x"}, key="tags.moving")


def test_safe_name():
    assert safe_name("127.0.0.1:5000", "buildtool") == "127.0.0.1_5000_buildtool"
    assert safe_name("ghcr.io", "org/team") == "ghcr.io_org_team"


def test_record_add_and_previous():
    rec = empty_record("r", "ns")
    rec = add_release(rec, {"release": "20261123.v1", "images": {"a": {"digest": "d1"}}})
    rec = add_release(rec, {"release": "20261123.v2", "images": {"b": {"digest": "d2"}}})
    assert previous_entry(rec, "a") == ("20261123.v1", {"digest": "d1"})
    assert previous_entry(rec, "c") is None
    rec = add_release(rec, {"release": "20261123.v2", "images": {"b": {"digest": "d3"}}})  # a rerun replaces, never duplicates
    assert [r["release"] for r in rec["releases"]] == ["20261123.v1", "20261123.v2"]
    assert rec["releases"][-1]["images"]["b"]["digest"] == "d3"


def test_components_from_labels():
    labels = {"io.buildtool.os": "debian12", "io.buildtool.mpi.version": "4.1.4", "io.buildtool.mpi.flavor": "openmpi",
              "io.buildtool.hash": "abc", "io.buildtool.node": "n", "io.buildtool.base.suite": "bookworm",
              "org.opencontainers.image.title": "t"}
    assert components_from_labels(labels) == {"mpi.flavor": "openmpi", "mpi.version": "4.1.4", "os": "debian12"}


def test_parse_manifest_output():
    out = ("bash\t5.2.15-2+b7\nlibc6\t2.36-9+deb12u10\n\n@@pip\n"
           '[{"name": "mpi4py", "version": "4.1.2"}, {"name": "Typing_Extensions", "version": "4.12.2"}]\n')
    m = parse_manifest_output(out)
    assert m.apt == {"bash": "5.2.15-2+b7", "libc6": "2.36-9+deb12u10"}
    assert m.pip == {"mpi4py": "4.1.2", "typing-extensions": "4.12.2"}
    assert parse_manifest_output("bash\t1\n@@pip\n\n").pip == {}


def test_diff_packages():
    d = diff_packages({"a": "1", "b": "1", "c": "1"}, {"a": "1", "b": "2", "d": "1"})
    assert d.added == {"d": "1"} and d.removed == {"c": "1"} and d.changed == {"b": ("1", "2")}
    assert d.summary() == "1 added, 1 removed, 1 changed"
    assert diff_packages({"a": "1"}, {"a": "1"}).empty


def _notes(**kw):
    base = dict(image="img", repository="reg/ns/img", digest="sha256:" + "1" * 64, tags=["20261123.v2", "h-x", "latest"],
                components={"os": "debian12", "mpi.version": "4.1.5"}, manifest=Manifest({"bash": "5.2", "curl": "8"}, {"mpi4py": "4.1.2"}))
    base.update(kw)
    return ImageNotes(**base)


def test_notes_first_release():
    text = render_notes("20261123.v1", "reg", "ns", "abc", [_notes(previous_release=None)])
    assert "# Release 20261123.v1" in text and "| img |" in text and "new image" in text
    assert "First release of this image: 2 apt packages, 1 pip packages." in text


def test_notes_changed_and_unchanged():
    changed = _notes(previous_release="20261120.v1", previous_digest="sha256:" + "0" * 64,
                     previous_components={"os": "debian12", "mpi.version": "4.1.4"},
                     previous_manifest=Manifest({"bash": "5.1", "wget": "1"}, {"mpi4py": "4.1.2"}))
    same = _notes(image="other", previous_release="20261120.v1", previous_digest="sha256:" + "1" * 64,
                  previous_components={"os": "debian12"}, previous_manifest=Manifest())
    text = render_notes("20261123.v2", "reg", "ns", "abc", [changed, same])
    assert "components: mpi.version; apt: 1 added, 1 removed, 1 changed" in text
    assert "| mpi.version | 4.1.4 | 4.1.5 |" in text
    assert "| curl | — | 8 |" in text and "| wget | 1 | — |" in text and "| bash | 5.1 | 5.2 |" in text
    assert "### pip packages: 0 added, 0 removed, 0 changed" in text
    assert "Unchanged since 20261120.v1 (same digest)." in text
