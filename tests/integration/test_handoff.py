"""Registry hand-off between two CI runners, played by two Docker Engines on this host.

Engine A (the default engine) builds DAG levels 0 and 1 of a small chain of the smoke group
(debian12.sys -> debian12.sys.system-python) and pushes their content-hash tags to the local
registry (scripts/registry.sh: TLS + htpasswd). Engine B (scripts/second-engine.sh: its own
data root, exec root, pidfile, socket and bridge; wiped first, so its cache is empty) then builds
level 2 (debian12.sys.system-python.openmpi, the image openmpi4.1.4-debian12) with the registry
as its cache: it must pull both parents by content-hash tag and rebuild none of them. Asserted
from B's decision line, B's build summary.json and log, and image ids (B's parents are A's
images, byte for byte). The figures go to logs/handoff-figures.json.

Needs root, a running engine A and docker-registry (installed by scripts/registry.sh).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
CHAIN = ["debian12.sys", "debian12.sys.system-python", "debian12.sys.system-python.openmpi"]
IMAGE = "openmpi4.1.4-debian12"
REGISTRY_PORT = os.environ.get("BUILDTOOL_HANDOFF_REGISTRY_PORT", "5055")
REGISTRY_STATE = os.environ.get("BUILDTOOL_HANDOFF_REGISTRY_STATE", "/var/lib/buildtool-registry-handoff")
ENGINE_B = "unix:///run/buildtool-engine-b.sock"


def _run(argv: list[str], env: dict[str, str] | None = None, timeout: int = 1200) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}")
    return done


def _engine_a_answers() -> bool:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    try:
        return subprocess.run(["docker", "info"], env=env, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def registry_env() -> Iterator[dict[str, str]]:
    if os.geteuid() != 0:
        pytest.skip("needs root (a second dockerd, a bridge, the registry)")
    if not _engine_a_answers():
        pytest.skip("no Docker Engine answers (run `make engine`)")
    env = dict(os.environ, BUILDTOOL_REGISTRY_PORT=REGISTRY_PORT, BUILDTOOL_REGISTRY_STATE=REGISTRY_STATE)
    try:
        _run(["bash", "scripts/registry.sh", "start"], env=env, timeout=600)
        lines = _run(["bash", "scripts/registry.sh", "env"], env=env).stdout.splitlines()
        yield {k: v for k, v in (line.split("=", 1) for line in lines if "=" in line)}
    finally:
        # The registry this fixture started must not outlive the tests, also when they (or the start) fail.
        subprocess.run(["bash", "scripts/registry.sh", "stop"], cwd=ROOT, env=env, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def engine_b():
    _run(["bash", "scripts/second-engine.sh", "wipe"])  # an empty cache: a fresh runner
    _run(["bash", "scripts/second-engine.sh", "start"], timeout=180)
    try:
        yield ENGINE_B
    finally:
        subprocess.run(["bash", "scripts/second-engine.sh", "wipe"], cwd=ROOT, capture_output=True, timeout=300)


def _env(registry_env: dict[str, str], host: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "BUILDTOOL_REGISTRY", "BUILDTOOL_NAMESPACE")}
    env.update(registry_env)
    if host:
        env["DOCKER_HOST"] = host
    return env


def _tags(env: dict[str, str]) -> dict[str, str]:
    out = _run([PY, "-m", "buildtool.cli.main", "matrix", "--group", "smoke", "--filter", f"name={IMAGE}", "--level", "0"], env=env).stdout
    tags = {e["node"]: e["tag"] for e in json.loads(out)["include"]}
    for level in (1, 2):
        out = _run([PY, "-m", "buildtool.cli.main", "matrix", "--group", "smoke", "--filter", f"name={IMAGE}", "--level", str(level)], env=env).stdout
        tags.update({e["node"]: e["tag"] for e in json.loads(out)["include"]})
    assert list(tags) == CHAIN
    return tags


def _image_id(ref: str, host: str | None) -> str | None:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    if host:
        env["DOCKER_HOST"] = host
    done = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", ref], env=env, capture_output=True, text=True, timeout=60)
    return done.stdout.strip() if done.returncode == 0 else None


def _layers(ref: str, host: str | None) -> list[str]:
    env = dict(os.environ, DOCKER_HOST=host) if host else {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", ref], env=env, capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)


def _delete_from_registry(registry_env: dict[str, str], local_tag: str) -> bool:
    """Remove a content-hash tag's manifest from the registry (so B has something to build)."""
    import base64
    import ssl

    from buildtool.edges.registry import MANIFEST_TYPES, Registry

    reg = Registry.from_env(env=registry_env)
    repo, tag = reg.repository(local_tag)
    ctx = ssl.create_default_context(cafile=str(reg.ca)) if reg.ca else ssl.create_default_context()
    auth = "Basic " + base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    req = urllib.request.Request(f"https://{reg.host}/v2/{repo}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": MANIFEST_TYPES, "Authorization": auth})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            digest = resp.headers["Docker-Content-Digest"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    req = urllib.request.Request(f"https://{reg.host}/v2/{repo}/manifests/{digest}", method="DELETE", headers={"Authorization": auth})
    with urllib.request.urlopen(req, context=ctx, timeout=30):
        pass
    return True


def test_engine_b_pulls_parents_by_content_hash_tag_and_rebuilds_none(registry_env, engine_b, tmp_path):
    figures: dict = {"registry": registry_env["BUILDTOOL_REGISTRY"], "engine_b": engine_b}
    env_a = _env(registry_env, None)
    env_b = _env(registry_env, engine_b)
    tags = _tags(env_a)
    parents = CHAIN[:2]

    # --- engine A: levels 0 and 1 (built here unless already local or in the registry), pushed by content-hash tag
    t0 = time.monotonic()
    done = _run([PY, "-m", "buildtool", "ci", "build", "--group", "smoke", "--node", parents[-1], "--logs", str(tmp_path / "logs-a"), "--jobs", "1"], env=env_a, timeout=3000)
    figures["a_build_seconds"] = round(time.monotonic() - t0, 1)
    figures["a_decision"] = _decision(done.stdout)
    for node in parents:
        if _image_id(tags[node], None) is None:  # the registry had it and A had no need to pull: fetch it for the id comparison
            _run([PY, "-m", "buildtool", "ci", "pull", tags[node]], env=env_a)
    t0 = time.monotonic()
    pushed = [json.loads(line) for line in _run([PY, "-m", "buildtool", "ci", "push", *(tags[n] for n in parents)], env=env_a, timeout=1800).stdout.splitlines()]
    figures["a_push_seconds"] = round(time.monotonic() - t0, 1)
    figures["a_pushed"] = {p["tag"]: p["digest"] for p in pushed}
    ids_a = {n: _image_id(tags[n], None) for n in parents}
    assert all(ids_a.values())

    # level 2 must be missing from the registry (an earlier run, or the bench, may have pushed it)
    figures["deleted_stale_level2"] = _delete_from_registry(registry_env, tags[CHAIN[2]])

    # --- engine B: empty cache, level 2 of the chain with the registry as the cache
    assert _image_id(tags[CHAIN[0]], engine_b) is None, "engine B must start empty"
    logs_b = tmp_path / "logs-b"
    t0 = time.monotonic()
    done = _run([PY, "-m", "buildtool", "ci", "build", "--group", "smoke", "--filter", f"name={IMAGE}", "--logs", str(logs_b), "--jobs", "1"],
                env=env_b, timeout=3000)
    figures["b_seconds"] = round(time.monotonic() - t0, 1)
    decision = _decision(done.stdout)
    figures["b_decision"] = decision
    assert decision["to_build"] == [CHAIN[2]]
    assert sorted(decision["pulled"]) == sorted(tags[n] for n in parents), "B pulls exactly the parents, by content-hash tag"

    (summary_path,) = logs_b.glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    status = {r["node"]: r["status"] for r in summary["nodes"]}
    figures["b_summary"] = {"status": status, "docker_builds": summary["docker_builds"], "seconds": summary["seconds"],
                            "built_seconds": {r["node"]: r["seconds"] for r in summary["nodes"] if r["status"] == "built"}}
    assert status == {CHAIN[0]: "cached", CHAIN[1]: "cached", CHAIN[2]: "built"}
    assert summary["docker_builds"] == 1, "B ran exactly one docker build: the level-2 node"
    logs = {p.stem: p.read_text() for p in summary_path.parent.glob("*.log")}
    assert set(logs) == {CHAIN[2]}, "no build log for a parent: none was rebuilt"
    assert f"tagged {tags[CHAIN[2]]}" in logs[CHAIN[2]]

    # the parents on B are A's images (pulled, not rebuilt), and the child sits on them
    ids_b = {n: _image_id(tags[n], engine_b) for n in parents}
    figures["image_ids"] = {n: {"a": ids_a[n], "b": ids_b[n]} for n in parents}
    assert ids_b == ids_a
    parent_layers = _layers(tags[parents[-1]], engine_b)
    child_layers = _layers(tags[CHAIN[2]], engine_b)
    assert child_layers[: len(parent_layers)] == parent_layers
    figures["b_built_tag"] = tags[CHAIN[2]]
    figures["b_built_image"] = _image_id(tags[CHAIN[2]], engine_b)

    # the first engine kept its default bridge
    assert subprocess.run(["ip", "link", "show", "docker0"], capture_output=True).returncode == 0

    out = ROOT / "logs" / "handoff-figures.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(json.dumps(figures, indent=2, sort_keys=True))


def _decision(stdout: str) -> dict:
    m = re.search(r"^registry-plan: (\{.*\})$", stdout, flags=re.M)
    assert m, f"no registry-plan line in:\n{stdout[-2000:]}"
    return json.loads(m.group(1))
