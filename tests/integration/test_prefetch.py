"""Prefetch on the real engine: a node two layers below its python layer finds its wheels in its uv cache.

A small project: the shipped debian12 base and system-python, then Open MPI from wheels, then ONNX Runtime
(CPU) on top. Both components get a key unique to this run, so their uv cache mounts (`<os>-<axis>-<key>`)
start empty and both nodes are built. While the MPI node builds, the ONNX Runtime node's wheels are fetched
by a prefetch build on the python layer; the node's own install step must then find them in its cache (uv
prints "Installed" and no "Prepared"), and the prefetch's log shows uv preparing them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from buildtool.engine import client as engine

pytestmark = [pytest.mark.engine, pytest.mark.network]

REPO = Path(__file__).resolve().parents[2]


def _block(text: str, start: str) -> str:
    """The lines of images.yaml from `start` up to the next line indented as little or less."""
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line == start)
    indent = len(start) - len(start.lstrip())
    out = [lines[i]]
    for line in lines[i + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        out.append(line)
    return "\n".join(out) + "\n"


def _component(text: str, key: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"    {key}: "))


def _project(tmp_path: Path, mpi_key: str, ort_key: str) -> Path:
    shipped = (REPO / "images.yaml").read_text()
    project = tmp_path / "project"
    project.mkdir()
    yaml = (
        "schema: 1\n" + _block(shipped, "project:") + _block(shipped, "system:") + _block(shipped, "tools:")
        + "bases:\n" + _block(shipped, "  debian12:")
        + "components:\n  python:\n" + _block(shipped, "    system-python:")
        + "  mpi:\n" + _component(shipped, "openmpi5").replace("openmpi5:", f"{mpi_key}:", 1) + "\n"
        + "  accelerator:\n    cpu: {flavor: none, tag: \"\"}\n"
        + "  onnxruntime:\n" + _component(shipped, "ort-cpu").replace("ort-cpu:", f"{ort_key}:", 1) + "\n"
        + "tags: {image: \"{mpi.tag}-{accelerator.tag}-{onnxruntime.tag}-{python.tag}-{os.tag}\", release: \"{date}.v{n}\", moving: [latest]}\n"
        + "default_group: all\ngroups:\n  all: {select: [{}]}\nchecks: []\n"
        + f"matrix:\n  axes: {{os: [debian12], python: [system-python], mpi: [{mpi_key}], accelerator: [cpu], onnxruntime: [{ort_key}]}}\n"
    )
    (project / "images.yaml").write_text(yaml)
    shutil.copy(REPO / "images.lock", project / "images.lock")
    shutil.copy(REPO / "README.md", project / "README.md")
    return project


def _run(project: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUILDTOOL_")}
    return subprocess.run([sys.executable, "-m", "buildtool", *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


def _install_step(log: str) -> str:
    """The output of the node's `uv pip install` step (BuildKit's lines of that vertex)."""
    step = re.search(r"^#(\d+) \[[^\]]*\] RUN .*uv pip install.*$", log, re.MULTILINE)
    assert step, log[-3000:]
    return "\n".join(line for line in log.splitlines() if line.startswith(f"#{step.group(1)} "))


def test_a_grandchild_of_the_python_layer_installs_wheels_a_prefetch_fetched(docker_ok, tmp_path) -> None:
    suffix = secrets.token_hex(3)
    project = _project(tmp_path, f"openmpi5-pf{suffix}", f"ort-cpu-pf{suffix}")
    locked = _run(project, "lock", "--only", "pip")  # the ONNX Runtime set over Open MPI's pins is new; the rest re-keys offline
    assert locked.returncode == 0, locked.stdout[-2000:] + locked.stderr[-2000:]
    gen = _run(project, "generate")
    assert gen.returncode == 0, gen.stderr
    plan = {n["id"]: n for n in json.loads((project / "generated" / "plan.json").read_text())["nodes"]}
    leaf = next(nid for nid in plan if nid.endswith(f"ort-cpu-pf{suffix}"))
    mpi = plan[leaf]["parent"]

    done = _run(project, "build", "--format", "json", "--logs", str(tmp_path / "logs"))
    summary = json.loads(done.stdout)
    rows = {r["node"]: r for r in summary["nodes"]}
    assert done.returncode == 0, done.stderr[-3000:]
    assert rows[mpi]["status"] == "built" and rows[leaf]["status"] == "built"
    assert list(summary["prefetch"]) == [leaf], summary["prefetch"]  # the MPI node sits right on the python layer: none for it
    assert summary["prefetch"][leaf]["ok"], summary["prefetch"]

    fetched = Path(summary["prefetch"][leaf]["log"])
    fetched = fetched if fetched.is_absolute() else project / fetched
    assert re.search(r"Prepared \d+ packages?", fetched.read_text()), fetched.read_text()[-3000:]
    own = _install_step((tmp_path / "logs" / summary["run_id"] / f"{leaf}.log").read_text())
    assert re.search(r"Installed \d+ packages?", own), own
    assert "Prepared" not in own and "Downloading" not in own, own  # every wheel came from the cache the prefetch filled
    assert engine.image_id(engine.docker_client(), plan[leaf]["tag"])
