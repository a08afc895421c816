"""`buildtool build`: the selected images' layer DAG on a Docker Engine with BuildKit.

Each needed node (the chains of the chosen images, bases excluded) is built from
`<out>/nodes/<id>` with `DOCKER_BUILDKIT=1 docker build`, FROM its parent's
content-hash tag; up to --jobs at once (buildtool.engine.scheduler). A node whose tag
exists is cached. A build writes no tag itself (`--iidfile`, no `-t`): the
content-hash tag is set only after it succeeded, so a failed, killed or
interrupted build leaves nothing tagged and the next run resumes.

Secrets (the CA bundle of a TLS-intercepting proxy, a pip.conf for a site PyPI
mirror) go in as BuildKit secrets (`--secret id=ca-bundle,...`), never as build
args; the Dockerfiles mount them only in download steps.

Logs: `<logs>/<run-id>/<node>.log` per node and `<logs>/<run-id>/summary.json`.
Env: BUILDTOOL_DOCKER_CLI (the docker client used for builds, see engine.buildkit_cli),
BUILDTOOL_BUILD_RETRIES (extra attempts after a transient download error, default 2).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.model import DEFAULT_PLATFORM, Config, Variant
from ..edges.git import git_revision
from ..errors import OperationError
from ..lock.apt_sources import fetch_roots
from ..lock.format import Lock, load_lock, platform_lock
from ..render.generate import Generated
from ..runlog import new_run_folder, tail_lines
from . import client as engine
from .interrupts import sigterm_as_interrupt
from .node_build import NodeJob, Runner, retries_from_env
from .progress import Console, summary_table
from .scheduler import BUILT, CACHED, FAILED, INTERRUPTED, OK, Event, Schedule, execute

DEFAULT_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


# --------------------------------------------------------------------------- pure helpers


def needed_nodes(g: Generated, chosen: Sequence[Variant]) -> list[str]:
    """The chains of the chosen images without base nodes, in the DAG's topological order."""
    wanted: set[str] = set()
    for v in chosen:
        wanted.update(n.id for n in g.dag.chain(g.dag.variant_node[v.name]) if n.stage != "base")
    return [nid for nid in g.dag.nodes if nid in wanted]


def stale_contexts(g: Generated, nodes: Sequence[str], out: Path) -> list[str]:
    """Problems with `<out>/nodes/<id>` compared with what images.yaml + images.lock render.

    The content-hash tag names the rendered content; building anything else under it
    would make the tag lie, so a stale context is refused (run `buildtool generate`).
    """
    problems: list[str] = []
    for nid in nodes:
        r = g.rendered[nid]
        ctx = out / "nodes" / nid
        for name, text in (("Dockerfile", r.dockerfile), *r.files):
            path = ctx / name
            try:
                on_disk = path.read_text(encoding="utf-8")
            except OSError:
                problems.append(f"{path}: missing")
                continue
            if on_disk != text:
                problems.append(f"{path}: differs from images.yaml + images.lock")
            elif r.mode(name) & 0o111 and not os.access(path, os.X_OK):
                problems.append(f"{path}: not executable")
    return problems


def resolve_ca_bundle(cli_value: Path | None, site_value: str | None, default: Path = DEFAULT_CA_BUNDLE) -> Path | None:
    """--ca-bundle, else the site overlay's ca_bundle, else the host bundle when it exists."""
    for candidate in (cli_value, site_value):
        if candidate:
            path = Path(candidate)
            if not path.is_file():
                raise OperationError(f"CA bundle {path} is not a readable file")
            return path.resolve()
    return default if default.is_file() else None


def preflight_pins(config: Config, lock: Lock, bases: list[str]) -> None:
    """Before any build: every locked .deb of the bases about to be built can be fetched, else stop and say which."""
    from ..lock.check import check_lock, render_report

    report = check_lock(lock, config.site, bases=[b for b in bases if b in lock.bases])
    if report.stale:
        raise OperationError(render_report(report) + "\nlocked .debs can no longer be fetched (listed above); nothing was built")


