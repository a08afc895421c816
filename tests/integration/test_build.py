"""`buildtool build` on a real Docker Engine (BuildKit): one real chain of the matrix, built once per session.

The chain is debian12 -> system -> system-python -> openmpi from the real images.yaml
and images.lock, copied to a tmp dir with a per-session token in the project
description. The description is a label of every node, so the session's content-hash
tags are its own (every node really goes through `docker build`), while the RUN steps
before the labels stay in BuildKit's cache from earlier sessions (fast when warm).
Every tag the session builds is removed at the end; the base is left in place.

Failure, resume and secret tests append steps to a node's Dockerfile in memory and
re-derive the hashes and FROM lines below it (`mutate`), so generated/ and the tags
stay consistent (build refuses a hand-edited, stale generated/, see test_stale_...).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildtool.engine import client as engine

REPO = Path(__file__).resolve().parents[2]
TOKEN = uuid.uuid4().hex[:12]
MARKER = f"# buildtool-itest-secret-{uuid.uuid4().hex}"  # must never land in an image
HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CHAIN = ["--group", "all", "--filter", "os=debian12", "--filter", "python=system-python", "--filter", "mpi=openmpi",
         "--filter", "accelerator=cpu", "--filter", "onnxruntime=none"]
SIBLINGS = [*CHAIN[:6], "--filter", "mpi=openmpi,mpich", *CHAIN[8:]]

pytestmark = [pytest.mark.engine, pytest.mark.network]


# --------------------------------------------------------------------------- helpers (also used by the __main__ below)


def filters_of(cli_args: list[str]) -> tuple[str, tuple[str, ...]]:
    group = cli_args[cli_args.index("--group") + 1]
    return group, tuple(cli_args[i + 1] for i, a in enumerate(cli_args) if a == "--filter")


def load(work: Path):
    from buildtool.config.loader import load_config
    from buildtool.lock.format import load_lock
    from buildtool.render.generate import generate

    config = load_config(work / "images.yaml", None)
    return config, generate(config, load_lock(work / "images.lock"))


def mutate(g, edits: dict[str, str]) -> None:
    """Append text to the Dockerfiles of `edits`' nodes; re-derive hashes, tags and FROM lines below them."""
    from buildtool.render.render import RenderedNode, content_hash

    changed: dict[str, str] = {}  # node -> its new tag
    for nid, node in g.dag.nodes.items():  # topological
        if nid not in g.rendered or (nid not in edits and node.parent not in changed):
            continue
        r = g.rendered[nid]
        dockerfile, parent_ref = r.dockerfile, r.parent_ref
        if node.parent in changed:
            dockerfile = dockerfile.replace(r.parent_ref, changed[node.parent])
            parent_ref = changed[node.parent]
        dockerfile += edits.get(nid, "")
        parent = g.dag.nodes[node.parent]
        parent_hash = g.rendered[parent.id].hash if parent.id in g.rendered else hashlib.sha256(parent.base.local_ref.encode()).hexdigest()
        new = RenderedNode(nid, dockerfile, r.files, content_hash(parent_hash, dockerfile, dict(r.files)), parent_ref)
        g.rendered[nid] = new
        changed[nid] = new.tag


def write_contexts(g, out: Path) -> None:
    for nid, r in g.rendered.items():
        ctx = out / "nodes" / nid
        ctx.mkdir(parents=True, exist_ok=True)
        (ctx / "Dockerfile").write_text(r.dockerfile, encoding="utf-8")
        for name, text in r.files:
            (ctx / name).write_text(text, encoding="utf-8")
            (ctx / name).chmod(r.mode(name))


def log_of(work: Path, row: dict) -> Path:
    """A summary row's log (relative to the cwd of the run that wrote it)."""
    p = Path(row["log"])
    return p if p.is_absolute() else work / p


def run_mutated(work: Path, name: str, cli_args: list[str], edits: dict[str, str], ca_bundle: Path | None) -> tuple[int, dict]:
    """run_build in this process on a mutated plan; (exit code, summary)."""
    from buildtool.engine.build import BuildOptions, run_build
    from buildtool.plan.expand import select

    config, g = load(work)
    group, filters = filters_of(cli_args)
    chosen = select(config, g.expansion.variants, group, filters)
    g = resolve_edits(g, chosen, edits)
    out = work / f"generated-{name}"
    write_contexts(g, out)
    opts = BuildOptions(out=out, lock=work / "images.lock", logs=work / "logs", jobs=2, ca_bundle=ca_bundle, output_format="json")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = run_build(config, g, chosen, opts)
    return code, json.loads(buf.getvalue())


