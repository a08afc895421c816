"""Expansion, rules, the layer DAG, content hashes and generated-output properties (no engine)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from fake_lock import fake_lock
from matrix_fixture import IMAGES_YAML, load

from buildtool.config.model import AXES
from buildtool.lock.format import PipPin
from buildtool.plan.dag import build_dag
from buildtool.plan.expand import expand, select
from buildtool.render.generate import generate
from buildtool.render.render import render_dag


@pytest.fixture()
def config(tmp_path):
    return load(tmp_path)


@pytest.fixture()
def lock(config):
    return fake_lock(config)


def combos(expansion):
    return {tuple(v for _, v in variant.combo) for variant in expansion.variants}


# --- expansion and rules ---------------------------------------------------------------------


def test_product_minus_excludes_and_rules_is_exact(config, lock):
    e = expand(config, lock)
    total = 1
    for axis in AXES:
        total *= len(config.axes[axis])
    assert len(e.variants) + len(e.dropped) == total
    kept = combos(e)
    # Excluded by policy: conda on Debian.
    assert not any(c[0] == "debian12" and c[1] == "conda" for c in kept)
    # Rule: ORT GPU needs CUDA 12: the cu118 line never carries ortcuda.
    assert not any(c[3] == "cu118" and c[4] in ("ortcuda", "orttrt") for c in kept)
    assert ("debian12", "sys", "none", "cu128", "ortcuda") in kept
    # Rule: the NVIDIA base only with cuda-image, and cuda-image only on it.
    assert all(c[3] == "cuimg" for c in kept if c[0] == "nv")
    assert all(c[0] == "nv" for c in kept if c[3] == "cuimg")


def test_dropped_combinations_name_their_rule(config, lock):
    e = expand(config, lock)
    reasons = {tuple(v for _, v in d.combo): d.reason for d in e.dropped}
    assert reasons[("debian12", "sys", "none", "cu118", "ortcuda")].startswith("rule ort-gpu-major")
    assert "onnxruntime-gpu is built for one CUDA major" in reasons[("debian12", "sys", "none", "cu118", "ortcuda")]
    assert reasons[("debian12", "conda", "none", "cpu", "none")].startswith("matrix.exclude[0]")
    assert reasons[("ubuntu22.04", "conda", "intelmpi", "cpu", "none")].startswith("rule intelmpi-venv")


def test_include_adds_an_excluded_combination(tmp_path):
    text = IMAGES_YAML.replace("  rules:\n", "  include:\n    - {os: debian12, python: conda, mpi: none, accelerator: cpu, onnxruntime: none}\n  rules:\n", 1)
    config = load(tmp_path, text)
    e = expand(config, fake_lock(config))
    assert ("debian12", "conda", "none", "cpu", "none") in combos(e)
    assert all(tuple(v for _, v in d.combo) != ("debian12", "conda", "none", "cpu", "none") for d in e.dropped)


def test_version_matcher_and_group_selection(tmp_path):
    text = IMAGES_YAML.replace(
        "  rules:\n", "  rules:\n    - {id: new-python, reason: needs 3.11, require: {python.version: {version: '>=3.11'}}}\n", 1
    )
    config = load(tmp_path, text.replace('python: "3.11.2"', 'python: "3.9.2"'))
    e = expand(config, fake_lock(config))
    assert all(v.get("os") != "debian12" for v in e.variants)
    smoke = select(config, e.variants, None)
    assert smoke == ()  # the smoke image was on debian12, now dropped by the rule


def test_groups_partition_the_matrix(config, lock):
    e = expand(config, lock)
    smoke = {v.name for v in select(config, e.variants, "smoke")}
    release = {v.name for v in select(config, e.variants, "release")}
    assert smoke == {"openmpi1.0-py3.11.2-debian12"}
    assert smoke.isdisjoint(release)
    assert smoke | release == {v.name for v in e.variants}
    assert {v.name for v in select(config, e.variants, "all", ("mpi=mpich",))} == {"mpich1.0-py3.11.2-debian12", "mpich1.0-conda-py3.11.10-ubuntu22.04"}


# --- layer DAG ------------------------------------------------------------------------------


def test_shared_prefixes_are_one_node(config, lock):
    e = expand(config, lock)
    dag = build_dag(config, e.variants)
    # Every distinct layer-chain prefix is exactly one node.
    prefixes = set()
    for v in e.variants:
        chain = [v.get("os"), "sys"] + [v.get(a) for a in AXES[1:] if config.component(a, v.get(a)).is_layer]
        for i in range(1, len(chain) + 1):
            prefixes.add(".".join(chain[:i]))
    assert set(dag.nodes) == prefixes
    # The system layer of debian12 is shared by every debian12 image.
    sys_node = dag.nodes["debian12.sys"]
    debian_images = [v for v in e.variants if v.get("os") == "debian12"]
    assert len(debian_images) > 5
    assert all(dag.chain(dag.variant_node[v.name])[1] is sys_node for v in debian_images)
    # Parents come before children, and each child builds FROM its parent.
    order = list(dag.nodes)
    for node in dag.nodes.values():
        if node.parent:
            assert order.index(node.parent) < order.index(node.id)


def test_child_dockerfile_builds_from_parent_hash_tag(config, lock):
    g = generate(config, lock)
    for nid, r in g.rendered.items():
        parent = g.dag.nodes[nid].parent
        if parent in g.rendered:
            assert f"FROM {g.rendered[parent].tag}\n" in r.dockerfile
        else:
            assert f"FROM {g.dag.nodes[nid].base.local_ref}\n" in r.dockerfile


# --- content hashes ---------------------------------------------------------------------------


def _hashes(config, lock):
    dag = build_dag(config, expand(config, lock).variants)
    return dag, {nid: r.hash for nid, r in render_dag(config, lock, dag).items()}


def test_one_pip_pin_changes_only_its_subtree(config, lock):
    dag, before = _hashes(config, lock)
    target = "debian12.sys.sys.openmpi"
    set_id, old = next((k, s) for k, s in lock.pip.items() if target in s.nodes)
    lock.pip[set_id] = dataclasses.replace(old, pins=tuple(PipPin(p.name, p.version, "b" * 64) for p in old.pins))
    # Children record the parent's pins as constraints; they stay equal because versions did not change.
    _, after = _hashes(config, lock)
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {n for user in old.nodes for n in dag.subtree(user)}  # every node that installs the set, and what stands on them
    assert len(changed) >= 2  # the mpi node and its CUDA children


def test_one_apt_pin_changes_only_nodes_that_install_it(config, lock):
    from buildtool.lock.format import Lock

    dag, before = _hashes(config, lock)
    entry = lock.bases["ubuntu22.04"]
    pin = entry.packages["mpich"]
    moved = dataclasses.replace(pin, version="4.0.2-1", filename=pin.filename.replace(pin.version, "4.0.2-1"), sha256="c" * 64)
    lock = Lock(path=lock.path, bases={**lock.bases, "ubuntu22.04": dataclasses.replace(entry, packages={**entry.packages, "mpich": moved})},
                pip=lock.pip)
    assert lock.apt["ubuntu22.04"]["mpich"] == "4.0.2-1"
    _, after = _hashes(config, lock)
    changed = {n for n in before if before[n] != after[n]}
    assert changed == set(dag.subtree("ubuntu22.04.sys.conda.mpich"))


def test_base_digest_changes_every_node_of_that_base_only(tmp_path):
    config = load(tmp_path)
    lock = fake_lock(config)
    dag, before = _hashes(config, lock)
    text = IMAGES_YAML.replace("image: ubuntu:22.04@sha256:" + "a" * 64, "image: ubuntu:22.04@sha256:" + "c" * 64)
    (tmp_path / "b").mkdir()
    config2 = load(tmp_path / "b", text)
    _, after = _hashes(config2, lock)
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {n for n in dag.nodes if n.startswith("ubuntu22.04.")}


def test_base_manifest_changes_every_node_of_that_base_only(config, lock):
    """A bootstrapped base's package manifest (from the lock) is part of its tag, so of every node hash above it."""
    from buildtool.lock.format import Lock

    before = {nid: r.hash for nid, r in generate(config, lock).rendered.items()}
    entry = lock.bases["debian12"]
    moved = Lock(path=lock.path, bases={**lock.bases, "debian12": dataclasses.replace(entry, manifest=entry.manifest + ("tzdata 2025b-0 all",))},
                 pip=lock.pip)
    g = generate(config, moved)
    changed = {n for n, r in g.rendered.items() if r.hash != before[n]}
    assert changed == {n for n in g.rendered if n.startswith("debian12.")}
    assert "FROM buildtool/base-debian12:" in g.rendered["debian12.sys"].dockerfile
    assert g.rendered["debian12.sys"].dockerfile != generate(config, lock).rendered["debian12.sys"].dockerfile


