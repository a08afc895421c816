"""Checks derived from components, inherited along the DAG, plus declared checks narrowed by `on`."""

from __future__ import annotations

from fake_lock import fake_lock
from matrix_fixture import IMAGES_YAML, load

from buildtool.render.generate import generate
from buildtool.verify.checkplan import checks_for


def _ids(g, config, node):
    return {c.id for c in checks_for(config, g.dag, g.rendered, node)}


def test_child_runs_its_parents_checks(tmp_path):
    config = load(tmp_path)
    g = generate(config, fake_lock(config))
    parent = _ids(g, config, "debian12.sys.sys.openmpi")
    child = _ids(g, config, "debian12.sys.sys.openmpi.cu128")
    assert {"os/os-release", "fuse/fuse-present", "python/python-version", "mpi/two-rank-run"} <= parent
    assert parent <= child
    assert {"cuda/library-versions", "gpu/device-visible"} <= child - parent


def test_gpu_checks_are_their_own_tier(tmp_path):
    config = load(tmp_path)
    g = generate(config, fake_lock(config))
    tiers = {c.id: c.tier for c in checks_for(config, g.dag, g.rendered, "debian12.sys.sys.cu128.ortcuda")}
    assert tiers["gpu/device-visible"] == "gpu"
    assert tiers["cuda/library-versions"] == "cpu"
    assert tiers["onnxruntime/provider-listed"] == "cpu"


def test_declared_checks_follow_on_selector(tmp_path):
    text = IMAGES_YAML + "  - {name: mpi-only, on: {mpi: openmpi}, env: {OMPI_X: '1'}}\n"
    config = load(tmp_path, text)
    g = generate(config, fake_lock(config))
    assert "declared/mpi-only" in _ids(g, config, "debian12.sys.sys.openmpi.cu128")
    assert "declared/mpi-only" not in _ids(g, config, "debian12.sys.sys.mpich")
    assert "declared/mpi-only" not in _ids(g, config, "debian12.sys.sys")  # MPI not chosen yet at the python node
    assert "declared/shell" in _ids(g, config, "debian12.sys")


def test_expected_labels_are_the_chain_merged(tmp_path):
    config = load(tmp_path)
    g = generate(config, fake_lock(config))
    check = next(c for c in checks_for(config, g.dag, g.rendered, "debian12.sys.sys.openmpi.cu128") if c.id == "labels/labels-match")
    labels = check.params["labels"]
    assert labels["io.buildtool.mpi.flavor"] == "openmpi"
    assert labels["io.buildtool.cuda.version"] == "12.8.90"
    assert labels["io.buildtool.node"] == "debian12.sys.sys.openmpi.cu128"
    assert labels["org.opencontainers.image.base.name"] == g.rendered["debian12.sys.sys.openmpi.cu128"].parent_ref
