"""`buildtool verify`: prove what each built image claims, with pytest + pytest-testinfra.

The plan (buildtool.verify.checkplan: derived checks along the DAG, declared checks, expected
labels; plus the image's workdir and the components' ENV) is written to
`<reports>/<run>/plan.json`. Then one pytest process per image runs the suite in
tests/images/ against it (a pool of --jobs processes), each with one long-lived container
of its image; see buildtool/checks/ for the checks and tests/images/conftest.py for the
session. A check that needs a device kind (buildtool/components/devices.py: nvidia ->
`docker run --gpus all`) runs only where a container of the kind starts; elsewhere it is
reported as not run, never as passed.

Writes under `<reports>/<run>/`: plan.json, junit.xml (all images), junit/<image>.xml,
results/<image>.json, logs/<image>.log and report.md. Prints the image x family table
(or, with --format json, the summary as JSON). Exit 0 only when every check that ran passed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checks.report import RunSummary, outcome_from_results, render_markdown, render_table, summary_json
from ..checks.session import RUN_LABEL, docker_cli
from ..components.devices import check_device, device_kind
from ..config.model import Config, Variant
from ..errors import OperationError
from ..render.generate import Generated
from ..render.render import node_flavor
from ..runlog import new_run_folder
from .checkplan import image_plan

EXIT_OK, EXIT_FAILED = 0, 1
REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "tests" / "images"
GPU_OFF = "GPU tier off (--gpu no)"


# The plan ---------------------------------------------------------------------------------


def image_extras(config: Config, g: Generated, node_id: str) -> dict[str, Any]:
    """What the image's config must show beyond labels: the workdir and the ENV its components set."""
    env: dict[str, str] = {}
    for node in g.dag.chain(node_id):
        if node.component is not None:
            env.update(node_flavor(node).env(node.component, node.facts))
    return {"workdir": config.system.workdir, "env": dict(sorted(env.items()))}


def build_plan(config: Config, g: Generated, names: list[str]) -> list[dict[str, Any]]:
    """image_plan() plus a system/image-config check (workdir and ENV as rendered)."""
    plan = image_plan(config, g.dag, g.rendered, names)
    for entry in plan:
        extras = image_extras(config, g, entry["node"])
        entry.update(extras)
        check = {"id": "system/image-config", "family": "system", "name": "image-config", "node": entry["node"], "tier": "cpu",
                 "device": None, "params": extras}
        ids = [c["id"] for c in entry["checks"]]
        at = ids.index("system/non-root-user") + 1 if "system/non-root-user" in ids else 0
        entry["checks"].insert(at, check)
    return plan


# The engine ---------------------------------------------------------------------------------