def test_each_apt_layer_ships_exactly_its_debs(config, lock):
    """debs.lock beside a Dockerfile lists the layer's .debs: its chain's closure minus its parent's, one line each."""
    from buildtool.plan.apt_layers import apt_chain, node_apt_names
    from buildtool.render.pins import debs_lock_text

    g = generate(config, lock)
    checked = 0
    for nid, r in g.rendered.items():
        node = g.dag.nodes[nid]
        files = dict(r.files)
        if not node_apt_names(node):
            assert "debs.lock" not in files and "install-debs /tmp" not in r.dockerfile, nid
            continue
        chain = apt_chain(g.dag, node)
        debs = lock.layer_debs(node.base.key, chain)
        assert files["debs.lock"] == debs_lock_text(debs), nid
        # the fake closure is exactly what was asked for: a name a layer below already installed is not installed again
        assert {d.name for d in debs} == set(node_apt_names(node)) - {n for names in chain[:-1] for n in names}, nid
        checked += 1
    assert checked >= 5


def test_rendering_is_deterministic(config, lock):
    assert generate(config, lock).tree == generate(config, lock).tree


# --- properties every generated Dockerfile must have ----------------------------------------

def test_generated_dockerfiles_follow_the_rules(config, lock):
    g = generate(config, lock)
    assert g.rendered
    for nid, r in g.rendered.items():
        text = r.dockerfile
        assert "# syntax=" not in text, nid
        assert 'SHELL ["/bin/bash", "-o", "pipefail", "-c"]' in text, nid
        users = re.findall(r"^USER (\S+)$", text, re.M)
        assert users[-1] == "1000", nid
        assert not any("conda update" in line for line in text.splitlines() if not line.startswith("#")), nid
        # apt: every package after `install ... \` is pinned with =version.
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if "apt-get install" in line:
                packages = []
                for pkg in lines[i + 1 :]:
                    if not pkg.startswith("      ") or pkg.strip().startswith("-r "):
                        break
                    packages.append(pkg)
                assert packages, (nid, line)
                for pkg in packages:
                    assert re.match(r"^\s+[a-z0-9][a-z0-9+.-]*=\S+( \\)?$", pkg), (nid, pkg)
        # pip: only from a hash-locked requirements file.
        for line in text.splitlines():
            if "pip install" in line:
                assert "--require-hashes" in line, (nid, line)
        # Every download (curl) is followed by a sha256 check.
        assert text.count("curl -fsSL") == text.count("sha256sum -c"), nid
        files = dict(r.files)
        if "requirements.txt" in files:
            for req in files["requirements.txt"].splitlines()[1:]:
                assert re.match(r"^\S+==\S+ --hash=sha256:[0-9a-f]{64}$", req), req


