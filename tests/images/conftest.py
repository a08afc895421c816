"""pytest-testinfra suite run by `buildtool verify`: one test per (image, check) of the plan.

Inputs (environment):
  BUILDTOOL_VERIFY_PLAN     the plan JSON written by `buildtool verify` (required; without it
                            this folder collects nothing, so `pytest tests` skips it)
  BUILDTOOL_VERIFY_IMAGE    comma-separated image names to check (default: every image in the plan)
  BUILDTOOL_VERIFY_RESULTS  where to write per-check outcomes and timings (JSON) for the reports

Each image gets one container for the whole session (see buildtool.checks.session); the
first of its checks starts it and runs every probe in one batch, the others read the cache.
A check that needs a device kind is skipped ("not run") unless the plan's `devices` says that kind's
`docker run` flags work (`--gpus all` for nvidia, see buildtool/components/devices.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PLAN_ENV, IMAGE_ENV, RESULTS_ENV = "BUILDTOOL_VERIFY_PLAN", "BUILDTOOL_VERIFY_IMAGE", "BUILDTOOL_VERIFY_RESULTS"

if not os.environ.get(PLAN_ENV):
    collect_ignore_glob = ["test_*.py"]


def load_plan() -> dict:
    data = json.loads(Path(os.environ[PLAN_ENV]).read_text(encoding="utf-8"))
    if isinstance(data, list):  # a bare image_plan() list
        data = {"images": data}
    wanted = [n for n in os.environ.get(IMAGE_ENV, "").split(",") if n]
    if wanted:
        known = {e["image"] for e in data["images"]}
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise pytest.UsageError(f"{IMAGE_ENV}: not in the plan: {', '.join(unknown)}")
        data["images"] = [e for e in data["images"] if e["image"] in wanted]
    return data


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "check" not in metafunc.fixturenames:
        return
    plan = load_plan()
    params = []
    for entry in plan["images"]:
        for check in entry["checks"]:
            marks = [pytest.mark.gpu] if check.get("tier", "cpu") != "cpu" else []
            params.append(pytest.param(entry["image"], check, id=f"{entry['image']}::{check['id']}", marks=marks))
    metafunc.parametrize(("image_name", "check"), params)


class Sessions:
    """Image name -> ImageSession, started on first use; all stopped at the end of the session."""

    def __init__(self, plan: dict) -> None:
        from buildtool.checks.session import ImageSession

        self.plan = plan
        self.gpu = bool(plan.get("gpu", False))
        self.gpu_reason = str(plan.get("gpu_reason", "no GPU: docker run --gpus all failed"))
        self.entries = {e["image"]: e for e in plan["images"]}
        devices = plan.get("devices")
        self._make = lambda entry: ImageSession(entry, assets=HERE / "models", gpu=self.gpu, run_id=str(plan.get("run", "")), devices=devices)
        self.sessions: dict = {}
        self.finished: dict[str, float] = {}

    def get(self, name: str):
        if name not in self.sessions:
            self.sessions[name] = self._make(self.entries[name])
        return self.sessions[name]

    def close(self) -> None:
        for session in self.sessions.values():
            session.stop()


_STATE: dict = {"reports": [], "sessions": None}


@pytest.fixture(scope="session")
def sessions():
    state = Sessions(load_plan())
    _STATE["sessions"] = state
    yield state
    state.close()


@pytest.fixture
def image_session(sessions, image_name):
    return sessions.get(image_name)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    props = dict(report.user_properties)
    if "check" not in props:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        status = {"passed": "passed", "failed": "failed", "skipped": "not-run"}[report.outcome]
        message = props.get("note", "")
        if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
            message = str(report.longrepr[2]).removeprefix("Skipped: ")
        elif report.outcome == "failed":
            message = str(getattr(report.longrepr, "reprcrash", None) and report.longrepr.reprcrash.message or report.longrepr)
            message = message.removeprefix("Failed: ")
        _STATE["reports"].append({"image": props["image"], "check": props["check"], "family": props["family"],
                                  "node": props.get("node", ""), "tier": props.get("tier", "cpu"), "status": status,
                                  "message": message, "seconds": round(report.duration, 3)})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    out = os.environ.get(RESULTS_ENV)
    if not out:
        return
    state: Sessions | None = _STATE["sessions"]
    images = {}
    if state is not None:
        for name, s in state.sessions.items():
            images[name] = {"tag": s.entry["tag"], "container_start_seconds": round(s.start_seconds, 3),
                            "checking_seconds": round(state.finished.get(name, s.checking_seconds()), 3),
                            "gather_seconds": round(s.gather_seconds, 3), "probe_seconds": s.probe_seconds, "error": s.error}
            if s.image is not None and s.image.results:  # what the SBOM states (buildtool/attest/inventory.py)
                from buildtool.attest.inventory import from_results

                probes = {k: (r.rc, r.stdout) for k, r in s.image.results.items()}
                images[name]["inventory"] = from_results(probes, f"verify run {state.plan.get('run', '')}").to_json()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps({"finished": time.time(), "exitstatus": int(exitstatus), "images": images,
                                     "checks": _STATE["reports"]}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