def _docker(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([docker_cli(), *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"docker {args[0]} timed out after {timeout}s")
    except OSError as exc:
        return subprocess.CompletedProcess(args, 127, "", str(exc))


def engine_answers() -> str | None:
    """None when an engine answers; else why not."""
    done = _docker("version", "--format", "{{.Server.Version}}", timeout=30)
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["no answer"])[-1]


def image_present(tag: str) -> bool:
    return _docker("image", "inspect", "--format", "{{.Id}}", tag).returncode == 0


def detect_device(mode: str, kind: str, tags: list[str]) -> tuple[bool, str]:
    """(run the checks of this device kind?, why not). auto: only where `docker run <the kind's flags> <image> true` works."""
    if mode == "no":
        return False, GPU_OFF
    if mode == "yes":
        return True, ""
    dk = device_kind(kind)
    if not tags:
        return False, dk.no_device + " (no built image to try it with)"
    done = _docker("run", "--rm", *dk.run_args, "--network", "none", "--entrypoint", "true", tags[0], timeout=180)
    return (True, "") if done.returncode == 0 else (False, dk.no_device)


def detect_devices(mode: str, plan: list[dict[str, Any]], present: dict[str, bool]) -> dict[str, dict[str, Any]]:
    """kind -> {"on": bool, "reason": str} for every device kind the plan's checks need, tried with an image that needs it."""
    out: dict[str, dict[str, Any]] = {}
    kinds = sorted({k for e in plan for c in e["checks"] if (k := check_device(c))})
    for kind in kinds:
        tags = [e["tag"] for e in plan if present[e["image"]] and any(check_device(c) == kind for c in e["checks"])]
        on, reason = detect_device(mode, kind, tags)
        out[kind] = {"on": on, "reason": reason}
    return out


def devices_summary(devices: dict[str, dict[str, Any]]) -> tuple[bool, str]:
    """(any device tier on, why the others are off) for the report's one GPU-tier line."""
    if not devices:
        return False, "no GPU-tier checks selected"
    off = [f"{k}: {d['reason']}" if len(devices) > 1 else d["reason"] for k, d in devices.items() if not d["on"]]
    return any(d["on"] for d in devices.values()), "; ".join(off)


def remove_run_containers(run_id: str) -> int:
    """Remove every container labelled with this run (a killed pytest leaves its container behind)."""
    found = _docker("ps", "-aq", "--filter", f"label={RUN_LABEL}={run_id}")
    ids = found.stdout.split() if found.returncode == 0 else []
    if ids:
        _docker("rm", "-f", *ids)
    return len(ids)


# Running the suite ------------------------------------------------------------------------------


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def pytest_command(run_dir: Path, image: str) -> list[str]:
    return [sys.executable, "-m", "pytest", str(SUITE), "-q", "-rN", "-p", "no:cacheprovider", "--rootdir", str(REPO),
            "--junitxml", str(run_dir / "junit" / f"{_safe(image)}.xml"), "-o", f"junit_suite_name={image}",
            "-o", "junit_logging=no", "-o", "junit_family=xunit1", "-o", "addopts="]


def run_image(run_dir: Path, plan_file: Path, entry: dict[str, Any], timeout: int = 1800) -> tuple[dict[str, Any] | None, str]:
    """Run the suite for one image; (its results file's content or None, the log's tail)."""
    image = entry["image"]
    results = run_dir / "results" / f"{_safe(image)}.json"
    log = run_dir / "logs" / f"{_safe(image)}.log"
    env = {**os.environ, "BUILDTOOL_VERIFY_PLAN": str(plan_file), "BUILDTOOL_VERIFY_IMAGE": image,
           "BUILDTOOL_VERIFY_RESULTS": str(results), "PYTHONDONTWRITEBYTECODE": "1"}
    with open(log, "w", encoding="utf-8") as fh:
        try:
            subprocess.run(pytest_command(run_dir, image), cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            fh.write(f"\nbuildtool verify: the check session of {image} ran over {timeout}s and was stopped\n")
    tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:])
    try:
        return json.loads(results.read_text(encoding="utf-8")), tail
    except (OSError, ValueError):
        return None, tail


def merge_junit(parts: list[Path], out: Path) -> None:
    root = ET.Element("testsuites", name="buildtool verify")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    seconds = 0.0
    for part in parts:
        try:
            tree = ET.parse(part)
        except (OSError, ET.ParseError):
            continue
        suites = [tree.getroot()] if tree.getroot().tag == "testsuite" else list(tree.getroot().iter("testsuite"))
        for suite in suites:
            root.append(suite)
            for key in totals:
                totals[key] += int(suite.get(key, "0") or 0)
            seconds += float(suite.get("time", "0") or 0)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{seconds:.3f}")
    ET.indent(root)
    out.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _progress_line(outcome) -> str:
    if outcome.error:
        return f"  ERROR  {outcome.image}: {outcome.error}"
    mark = "ok    " if outcome.ok else "FAILED"
    passed = sum(1 for c in outcome.checks if c.status == "passed")
    secs = "-" if outcome.checking_seconds is None else f"{outcome.checking_seconds:.1f} s"
    return (f"  {mark} {outcome.image}: {passed} passed, {len(outcome.failed)} failed, {len(outcome.not_run)} not run; "
            f"checking {secs} after the container started")


