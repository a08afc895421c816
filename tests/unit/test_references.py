"""Repository and tags per image (tags.repository / tags.moving / tags.publish): the shipped names, collisions on
full references, the OCI grammar, and the release number found inside per-image release tags."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from buildtool.publish.release import next_release_number

REPO = Path(__file__).resolve().parents[2]


def _copy(tmp_path: Path, edit=None) -> Path:
    text = (REPO / "images.yaml").read_text()
    if edit is not None:
        text = edit(text)
    (tmp_path / "images.yaml").write_text(text)
    shutil.copy(REPO / "images.lock", tmp_path / "images.lock")
    return tmp_path / "images.yaml"


def _list(cli, config: Path, group: str = "all") -> list[dict]:
    result = cli("list", "--config", config, "--group", group, "--format", "json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_shipped_onnxruntime_images_share_one_repository_with_the_seed_tags(cli) -> None:
    rows = _list(cli, REPO / "images.yaml", "smoke")  # plain `buildtool list`: the default group
    ort = {r["image"]: r for r in rows if r["onnxruntime"] != "none"}
    assert {r["repository"] for r in ort.values()} == {"onnxruntime"}
    latest = {t: r["onnxruntime"] for r in ort.values() for t in r["tags"] if t.startswith("latest")}
    assert latest == {"latest": "ort-cpu", "latest-cuda": "ort-cuda", "latest-openvino": "ort-openvino"}
    for r in ort.values():  # versioned tags: the ONNX Runtime version leads, the release tag is the image's own
        assert any(t.startswith(r["image"].split("onnxruntime", 1)[1].split("-", 1)[0]) for t in r["tags"]), r
        assert r["release_tag"].endswith("-{date}.v{n}"), r
    mpi = [r for r in rows if r["mpi"] != "none"]
    assert mpi and all(r["repository"] == r["image"] and r["tags"] == ["latest"] and r["release_tag"] == "{date}.v{n}" for r in mpi)


def test_every_full_reference_of_the_whole_matrix_is_unique(cli) -> None:
    rows = _list(cli, REPO / "images.yaml")
    refs = [f"{r['repository']}:{t}" for r in rows for t in [*r["tags"], r["release_tag"]]]
    assert len(refs) == len(set(refs))


def test_latest_on_two_images_of_one_repository_is_an_error_naming_the_entry(cli, tmp_path) -> None:
    config = _copy(tmp_path, lambda t: t.replace("- {on: {onnxruntime: ort-cpu, os: ubuntu24.04, python: system-python}, moving: [latest]}",
                                                 "- {on: {onnxruntime: ort-cpu, python: system-python}, moving: [latest]}"))
    result = cli("validate", "--config", config)
    assert result.code == 2, result.out
    line = next(i for i, t in enumerate(config.read_text().splitlines(), 1) if "moving: [latest]}" in t)
    assert f"images.yaml:{line}" in result.err and "tags.publish[3].moving[0]" in result.err, result.err
    assert "onnxruntime:latest" in result.err and "reference collision" in result.err
    assert "Traceback" not in result.err


def test_two_images_on_one_release_tag_collide(cli, tmp_path) -> None:
    config = _copy(tmp_path, lambda t: t.replace('release: "{onnxruntime.version}-{python.tag}-{os.tag}-{release}"', 'release: "cpu-{release}"'))
    result = cli("validate", "--config", config)
    assert result.code == 2 and "tags.publish[0].release" in result.err and "onnxruntime:cpu-20260101.v1" in result.err, result.err


@pytest.mark.parametrize(("old", "new", "key", "words"), [
    ('repository: "{image}"', 'repository: "Bad Name"', "tags.repository", "cannot be in an image repository"),
    ("repository: onnxruntime\n      moving: [\"{onnxruntime.version}-{python.tag}", "repository: \"{os.codename}_\"\n      moving: [\"{onnxruntime.version}-{python.tag}",
     "tags.publish[0].repository", "invalid repository"),
    ('moving: ["{onnxruntime.version}-{python.tag}-{os.tag}"]', 'moving: ["{onnxruntime.version}:x"]', "tags.publish[0].moving[0]", "cannot be in an image tag"),
    ('moving: ["{onnxruntime.version}-{python.tag}-{os.tag}"]', 'moving: ["{release}"]', "tags.publish[0].moving[0]", "cannot name {release}"),
    ('moving: ["{onnxruntime.version}-{python.tag}-{os.tag}"]', 'moving: ["{onnxruntime.nope}"]', "tags.publish[0].moving[0]", "unknown fact"),
    ('release: "{onnxruntime.version}-{python.tag}-{os.tag}-{release}"', 'release: "{onnxruntime.version}"', "tags.publish[0].release", "must name {release}"),
    ('moving: ["{onnxruntime.version}-{python.tag}-{os.tag}"]', 'moving: [".{os.tag}"]', "tags.publish[0].moving[0]", "invalid image tag"),
])
def test_bad_templates_are_refused_with_file_line_and_key(cli, tmp_path, old, new, key, words) -> None:
    text = (REPO / "images.yaml").read_text()
    assert old in text
    config = _copy(tmp_path, lambda t: t.replace(old, new, 1))
    result = cli("validate", "--config", config)
    assert result.code == 2, result.out
    assert key in result.err and words in result.err and "images.yaml:" in result.err and "Traceback" not in result.err, result.err


def test_a_group_entry_applies_to_its_members_only(cli, tmp_path) -> None:
    config = _copy(tmp_path, lambda t: t.replace("  publish:\n", "  publish:\n    - {group: smoke, moving: ['smoke-{os.tag}-{mpi.key}-{onnxruntime.key}-{accelerator.key}']}\n", 1))
    rows = _list(cli, config)
    for r in rows:
        assert any(t.startswith("smoke-") for t in r["tags"]) == ("smoke" in r["groups"]), r


def test_release_numbers_are_found_inside_per_image_release_tags() -> None:
    tags = {"1.24.4-cuda12.8-debian12-20261201.v3", "20261201.v1", "x20261201.v9", "1.23.2-debian12-20261130.v7", "latest"}
    assert next_release_number("{date}.v{n}", "20261201", tags) == 4
    assert next_release_number("{date}.v{n}", "20261130", tags) == 8
    assert next_release_number("{date}.v{n}", "20261202", tags) == 1
