"""uv checks every wheel's hash before it installs anything: one wrong sha256 in a node's set fails its build.

A copy of the project whose lock has one wrong hash in the ort-cpu set of debian12 (the wheel is real,
the hash is not): only that node's content hash changes, its parents are the smoke group's (already
built by `make build`), and the build of that node must fail with uv's hash error, with no
"Installed" line in its log and no image tagged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from buildtool.engine import client as engine

pytestmark = [pytest.mark.engine, pytest.mark.network]

REPO = Path(__file__).resolve().parents[2]
NODE = "debian12.sys.system-python.ort-cpu"
IMAGE = "onnxruntime1.23.2-cpu-debian12"


def test_a_wrong_wheel_hash_fails_the_build_before_anything_is_installed(docker_ok, tmp_path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("images.yaml", "README.md"):
        shutil.copy(REPO / name, project / name)
    lock = json.loads((REPO / "images.lock").read_text())
    pins = next(s for s in lock["pip"].values() if NODE in s["nodes"])["pins"]  # sets are keyed by what they ask for
    victim = next(p for p in pins if p["name"] == "onnxruntime")
    victim["sha256"] = "0" * 64
    (project / "images.lock").write_text(json.dumps(lock))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUILDTOOL_")}
    gen = subprocess.run([sys.executable, "-m", "buildtool", "generate"], cwd=project, env=env, capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    plan = {n["id"]: n for n in json.loads((project / "generated" / "plan.json").read_text())["nodes"]}
    client = engine.docker_client()
    parent = plan[NODE]["parent"]
    if not engine.image_id(client, plan[parent]["tag"]):
        pytest.skip(f"{parent} is not built on this engine (`make build GROUP=smoke` builds it)")

    done = subprocess.run([sys.executable, "-m", "buildtool", "build", "--filter", f"name={IMAGE}", "--format", "json"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)
    summary = json.loads(done.stdout)
    rows = {r["node"]: r for r in summary["nodes"]}
    assert done.returncode == 1 and rows[NODE]["status"] == "failed", done.stderr[-3000:]
    assert rows[parent]["status"] == "cached"  # only the node whose set changed was built
    log = (project / rows[NODE]["log"]).read_text() if not Path(rows[NODE]["log"]).is_absolute() else Path(rows[NODE]["log"]).read_text()
    assert "0" * 64 in log and "hash" in log.lower()  # uv names the expected hash it did not get
    assert "Installed " not in log  # nothing was installed: the check comes first
    assert engine.image_id(client, plan[NODE]["tag"]) is None