def verify_plan(plan: list[dict[str, Any]], reports: Path, jobs: int = 2, gpu: str = "auto", output_format: str = "table",
                run_id: str | None = None, out=None) -> tuple[int, RunSummary]:
    """Check the images of a plan (a list of image_plan() entries). Returns (exit code, summary)."""
    out = out or sys.stdout
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if output_format == "json" else (lambda text: print(text, file=out, flush=True))
    why = engine_answers()
    if why is not None:
        raise OperationError(f"no Docker Engine answers ({why}); run `make engine`")
    if not SUITE.is_dir():
        raise OperationError(f"the image test suite is missing: {SUITE}")
    if run_id is None:
        run_id, run_dir = new_run_folder(reports)
    else:
        run_dir = reports / run_id
    run_dir = run_dir.resolve()  # the pytest processes run in the repository root
    for sub in ("junit", "results", "logs"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    present = {e["image"]: image_present(e["tag"]) for e in plan}
    devices = detect_devices(gpu, plan, present)
    gpu_on, gpu_reason = devices_summary(devices)
    plan_file = run_dir / "plan.json"
    plan_file.write_text(json.dumps({"run": run_id, "gpu": gpu_on, "gpu_reason": gpu_reason, "devices": devices, "images": plan}, indent=2,
                                    sort_keys=True) + "\n", encoding="utf-8")
    say(f"verify {run_id}: {len(plan)} images, {sum(len(e['checks']) for e in plan)} checks, {max(1, jobs)} at a time; "
        f"GPU tier {'on' if gpu_on else 'off: ' + gpu_reason}; reports in {run_dir}")

    lock = threading.Lock()
    outcomes: dict[str, Any] = {}

    def one(entry: dict[str, Any]) -> None:
        if not present[entry["image"]]:
            outcome = outcome_from_results(entry["image"], entry["tag"], {"checks": [], "images": {}})
            outcome.error = f"image {entry['tag']} is not on the engine; build it first (`buildtool build`)"
        else:
            data, tail = run_image(run_dir, plan_file, entry)
            outcome = outcome_from_results(entry["image"], entry["tag"], data, tail)
        with lock:
            outcomes[entry["image"]] = outcome
            say(_progress_line(outcome))

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(one, plan))
    finally:
        remove_run_containers(run_id)

    summary = RunSummary(run_id, [outcomes[e["image"]] for e in plan], gpu_on, gpu_reason, str(run_dir))
    merge_junit(sorted((run_dir / "junit").glob("*.xml")), run_dir / "junit.xml")
    (run_dir / "report.md").write_text(render_markdown(summary), encoding="utf-8")
    (run_dir / "summary.json").write_text(json.dumps(summary_json(summary), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if output_format == "json":
        print(json.dumps(summary_json(summary), indent=2, sort_keys=True), file=out)
    else:
        print("", file=out)
        print(render_table(summary), end="", file=out)
        print(f"reports: {run_dir}/report.md, {run_dir}/junit.xml", file=out)
    return (EXIT_OK if summary.ok else EXIT_FAILED), summary


@dataclass(frozen=True)
class VerifyOptions:
    reports: Path = Path("reports")  # JUnit XML, the Markdown report, per-image results
    jobs: int = 2  # images checked at once
    gpu: str = "auto"  # auto | yes | no: run the device tier
    output_format: str = "table"


def run_verify(config: Config, g: Generated, chosen: Sequence[Variant], opts: VerifyOptions) -> int:
    names = [v.name for v in chosen]
    if not names:
        raise OperationError("no images selected (check --group and --filter)")
    plan = build_plan(config, g, names)
    rc, _ = verify_plan(plan, opts.reports, jobs=opts.jobs, gpu=opts.gpu, output_format=opts.output_format)
    return rc