def apt_build_args(config: Config, lock: Lock) -> dict[str, tuple[tuple[str, str], ...]]:
    """base -> the BUILDTOOL_APT_ROOTS build arg, where the site fetches .debs from elsewhere than the lock's archives
    (a mirror, or a snapshot at the lock's time). The files are the same: install-debs checks every sha256."""
    if not (config.site.apt_mirror or config.site.apt_snapshot):
        return {}
    return {key: (("BUILDTOOL_APT_ROOTS", " ".join(f"{a}={u}" for a, u in sorted(fetch_roots(b, config.site).items()))),)
            for key, b in lock.bases.items()}


def pip_conf_text(pypi_index: str | None) -> str | None:
    if not pypi_index:
        return None
    return f"[global]\nindex-url = {pypi_index}\n"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- entry point


@dataclass(frozen=True)
class BuildOptions:
    """How `buildtool build` runs: the generated/ folder and lock it builds from, logs, parallelism."""

    out: Path  # the generated/ folder
    lock: Path
    logs: Path = Path("logs")
    jobs: int = 2
    force: bool = False  # rebuild nodes whose content-hash tag exists
    ca_bundle: Path | None = None  # extra CA bundle for download steps (else the site overlay's)
    output_format: str = "table"
    platform: str = DEFAULT_PLATFORM  # out/ is then that platform's contexts (generated/platforms/<os>-<arch>/)


def run_build(config: Config, g: Generated, chosen: Sequence[Variant], opts: BuildOptions) -> int:
    """Build the needed nodes of `chosen`; print progress and a summary. 0 all built/cached, 1 failures, 130 interrupted."""
    t0 = time.monotonic()
    fmt = opts.output_format
    out_stream = sys.stderr if fmt == "json" else sys.stdout
    with sigterm_as_interrupt():
        try:
            return _run(config, g, chosen, opts, t0, fmt, out_stream)
        except KeyboardInterrupt:  # before or after the scheduler (which handles its own)
            print("interrupted", file=sys.stderr)
            return 130