APT_ROOTS_ARG = re.compile(r'ARG BUILDTOOL_APT_ROOTS="[a-z0-9-]+=https?://[^\s@"$]+( [a-z0-9-]+=https?://[^\s@"$]+)*"')


def test_secrets_are_mounted_never_passed_as_args(config, lock):
    g = generate(config, lock)
    apt_layers = 0
    for r in g.rendered.values():
        lines = r.dockerfile.splitlines()
        # The one build arg is where the .debs come from (a site mirror overrides it): archive URLs with no
        # credentials in them, each just before the RUN that installs the layer's debs.lock.
        for i, line in enumerate(lines):
            if line.startswith("ARG "):
                assert APT_ROOTS_ARG.fullmatch(line), line
                assert lines[i + 1].startswith("RUN --mount=type=bind,source=debs.lock,"), lines[i + 1]
                apt_layers += 1
        assert sum(line.startswith("ARG ") for line in lines) == r.dockerfile.count("install-debs /tmp/buildtool/debs.lock")
        for line in r.dockerfile.splitlines():
            if "with-build-secrets" in line and "pip install" in line:
                assert "--mount=type=secret,id=ca-bundle" in r.dockerfile
    assert apt_layers, "no layer installs .debs: the ARG checks above checked nothing"


def test_labels_carry_component_versions(config, lock):
    g = generate(config, lock)
    text = g.rendered["debian12.sys.sys.cu128"].dockerfile
    assert 'io.buildtool.cuda.version="12.8.90"' in text
    assert 'io.buildtool.cudnn.version="9.10.2.21"' in text
    assert 'org.opencontainers.image.title="cuda12.8-py3.11.2-debian12"' in text


def test_outputs_bake_and_ci_levels(config, lock):
    import json

    g = generate(config, lock)
    bake = json.loads(g.tree["docker-bake.json"][0])
    assert len(bake["target"]) == len(g.rendered)
    child = bake["target"]["debian12_sys_sys_openmpi"]
    assert child["contexts"] == {g.rendered["debian12.sys.sys"].tag: "target:debian12_sys_sys"}
    levels = [json.loads(g.tree[f"ci/level-{i}.json"][0])["include"] for i in range(len(g.dag.levels()))]
    assert [n["node"] for n in levels[0]] == sorted(n for n in g.rendered if g.dag.nodes[n].stage == "system")
    seen: set[str] = set()
    for level in levels:
        for job in level:
            parent = g.dag.nodes[job["node"]].parent
            assert parent in seen or g.dag.nodes[parent].stage == "base"
        seen.update(job["node"] for job in level)
    assert seen == set(g.rendered)


def test_golden_dockerfiles(config, lock):
    """Byte-exact output of a few nodes; refresh with UPDATE_GOLDEN=1 after an intended change."""
    import os

    g = generate(config, lock)
    golden = Path(__file__).resolve().parent.parent / "golden"
    for nid in ("debian12.sys", "debian12.sys.sys.openmpi", "ubuntu22.04.sys.conda", "debian12.sys.sys.cu128.orttrt"):
        path = golden / f"{nid}.Dockerfile"
        if os.environ.get("UPDATE_GOLDEN"):
            path.write_text(g.rendered[nid].dockerfile, encoding="utf-8")
        assert g.rendered[nid].dockerfile == path.read_text(encoding="utf-8"), f"{nid} differs from {path}"