def resolve_edits(g, chosen, edits: dict[str, str]):
    """Edits keyed by role ('leaf', 'parent') or node id."""
    leaf = g.dag.variant_node[chosen[0].name]
    roles = {"leaf": leaf, "parent": g.dag.nodes[leaf].parent}
    mutate(g, {roles.get(k, k): v for k, v in edits.items()})
    return g


# --------------------------------------------------------------------------- fixtures


@dataclass
class Work:
    dir: Path
    ca_bundle: Path
    env: dict[str, str]

    def build(self, *args: str, timeout: int = 1800) -> tuple[subprocess.CompletedProcess, dict, float]:
        argv = [sys.executable, "-m", "buildtool", "build", "--config", str(self.dir / "images.yaml"), "--out", str(self.dir / "generated"),
                "--logs", str(self.dir / "logs"), "--format", "json", *args]
        t0 = time.monotonic()
        proc = subprocess.run(argv, cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=timeout)
        seconds = time.monotonic() - t0
        try:
            summary = json.loads(proc.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"no JSON summary (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc, summary, seconds


@pytest.fixture(scope="session")
def client(docker_ok):
    """The engine client (conftest.docker_ok), under the name these tests use."""
    return docker_ok


@pytest.fixture(scope="session")
def work(client, tmp_path_factory):
    lock = REPO / "images.lock"
    assert lock.is_file(), "images.lock is missing: run `buildtool lock` (the build needs real pins)"
    d = tmp_path_factory.mktemp("build")
    text = (REPO / "images.yaml").read_text(encoding="utf-8")
    text, n = re.subn(r"(?m)^(project:\n(?:  .*\n)*?  description: )(.*)$", rf"\g<1>\g<2> (itest {TOKEN})", text, count=1)
    assert n == 1, "project.description not found in images.yaml"
    (d / "images.yaml").write_text(text, encoding="utf-8")
    shutil.copy(lock, d / "images.lock")
    # A CA bundle that works through the proxy (the host's) plus a marker line OpenSSL ignores.
    bundle = d / "ca-bundle.pem"
    bundle.write_text((HOST_BUNDLE.read_text() if HOST_BUNDLE.is_file() else "") + f"\n{MARKER}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUILDTOOL_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    git = ["git", "-c", "user.name=itest", "-c", "user.email=itest@example.invalid", "-C", str(d)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "images.yaml", "images.lock"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "itest"], check=True)
    gen = subprocess.run([sys.executable, "-m", "buildtool", "generate", "--config", str(d / "images.yaml"), "--out", str(d / "generated"),
                          "--readme", str(d / "README.md")], cwd=d, env=env, capture_output=True, text=True)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    yield Work(d, bundle, env)
    # Remove every tag this session built (never anything else: other builds may run beside us).
    for path in (d / "logs").glob("*/summary.json"):
        for row in json.loads(path.read_text())["nodes"]:
            if row["status"] == "built":
                with contextlib.suppress(Exception):
                    client.images.remove(row["tag"])


@pytest.fixture(scope="session")
def cold(work):
    proc, summary, seconds = work.build(*CHAIN, "--jobs", "2", "--ca-bundle", str(work.ca_bundle))
    print(f"\ncold build of the debian12 openmpi chain: {seconds:.1f} s wall; "
          + ", ".join(f"{r['node']} {r['status']} {r['seconds']} s" for r in summary["nodes"]))
    return proc, summary, seconds


# --------------------------------------------------------------------------- tests


def test_build_makes_the_chain_and_the_leaf_runs_python_as_uid_1000(client, work, cold):
    proc, summary, _ = cold
    assert proc.returncode == 0, proc.stderr[-5000:]
    nodes = summary["nodes"]
    assert [r["status"] for r in nodes] == ["built"] * 3, nodes
    assert [r["node"].count(".") for r in nodes] == [1, 2, 3]  # system, python, mpi: parents first
    assert summary["docker_builds"] == sum(r["attempts"] for r in nodes)
    config, g = load(work.dir)
    for r in nodes:
        image = client.images.get(r["tag"])
        assert r["tag"] == g.rendered[r["node"]].tag
        assert image.labels["io.buildtool.hash"] == g.rendered[r["node"]].hash
        assert re.fullmatch(r"[0-9a-f]{40}", image.labels["org.opencontainers.image.revision"])
        assert r["size"] == image.attrs["Size"] > 0
        assert f"tagged {r['tag']}" in log_of(work.dir, r).read_text()
    leaf = nodes[-1]["tag"]
    out = client.containers.run(leaf, ["bash", "-c", "id -u; python --version; command -v python"], remove=True, network_mode="none")
    uid, version, python = out.decode().split("\n")[:3]
    assert uid == "1000"
    assert re.fullmatch(r"Python 3\.11\.\d+", version), version
    assert python == "/opt/venv/bin/python"
    summary_file = Path(work.dir / "logs" / summary["run_id"] / "summary.json")
    assert json.loads(summary_file.read_text()) == summary


def test_second_run_is_all_cached_and_runs_no_docker_build(work, cold):
    proc, summary, seconds = work.build(*CHAIN, "--jobs", "2")
    print(f"\nno-op rebuild: {seconds:.2f} s wall (process), {summary['seconds']} s inside run_build")
    assert proc.returncode == 0
    assert [r["status"] for r in summary["nodes"]] == ["cached"] * 3
    assert summary["docker_builds"] == 0
    assert seconds < 15 and summary["seconds"] < 5
    assert not any(p.suffix == ".log" for p in (work.dir / "logs" / summary["run_id"]).iterdir())


def test_force_rebuilds_present_nodes(work, cold):
    proc, summary, _ = work.build(*CHAIN, "--jobs", "2", "--force")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["status"] for r in summary["nodes"]] == ["built"] * 3
    assert summary["docker_builds"] == sum(r["attempts"] for r in summary["nodes"])


def test_a_failing_leaf_leaves_its_sibling_and_parents_built(client, work, cold):
    code, summary = run_mutated(work.dir, "fail", SIBLINGS, {"leaf": "RUN false\n"}, work.ca_bundle)
    by_status = {r["node"]: r["status"] for r in summary["nodes"]}
    assert code == 1 and summary["exit_code"] == 1
    failed = [n for n, s in by_status.items() if s == "failed"]
    assert len(failed) == 1 and failed[0].endswith(".openmpi"), by_status
    sibling = next(n for n in by_status if n.endswith(".mpich"))
    assert by_status[sibling] == "built"
    assert all(s == "cached" for n, s in by_status.items() if n not in (sibling, failed[0]))  # system, python
    row = next(r for r in summary["nodes"] if r["status"] == "failed")
    assert "RUN false" in log_of(work.dir, row).read_text()
    assert not engine.image_exists(client, row["tag"])  # nothing tagged for the failed node
    assert row["attempts"] == 1  # not a transient error: no retry


def test_ca_bundle_is_a_secret_never_in_history_config_or_layers(client, work, cold):
    # A step that fails unless the secret carries our bundle (grep exits 1 on no match); the
    # marker itself is never written in a Dockerfile, only the prefix grep looks for.
    step = ("RUN --mount=type=secret,id=ca-bundle,target=/run/secrets/ca-bundle,mode=0444 "
            f"grep -c '^# buildtool-itest-secret-' /run/secrets/ca-bundle && echo {TOKEN}-secret\n")
    code, summary = run_mutated(work.dir, "secret", CHAIN, {"leaf": step}, work.ca_bundle)
    assert code == 0, summary
    leaf = summary["nodes"][-1]
    assert leaf["status"] == "built"
    log = log_of(work.dir, leaf).read_text()
    assert f"--secret id=ca-bundle,src={work.ca_bundle}" in log and "--build-arg" not in log
    images = [leaf["tag"]] + [r["tag"] for r in cold[1]["nodes"]]
    for tag in images:
        history = subprocess.run([engine.docker_cli(), "history", "--no-trunc", tag], capture_output=True, text=True, check=True).stdout
        assert MARKER not in history and "BEGIN CERTIFICATE" not in history
        assert MARKER not in json.dumps(client.images.get(tag).attrs)
    # Every file of every layer of the leaf (its chain's layers included).
    save = subprocess.Popen([engine.docker_cli(), "save", leaf["tag"]], stdout=subprocess.PIPE)
    marker = MARKER.encode()
    layers = files = 0
    with tarfile.open(fileobj=save.stdout, mode="r|") as outer:
        for member in outer:
            if not member.isfile():
                continue
            data = outer.extractfile(member).read()
            assert marker not in data, member.name
            if member.name.endswith("layer.tar"):
                layers += 1
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as layer:
                    for f in layer:
                        if f.isfile():
                            files += 1
                            assert marker not in layer.extractfile(f).read(), f"{member.name}: {f.name}"
    assert save.wait() == 0
    assert layers >= 4 and files > 1000


def test_killed_build_leaves_nothing_half_tagged_and_the_rerun_resumes(client, work, cold):
    spec = {"parent": f"RUN echo {TOKEN}-resume\n", "leaf": f"RUN sleep 25 && echo {TOKEN}-slow\n"}
    runner = [sys.executable, str(Path(__file__)), "run-mutated", str(work.dir), "resume", json.dumps(CHAIN), json.dumps(spec), str(work.ca_bundle)]
    proc = subprocess.Popen(runner, cwd=work.dir, env=work.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # Wait until the leaf's slow step runs (its parent was built and tagged before it).
        deadline = time.monotonic() + 900
        leaf_log = None
        while time.monotonic() < deadline and proc.poll() is None:
            logs = [p for p in (work.dir / "logs").glob("*/*.openmpi.log") if f"{TOKEN}-slow" in p.read_text(errors="replace")]
            if logs and re.search(r"(?m)^#\d+ \[.*\] RUN sleep 25", logs[0].read_text(errors="replace")):
                leaf_log = logs[0]
                break
            time.sleep(0.5)
        assert leaf_log is not None, f"the leaf never reached its slow step (exit {proc.poll()})"
        time.sleep(3)
        os.killpg(proc.pid, signal.SIGTERM)  # the whole process group, as a CI cancel would
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-3000:]
    summary = json.loads(out)
    by_status = {r["node"]: r for r in summary["nodes"]}
    leaf = next(r for n, r in by_status.items() if n.endswith(".openmpi"))
    parent = next(r for n, r in by_status.items() if n.endswith(".system-python"))
    assert leaf["status"] == "interrupted" and summary["interrupted"]
    assert parent["status"] == "built"
    assert not engine.image_exists(client, leaf["tag"])  # nothing half-built is tagged
    assert engine.image_exists(client, parent["tag"])
    assert json.loads((work.dir / "logs" / summary["run_id"] / "summary.json").read_text())["exit_code"] == 130
    time.sleep(2)
    assert not engine.image_exists(client, leaf["tag"])  # nor tagged late by an orphaned build

    code, again = run_mutated(work.dir, "resume", CHAIN, spec, work.ca_bundle)
    assert code == 0
    assert [r["status"] for r in again["nodes"]] == ["cached", "cached", "built"]
    assert again["nodes"][1]["tag"] == parent["tag"] and again["nodes"][2]["tag"] == leaf["tag"]
    assert engine.image_exists(client, leaf["tag"])


def test_a_hand_edited_generated_tree_is_refused_before_any_build(work, cold):
    stale = work.dir / "generated-stale"
    shutil.copytree(work.dir / "generated", stale)
    leaf = next(p for p in (stale / "nodes").iterdir() if p.name.endswith(".system-python.openmpi"))
    (leaf / "Dockerfile").write_text((leaf / "Dockerfile").read_text() + "RUN false\n")
    argv = [sys.executable, "-m", "buildtool", "build", "--config", str(work.dir / "images.yaml"), "--out", str(stale),
            "--logs", str(work.dir / "logs-stale"), *CHAIN]
    proc = subprocess.run(argv, cwd=work.dir, env=work.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "stale" in proc.stderr and f"{leaf.name}/Dockerfile: differs" in proc.stderr
    assert not (work.dir / "logs-stale").exists()  # refused before any run started


if __name__ == "__main__":  # run-mutated WORK NAME CLI_ARGS_JSON EDITS_JSON CA_BUNDLE: a mutated build in a child process
    _, cmd, work_dir, name, cli_json, edits_json, bundle = sys.argv
    assert cmd == "run-mutated"
    from buildtool.engine.build import run_build as _run_build  # noqa: F401  (import before signals arrive)

    code, summary = run_mutated(Path(work_dir), name, json.loads(cli_json), json.loads(edits_json), Path(bundle))
    print(json.dumps(summary))
    sys.exit(code)