def _run(config: Config, g: Generated, chosen: Sequence[Variant], opts: BuildOptions, t0: float, fmt: str, out_stream: Any) -> int:
    out = opts.out
    nodes = needed_nodes(g, chosen)
    if not nodes:
        raise OperationError("the selection has no images to build")
    problems = stale_contexts(g, nodes, out)
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise OperationError(f"{out}/ is stale for the selected nodes; run `buildtool generate` (or `make generate`) first:\n  {shown}")

    platform = opts.platform
    lock = platform_lock(load_lock(opts.lock), platform)
    quick = engine.local_tags_quick()
    client = engine.docker_client() if quick is None else None
    tags = quick if quick is not None else engine.local_tags(client)
    force = opts.force
    present = {nid for nid in nodes if g.rendered[nid].tag in tags}
    to_build = [nid for nid in nodes if force or nid not in present]
    preflight_pins(config, lock, sorted({g.dag.nodes[nid].base.key for nid in to_build}))

    # Bases: only those under a system node that will be built.
    base_missing: dict[str, str] = {}
    wanted_bases = sorted({g.dag.nodes[nid].base.key for nid in to_build if g.dag.nodes[nid].stage == "system"})
    missing = [config.bases[k] for k in wanted_bases if config.bases[k].local_ref not in tags]
    if (to_build or missing) and client is None:
        client = engine.docker_client()
    if missing:
        from .bases import run_bases

        print(f"bases missing: {', '.join(b.key for b in missing)}; making them (buildtool bases)", file=out_stream, flush=True)
        with contextlib.redirect_stdout(out_stream):
            run_bases(config, missing, force=False, output_format="table")
        tags = engine.local_tags(client)
        for b in missing:
            if b.local_ref not in tags:
                base_missing[b.key] = f"base {b.key} ({b.local_ref}) is not available; see `buildtool bases`"

    run_id, run_dir = new_run_folder(opts.logs)

    ca_bundle = resolve_ca_bundle(opts.ca_bundle, config.site.ca_bundle)
    secrets: dict[str, Path] = {}
    if ca_bundle is not None:
        secrets["ca-bundle"] = ca_bundle
    with tempfile.TemporaryDirectory(prefix="buildtool-secrets-") as secret_dir:
        pip_conf = pip_conf_text(config.site.pypi_index)
        if pip_conf:
            p = Path(secret_dir) / "pip.conf"
            p.write_text(pip_conf, encoding="utf-8")
            p.chmod(0o600)
            secrets["pip-conf"] = p

        apt_args = apt_build_args(config, lock)
        jobs_by_node = {
            nid: NodeJob(nid, g.rendered[nid].tag, g.rendered[nid].hash, (out / "nodes" / nid).resolve(), run_dir / f"{nid}.log",
                         base_missing.get(g.dag.nodes[nid].base.key) if g.dag.nodes[nid].stage == "system" else None,
                         apt_args.get(g.dag.nodes[nid].base.key, ()), "" if platform == DEFAULT_PLATFORM else platform)
            for nid in nodes
        }
        console = Console(out_stream, total=len(nodes))
        runner = Runner(client=client, cli=engine.buildkit_cli() if to_build else "docker", jobs=jobs_by_node, secrets=secrets,
                        revision=git_revision(Path(config.path).resolve().parent) if to_build else None,
                        retries=retries_from_env(), say=console.line)
        parents = {nid: g.dag.nodes[nid].parent for nid in nodes}
        schedule = Schedule(nodes, parents, present=present, force=force)
        n_jobs = max(1, opts.jobs)
        if to_build:
            console.line(f"build {run_id}: {len(nodes)} nodes ({len(to_build)} to build, {len(nodes) - len(to_build)} cached), "
                         f"{n_jobs} at once; logs in {_display(run_dir)}"
                         + (f"; CA bundle secret: {ca_bundle}" if ca_bundle else ""))

        def on_event(e: Event) -> None:
            console.event(e, _display(jobs_by_node[e.node].log) if e.kind == FAILED and not jobs_by_node[e.node].base_missing else None)

        console.start()
        try:
            outcomes, interrupted = execute(schedule, runner, jobs=n_jobs, on_event=on_event, on_interrupt=runner.kill_all)
        finally:
            console.stop()

    tags = engine.local_tags(client) if runner.builds else tags
    rows = []
    for nid in nodes:
        o = outcomes[nid]
        job = jobs_by_node[nid]
        logged = job.log.exists()
        rows.append({
            "node": nid,
            "status": o.status,
            "seconds": round(o.seconds, 1),
            "size": tags.get(job.tag) if o.status in OK else None,
            "tag": job.tag,
            "log": _display(job.log) if logged else None,
            "attempts": runner.attempts.get(nid, 0),
            "detail": o.detail,
        })
    code = 130 if interrupted else (0 if all(r["status"] in OK for r in rows) else 1)
    summary = {
        "run_id": run_id,
        "exit_code": code,
        "interrupted": interrupted,
        "seconds": round(time.monotonic() - t0, 2),
        "jobs": n_jobs,
        "force": force,
        "docker_builds": runner.builds,
        "ca_bundle": str(ca_bundle) if ca_bundle else None,
        "revision": runner.revision,
        "apt_refreshed": {k: list(b.refreshed) for k, b in sorted(lock.bases.items()) if b.refreshed},
        "apt_source": "snapshot" if config.site.apt_snapshot else ("mirror" if config.site.apt_mirror else "archive"),
        "counts": {s: sum(1 for r in rows if r["status"] == s) for s in (BUILT, CACHED, FAILED, "skipped", INTERRUPTED, "pending")},
        "nodes": rows,
    }
    summary_path = run_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    if fmt == "json":
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print(summary_table(rows))
        c = summary["counts"]
        print(f"{c[BUILT]} built, {c[CACHED]} cached, {c[FAILED]} failed, {c['skipped']} skipped"
              + (f", {c[INTERRUPTED]} interrupted, {c['pending']} not started" if interrupted else "")
              + f" in {summary['seconds']:.1f} s; summary: {_display(summary_path)}")
        for r in rows:
            if r["status"] == FAILED and r["log"]:
                print(f"\n--- {r['node']} failed ({r['detail']}); last lines of {r['log']}:")
                for line in tail_lines(jobs_by_node[r["node"]].log):
                    print(f"    {line}")
            elif r["status"] == FAILED:
                print(f"\n--- {r['node']} failed: {r['detail']}")
        if interrupted:
            print("interrupted: nothing half-built was tagged; run the same command again to resume", file=sys.stderr)
    return code


