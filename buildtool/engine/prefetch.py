"""Prefetch builds: a node's wheels fetched into its uv cache while its parents still build.

`render.prefetch` says which nodes qualify and renders the throwaway build; this module runs it
on the engine as soon as the node's python layer is available (present at the start, or built
during the run), beside the node builds and outside their --jobs slots: fetching is mostly network
and decompression, building mostly dpkg and layer export. At most `limit` run at once.

A prefetch is an optimisation only: its failure is reported with its log and the node's own build
fetches the wheels as before (and reports any real error). It writes no image and no tag: its one
output, a marker file, goes to a temporary folder (`--output type=local`). Logs:
`<run>/<node>.prefetch.log`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..render.prefetch import Prefetch
from .scheduler import BUILT, CACHED, Event


def prefetch_command(cli: str, context: Path, dest: Path, secrets: dict[str, Path], platform: str = "") -> list[str]:
    """The `docker build` argv of one prefetch: host network, secrets by file, output to a local folder."""
    argv = [cli, "build", "--progress=plain", "--network", "host", "--output", f"type=local,dest={dest}"]
    if platform:
        argv += ["--platform", platform]
    for sid, src in sorted(secrets.items()):
        argv += ["--secret", f"id={sid},src={src}"]
    argv.append(str(context))
    return argv


@dataclass(frozen=True)
class PrefetchResult:
    node: str
    ok: bool
    seconds: float
    log: Path
    detail: str = ""


@dataclass
class Prefetcher:
    """Starts each plan's build once its `after` node is available; thread-safe; kill_all() for Ctrl-C."""

    cli: str
    plans: dict[str, Prefetch]  # node -> plan, only nodes this run builds
    secrets: dict[str, Path]
    run_dir: Path
    say: Callable[[str], None]
    limit: int = 2
    platform: str = ""
    results: dict[str, PrefetchResult] = field(default_factory=dict)
    _started: set[str] = field(default_factory=set)
    _threads: list[threading.Thread] = field(default_factory=list)
    _procs: set[subprocess.Popen] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: bool = False

    def __post_init__(self) -> None:
        self._slots = threading.Semaphore(max(1, self.limit))

    def available(self, nodes: set[str] | frozenset[str]) -> None:
        """Nodes whose image exists now: start every plan waiting for one of them."""
        for plan in (self.plans[n] for n in sorted(self.plans)):
            if plan.after in nodes:
                self._launch(plan)

    def on_event(self, e: Event) -> None:
        if e.kind in (BUILT, CACHED):
            self.available({e.node})

    def _launch(self, plan: Prefetch) -> None:
        with self._lock:
            if self._stopping or plan.node in self._started:
                return
            self._started.add(plan.node)
        t = threading.Thread(target=self._run, args=(plan,), name=f"prefetch-{plan.node}", daemon=True)
        self._threads.append(t)
        t.start()

    def _run(self, plan: Prefetch) -> None:
        log = self.run_dir / f"{plan.node}.prefetch.log"
        with self._slots:
            t0 = time.monotonic()
            ok, detail = self._build(plan, log)
            result = PrefetchResult(plan.node, ok, time.monotonic() - t0, log, detail)
        with self._lock:
            self.results[plan.node] = result
            stopping = self._stopping
        if stopping:
            return
        if ok:
            self.say(f"      prefetched the wheels of {plan.node} in {result.seconds:.1f} s")
        else:
            self.say(f"      prefetch of {plan.node} failed ({detail}); its build fetches the wheels itself; see {log}")

    def _build(self, plan: Prefetch, log: Path) -> tuple[bool, str]:
        with tempfile.TemporaryDirectory(prefix="buildtool-prefetch-") as tmp:
            context, dest = Path(tmp) / "context", Path(tmp) / "out"
            context.mkdir()
            (context / "Dockerfile").write_text(plan.dockerfile, encoding="utf-8")
            (context / "requirements.txt").write_text(plan.requirements, encoding="utf-8")
            argv = prefetch_command(self.cli, context, dest, self.secrets, self.platform)
            with open(log, "a", encoding="utf-8") as out:
                out.write(f"=== prefetch of {plan.node} on {plan.after_tag}\n$ DOCKER_BUILDKIT=1 {' '.join(argv)}\n")
                out.write(plan.dockerfile)
                out.flush()
                with self._lock:
                    if self._stopping:
                        return False, "interrupted"
                    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=dict(os.environ, DOCKER_BUILDKIT="1"), start_new_session=True)
                    self._procs.add(proc)
                try:
                    rc = proc.wait()
                finally:
                    with self._lock:
                        self._procs.discard(proc)
                ok = rc == 0 and (dest / "buildtool-prefetched").is_file()
                out.write(f"=== prefetch {'done' if ok else f'failed: docker build exit {rc}'}\n")
        return ok, "" if ok else f"docker build exit {rc}"

    def kill_all(self) -> None:
        """Start nothing more; stop the running prefetch builds (their process groups)."""
        with self._lock:
            self._stopping = True
            procs = list(self._procs)
        for p in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)

    def finish(self, timeout: float = 10.0) -> dict[str, PrefetchResult]:
        """After the builds: stop what still runs (no node needs it any more) and return the results."""
        self.kill_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        with self._lock:
            return dict(self.results)
