"""Prefetch: which nodes get one, what its build is, and when the driver starts it (a fake docker CLI, no engine)."""

from __future__ import annotations

import re
import threading
import time
from functools import lru_cache
from pathlib import Path

from buildtool.config.loader import load_config
from buildtool.engine.prefetch import Prefetcher, prefetch_command
from buildtool.engine.scheduler import BUILT, FAILED, Event
from buildtool.lock.format import bind_bases, load_lock
from buildtool.render.generate import generate
from buildtool.render.prefetch import Prefetch, prefetch_plans

REPO = Path(__file__).resolve().parents[2]
LEAF = "debian12.sys.system-python.cu128-cudnn9.ort-cuda"


@lru_cache(maxsize=1)
def _shipped():
    lock = load_lock(REPO / "images.lock")
    config = bind_bases(load_config(REPO / "images.yaml"), lock)
    return generate(config, lock)


def _cache_id(dockerfile: str) -> str:
    found = re.findall(r"id=buildtool-uv-([a-z0-9.-]+),", dockerfile)
    assert len(found) == 1, dockerfile
    return found[0]


def test_plans_are_for_uv_nodes_at_least_two_layers_below_their_python_layer():
    g = _shipped()
    plans = prefetch_plans(g.dag, g.rendered, list(g.dag.nodes))
    assert LEAF in plans
    for nid, plan in plans.items():
        chain = [n.id for n in g.dag.chain(nid)]
        python = next(n for n in g.dag.chain(nid) if n.stage == "python")
        assert plan.after == python.id and plan.after_tag == g.rendered[python.id].tag
        assert chain.index(nid) - chain.index(python.id) >= 2, nid
    # every pip node right on a python layer builds as soon as a prefetch could start: none for them
    direct = [nid for nid, n in g.dag.nodes.items() if n.parent and g.dag.nodes[n.parent].stage == "python"]
    assert direct and not set(direct) & set(plans)
    assert "debian12.sys.system-python" not in plans and "debian12.sys" not in plans


def test_a_plan_fills_the_cache_mount_and_set_the_node_itself_installs_from():
    g = _shipped()
    plan = prefetch_plans(g.dag, g.rendered, [LEAF])[LEAF]
    node = g.rendered[LEAF]
    assert plan.requirements == dict(node.files)["requirements.txt"]
    assert plan.cache_id == _cache_id(node.dockerfile) == _cache_id(plan.dockerfile)
    assert plan.dockerfile.startswith("# Made by `buildtool build`")
    assert f"FROM {plan.after_tag} AS fetch" in plan.dockerfile
    assert "--require-hashes" in plan.dockerfile and "--link-mode=hardlink" in plan.dockerfile
    assert "--mount=type=secret,id=ca-bundle" in plan.dockerfile  # same secrets as the node's own step, never build args
    assert "ARG" not in plan.dockerfile


def test_only_the_requested_nodes_get_plans():
    g = _shipped()
    assert prefetch_plans(g.dag, g.rendered, ["debian12.sys.system-python.cu128-cudnn9"]) == {}


def test_prefetch_command_writes_no_image_and_passes_secrets_by_file(tmp_path):
    argv = prefetch_command("docker", tmp_path / "ctx", tmp_path / "out", {"ca-bundle": Path("/ca.pem")}, "linux/arm64")
    assert argv[:2] == ["docker", "build"]
    assert f"type=local,dest={tmp_path / 'out'}" in argv and "--iidfile" not in argv and "-t" not in argv
    assert "id=ca-bundle,src=/ca.pem" in argv and argv[argv.index("--platform") + 1] == "linux/arm64"


FAKE_CLI = """#!/bin/sh
# a docker CLI stand-in: records its context's requirements, writes the marker unless told to fail
for a in "$@"; do case "$a" in type=local,dest=*) dest="${a#type=local,dest=}";; esac; ctx="$a"; done
cat "$ctx/requirements.txt" >> "$(dirname "$0")/calls"
[ -f "$(dirname "$0")/fail" ] && exit 3
sleep "${SLEEP:-0}"
mkdir -p "$dest" && touch "$dest/buildtool-prefetched"
"""


def _prefetcher(tmp_path: Path, plans: dict[str, Prefetch]) -> tuple[Prefetcher, list[str]]:
    cli = tmp_path / "bin" / "docker"
    cli.parent.mkdir()
    cli.write_text(FAKE_CLI)
    cli.chmod(0o755)
    said: list[str] = []
    return Prefetcher(cli=str(cli), plans=plans, secrets={}, run_dir=tmp_path, say=said.append), said


def _plan(node: str, after: str) -> Prefetch:
    return Prefetch(node, after, f"buildtool/{after}:h-1", "c", f"req-of-{node}\n", "FROM x\n")


def test_a_plan_starts_once_when_its_python_layer_is_built_and_not_before(tmp_path):
    p, said = _prefetcher(tmp_path, {"a.b.c": _plan("a.b.c", "a.py"), "x.y.z": _plan("x.y.z", "x.py")})
    p.on_event(Event(FAILED, "a.py", 1, 3))  # a failed python layer starts nothing
    p.on_event(Event("start", "x.py", 1, 3))
    assert p.finish(timeout=1) == {} and not (tmp_path / "bin" / "calls").exists() and said == []


def test_built_and_present_layers_start_their_plans_and_results_are_reported(tmp_path):
    p, said = _prefetcher(tmp_path, {"a.b.c": _plan("a.b.c", "a.py"), "x.y.z": _plan("x.y.z", "x.py")})
    p.available({"a.py"})
    p.on_event(Event(BUILT, "x.py", 2, 3))
    p.on_event(Event(BUILT, "x.py", 2, 3))  # a second event for the same layer starts nothing more
    deadline = time.monotonic() + 10
    while len(p.results) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    results = p.finish()
    assert sorted(results) == ["a.b.c", "x.y.z"] and all(r.ok for r in results.values())
    assert sorted((tmp_path / "bin" / "calls").read_text().split()) == ["req-of-a.b.c", "req-of-x.y.z"]
    assert all("prefetched the wheels of" in s for s in said) and len(said) == 2
    assert (tmp_path / "a.b.c.prefetch.log").read_text().startswith("=== prefetch of a.b.c on buildtool/a.py:h-1")


def test_a_failed_prefetch_is_reported_not_raised(tmp_path):
    p, said = _prefetcher(tmp_path, {"a.b.c": _plan("a.b.c", "a.py")})
    (tmp_path / "bin" / "fail").write_text("")
    p.available({"a.py"})
    deadline = time.monotonic() + 10
    while not p.results and time.monotonic() < deadline:
        time.sleep(0.05)
    result = p.finish()["a.b.c"]
    assert not result.ok and result.detail == "docker build exit 3"
    assert said and "its build fetches the wheels itself" in said[0]


def test_finish_stops_a_prefetch_still_running(tmp_path, monkeypatch):
    monkeypatch.setenv("SLEEP", "30")
    p, said = _prefetcher(tmp_path, {"a.b.c": _plan("a.b.c", "a.py")})
    p.available({"a.py"})
    time.sleep(0.3)
    t0 = time.monotonic()
    results = p.finish(timeout=5)
    assert time.monotonic() - t0 < 5
    assert not results.get("a.b.c") or not results["a.b.c"].ok
    assert not [t for t in threading.enumerate() if t.name.startswith("prefetch-")]
    p.available({"a.py"})  # stopped: nothing starts any more
    assert said == []
