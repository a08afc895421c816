"""Verify's reports (terminal table, Markdown, JSON, merged JUnit) and its plan, without an engine."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from fake_lock import fake_lock
from matrix_fixture import load

from buildtool.checks.report import CheckOutcome, ImageOutcome, RunSummary, outcome_from_results, render_markdown, render_table, summary_json
from buildtool.render.generate import generate
from buildtool.verify.runner import build_plan, merge_junit


def summary() -> RunSummary:
    good = ImageOutcome("openmpi4.1.4-debian12", "buildtool/a:h-1", [
        CheckOutcome("os/os-release", "os", "passed", "Debian 12"),
        CheckOutcome("mpi/two-rank-run", "mpi", "passed", "2 ranks"),
        CheckOutcome("gpu/device-visible", "gpu", "not-run", "no GPU: docker run --gpus all failed", tier="gpu"),
    ], checking_seconds=2.34, start_seconds=0.5)
    bad = ImageOutcome("onnxruntime1.23.2-cpu-debian12", "buildtool/b:h-2", [
        CheckOutcome("os/os-release", "os", "passed"),
        CheckOutcome("onnxruntime/provider-listed", "onnxruntime", "failed", "OpenVINOExecutionProvider is not in get_available_providers(): [a|b]"),
        CheckOutcome("onnxruntime/tiny-model-cpu", "onnxruntime", "passed"),
    ], checking_seconds=6.1)
    missing = ImageOutcome("mpich4.0.2-debian11", "buildtool/c:h-3", error="image buildtool/c:h-3 is not on the engine")
    return RunSummary("run-1", [good, bad, missing], gpu=False, gpu_reason="no GPU: docker run --gpus all failed", reports="/r/run-1")


def test_family_cells_fail_beats_pass_and_all_skipped_is_not_run():
    s = summary()
    good, bad, _ = s.images
    assert good.cell("os") == "pass" and good.cell("gpu") == "not run" and good.cell("onnxruntime") == "-"
    assert bad.cell("onnxruntime") == "FAIL"
    assert s.families() == ["os", "mpi", "gpu", "onnxruntime"]
    assert not s.ok and good.ok and not bad.ok


def test_terminal_table():
    text = render_table(summary())
    lines = text.splitlines()
    assert lines[0].split() == ["IMAGE", "OS", "MPI", "GPU", "ONNXRUNTIME", "SECONDS", "RESULT"]
    assert lines[1].split() == ["openmpi4.1.4-debian12", "pass", "pass", "not", "run", "-", "2.3", "ok"]
    assert "FAILED" in lines[2] and "ERROR" in lines[3]
    assert "FAIL  onnxruntime1.23.2-cpu-debian12 onnxruntime/provider-listed: OpenVINOExecutionProvider" in text
    assert "4 checks passed, 1 failed, 1 not run" in text


def test_markdown_report():
    md = render_markdown(summary())
    assert md.startswith("# Verify run run-1\n")
    assert "**failed**" in md and "GPU tier: not run — no GPU" in md
    assert "| IMAGE | OS | MPI | GPU | ONNXRUNTIME | SECONDS | RESULT |" in md
    assert "[a\\|b]" in md  # pipes in messages do not break the table
    assert "6.10 s after the container started (over target)" in md
    assert "**Error:** image buildtool/c:h-3 is not on the engine" in md


def test_json_summary():
    data = summary_json(summary())
    json.dumps(data)
    assert data["ok"] is False and data["counts"] == {"passed": 4, "failed": 1, "not-run": 1}
    first = data["images"][0]
    assert first["families"] == {"os": "passed", "mpi": "passed", "gpu": "not-run"} and first["checking_seconds"] == 2.34


def test_outcome_from_results_file():
    data = {"images": {"a": {"checking_seconds": 1.5, "container_start_seconds": 0.4, "error": ""}},
            "checks": [{"image": "a", "check": "os/os-release", "family": "os", "status": "passed", "message": "ok", "seconds": 0.1},
                       {"image": "b", "check": "os/os-release", "family": "os", "status": "failed"}]}
    out = outcome_from_results("a", "t", data)
    assert [c.check for c in out.checks] == ["os/os-release"] and out.ok and out.checking_seconds == 1.5
    crashed = outcome_from_results("a", "t", None, "Traceback ...")
    assert not crashed.ok and "no results" in crashed.error and crashed.log == "Traceback ..."


def test_merge_junit(tmp_path):
    for name, failures in (("a", 0), ("b", 1)):
        suite = ET.Element("testsuite", name=name, tests="2", failures=str(failures), errors="0", skipped="1", time="1.5")
        ET.SubElement(suite, "testcase", name=f"test_check[{name}::os/os-release]")
        root = ET.Element("testsuites")
        root.append(suite)
        ET.ElementTree(root).write(tmp_path / f"{name}.xml")
    merge_junit([tmp_path / "a.xml", tmp_path / "b.xml", tmp_path / "missing.xml"], tmp_path / "junit.xml")
    merged = ET.parse(tmp_path / "junit.xml").getroot()
    assert merged.tag == "testsuites" and [s.get("name") for s in merged] == ["a", "b"]
    assert (merged.get("tests"), merged.get("failures"), merged.get("skipped"), merged.get("time")) == ("4", "1", "2", "3.000")


def test_plan_adds_workdir_and_component_env(tmp_path):
    config = load(tmp_path)
    g = generate(config, fake_lock(config))
    names = [v.name for v in g.expansion.variants]
    plan = build_plan(config, g, names)
    entry = next(e for e in plan if e["node"] == "debian12.sys.sys.openmpi")
    ids = [c["id"] for c in entry["checks"]]
    assert ids.index("system/image-config") == ids.index("system/non-root-user") + 1
    params = entry["checks"][ids.index("system/image-config")]["params"]
    assert params["workdir"] == "/home/app" and entry["workdir"] == "/home/app"
    assert params["env"]["OMPI_MCA_btl_vader_single_copy_mechanism"] == "none"
    assert params["env"]["PATH"].endswith(":$PATH")
    json.dumps(plan)


def test_the_image_suite_collects_nothing_without_a_plan(tmp_path):
    """`pytest tests` (make test) must not try to check images when verify did not start it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUILDTOOL_")}
    out = subprocess.run([sys.executable, "-m", "pytest", str(repo / "tests" / "images"), "-q", "-p", "no:cacheprovider", "--co"],
                         capture_output=True, text=True, cwd=repo, env=env)
    assert "no tests collected" in out.stdout + out.stderr, out.stdout
