"""Platforms (issue 16): which images each platform gets, the platform in node identity, the lock's
platforms section, per-platform wheels, bootstrap/import/build argv, and the OCI index. Pure (no engine)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from buildtool.config.loader import load_config
from buildtool.config.model import DEFAULT_PLATFORM
from buildtool.errors import UserError
from buildtool.lock.format import Lock, dump_lock, load_lock, platform_lock
from buildtool.plan.platforms import check_platform, combo_platforms, extra_platforms, platform_config, slug, why_not

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shipped():
    return load_config(ROOT / "images.yaml", None)


def _combo(os, python="system-python", mpi="none", accelerator="cpu", onnxruntime="none"):
    return (("os", os), ("python", python), ("mpi", mpi), ("accelerator", accelerator), ("onnxruntime", onnxruntime))


def test_a_combo_has_the_platforms_its_base_and_every_flavor_allow(shipped):
    assert combo_platforms(shipped, _combo("debian12", mpi="openmpi")) == ("linux/amd64", "linux/arm64")
    assert combo_platforms(shipped, _combo("debian12", onnxruntime="ort-cpu")) == ("linux/amd64", "linux/arm64")
    # no aarch64 wheels of impi-rt / onnxruntime-openvino / onnxruntime-gpu; a base made for amd64 only
    assert combo_platforms(shipped, _combo("debian12", mpi="intelmpi")) == ("linux/amd64",)
    assert combo_platforms(shipped, _combo("debian12", onnxruntime="ort-openvino")) == ("linux/amd64",)
    assert combo_platforms(shipped, _combo("debian12", accelerator="cu128-cudnn9", onnxruntime="ort-cuda")) == ("linux/amd64",)
    assert combo_platforms(shipped, _combo("debian11", mpi="mpich")) == ("linux/amd64",)


def test_why_not_names_the_base_or_the_flavor_and_its_reason(shipped):
    assert "impi-rt" in why_not(shipped, _combo("debian12", mpi="intelmpi"), "linux/arm64")
    assert "bases.debian11.platforms" in why_not(shipped, _combo("debian11"), "linux/arm64")
    assert why_not(shipped, _combo("debian12", mpi="openmpi"), "linux/arm64") == ""


def test_platform_view_keeps_amd64_recipes_and_gives_arm64_its_own(shipped):
    assert platform_config(shipped, DEFAULT_PLATFORM) is shipped
    view = platform_config(shipped, "linux/arm64")
    assert set(view.bases) == {"debian12"} and view.axes["os"] == ("debian12",)
    amd, arm = shipped.bases["debian12"], view.bases["debian12"]
    assert arm.arch == "arm64" and amd.arch == "amd64"
    assert arm.recipe_id != amd.recipe_id and arm.local_ref != amd.local_ref
    # the amd64 recipe id does not depend on the platforms a base lists: committed hashes stay valid
    assert replace(amd, platforms=("linux/amd64",)).recipe_id == amd.recipe_id
    assert extra_platforms(shipped) == ("linux/arm64",)


def test_unknown_platform_is_a_usage_error():
    with pytest.raises(UserError) as err:
        check_platform("linux/riscv64")
    assert "linux/arm64" in str(err.value.expected)
    assert slug("linux/arm64") == "linux-arm64"


def test_lock_platforms_section_round_trips_and_is_absent_when_empty(tmp_path):
    lock = load_lock(ROOT / "images.lock")
    text = dump_lock(lock)
    assert text == (ROOT / "images.lock").read_text(encoding="utf-8")
    bare = Lock(path="x", bases=dict(lock.bases), pip=dict(lock.pip))
    assert '"platforms"' not in dump_lock(bare)  # a lock without other platforms keeps its old layout
    sub = platform_lock(bare, "linux/arm64")
    assert sub.platform == "linux/arm64" and not sub.bases
    sub.pip["x"] = next(iter(lock.pip.values()))
    path = tmp_path / "images.lock"
    path.write_text(dump_lock(bare), encoding="utf-8")
    again = load_lock(path)
    assert again.platforms["linux/arm64"].pip["x"] == sub.pip["x"]
    assert again.platforms["linux/arm64"].platform == "linux/arm64"
    assert platform_lock(again, DEFAULT_PLATFORM) is again


def test_generated_render_per_platform_same_ids_other_hashes():
    from buildtool.render.generate import generate

    config = load_config(ROOT / "images.yaml", None)
    lock = load_lock(ROOT / "images.lock")
    if "linux/arm64" not in lock.platforms:
        pytest.skip("images.lock has no linux/arm64 pins yet")
    g = generate(config, lock)
    arm = g.platforms["linux/arm64"]
    shared = set(arm.rendered) & set(g.rendered)
    assert shared and shared == set(arm.rendered)  # every arm64 node is a node of the matrix, under the same id
    for nid in shared:
        assert arm.rendered[nid].hash != g.rendered[nid].hash
    for name in arm.dag.variant_node:
        assert g.image_platforms(name) == ("linux/amd64", "linux/arm64")
    # the arm64 contexts are committed under generated/platforms/linux-arm64/
    assert any(p.startswith("platforms/linux-arm64/nodes/") for p in g.tree)
    debs = [t for p, (t, _m) in g.tree.items() if p.startswith("platforms/linux-arm64/") and p.endswith("debs.lock")]
    assert debs and all(" amd64\n" not in t for t in debs)


def test_aarch64_wheels_are_ranked_for_the_aarch64_platform():
    from buildtool.resolve.uv import best_wheel, uv_platform, wheel_platforms

    wheels = [{"name": "onnxruntime-1.23.2-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", "hashes": {"sha256": "a" * 64}},
              {"name": "onnxruntime-1.23.2-cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl", "hashes": {"sha256": "b" * 64}}]
    assert best_wheel("onnxruntime", wheels, "3.11")["hashes"]["sha256"] == "a" * 64
    assert best_wheel("onnxruntime", wheels, "3.11", "aarch64")["hashes"]["sha256"] == "b" * 64
    assert uv_platform("aarch64") == "aarch64-manylinux_2_31"
    assert "manylinux2014_aarch64" in wheel_platforms("aarch64") and "manylinux1_aarch64" not in wheel_platforms("aarch64")


def test_uv_command_asks_for_the_platforms_wheels(tmp_path):
    from buildtool.lock.format import PipRequest
    from buildtool.resolve.uv import UvJob, uv_command

    amd = uv_command("uv", UvJob(PipRequest("3.11", ("onnxruntime==1.23.2",), ())), tmp_path)
    arm = uv_command("uv", UvJob(PipRequest("3.11", ("onnxruntime==1.23.2",), (), "aarch64")), tmp_path)
    assert amd[amd.index("--python-platform") + 1] == "x86_64-manylinux_2_31"
    assert arm[arm.index("--python-platform") + 1] == "aarch64-manylinux_2_31"


def test_bootstrap_and_build_argv_name_the_architecture(shipped):
    from buildtool.engine.bases import bootstrap_plan
    from buildtool.engine.node_build import build_command
    from buildtool.engine.platform_import import import_dockerfile

    amd = bootstrap_plan(shipped.bases["debian12"])
    arm = bootstrap_plan(platform_config(shipped, "linux/arm64").bases["debian12"])
    assert not any(a.startswith("--arch") for a in amd.command("/t"))
    assert "--arch=arm64" in arm.command("/t") and arm.recipe_id != amd.recipe_id
    text = import_dockerfile(arm.import_changes())
    assert text.startswith("FROM scratch\nADD rootfs.tar /\n") and f"LABEL io.buildtool.base.recipe={arm.recipe_id}\n" in text
    argv = build_command("docker", Path("/c"), Path("/i"), {}, {}, (), "linux/arm64")
    assert argv[argv.index("--platform") + 1] == "linux/arm64"
    assert "--platform" not in build_command("docker", Path("/c"), Path("/i"), {}, {})


def test_index_body_is_deterministic_and_names_each_platform():
    from buildtool.publish.index import OCI_INDEX, Descriptor, digest_of, index_body, parse_index

    descs = [Descriptor("linux/amd64", "application/vnd.docker.distribution.manifest.v2+json", "sha256:" + "1" * 64, 1000),
             Descriptor("linux/arm64", "application/vnd.docker.distribution.manifest.v2+json", "sha256:" + "2" * 64, 1001)]
    body = index_body(descs)
    assert body == index_body(list(descs))
    doc = json.loads(body)
    assert doc["mediaType"] == OCI_INDEX and doc["schemaVersion"] == 2
    assert [m["platform"] for m in doc["manifests"]] == [{"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64"}]
    assert parse_index(body) == {"linux/amd64": "sha256:" + "1" * 64, "linux/arm64": "sha256:" + "2" * 64}
    assert digest_of(body).startswith("sha256:") and digest_of(body) != digest_of(index_body(descs[:1]))
    with pytest.raises(ValueError):
        index_body([])


def test_publish_platforms_option():
    from buildtool.publish.multi import parse_platforms

    assert parse_platforms("all") is None
    assert parse_platforms("linux/amd64,linux/arm64") == ("linux/amd64", "linux/arm64")
    with pytest.raises(UserError):
        parse_platforms("linux/s390x")


def test_platform_images_of_a_generated_image():
    from buildtool.publish.index import platform_images

    class G:
        platforms: dict = {}

    only = platform_images(G(), "img", ("n", "buildtool/n:h-1", "1" * 64), None)
    assert [p.platform for p in only] == ["linux/amd64"]


def test_cli_list_platform(cli):
    bad = cli("list", "--config", ROOT / "images.yaml", "--platform", "linux/mips")
    assert bad.code == 2 and "--platform" in bad.err
    lock = load_lock(ROOT / "images.lock")
    if "linux/arm64" not in lock.platforms:
        pytest.skip("images.lock has no linux/arm64 pins yet")
    done = cli("list", "--config", ROOT / "images.yaml", "--group", "smoke", "--platform", "linux/arm64", "--format", "json")
    assert done.code == 0, done.err
    rows = json.loads(done.out)
    assert len(rows) >= 2
    assert {r["onnxruntime"] for r in rows} >= {"ort-cpu"} and any(r["mpi"] != "none" for r in rows)
    assert all(r["platform"] == "linux/arm64" and r["platforms"] == ["linux/amd64", "linux/arm64"] for r in rows)
    amd = json.loads(cli("list", "--config", ROOT / "images.yaml", "--group", "smoke", "--format", "json").out)
    by_name = {r["image"]: r for r in amd}
    assert by_name["intelmpi2021.17.2-debian13"]["platforms"] == ["linux/amd64"]
    for r in rows:  # same image, same node id, another content-hash tag
        assert by_name[r["image"]]["node"] == r["node"] and by_name[r["image"]]["tag"] != r["tag"]
