"""Building one node: the `docker build` command line, the retry on transient download errors, tagging after success.

A build writes no tag itself (`--iidfile`, no `-t`): the content-hash tag is set only after it succeeded,
so a failed, killed or interrupted build leaves nothing tagged and the next run resumes. BuildKit secrets
(CA bundle, pip.conf) go in as `--secret`, never as build args.
Env: BUILDTOOL_BUILD_RETRIES (extra attempts after a transient download error, default 2).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import client as engine
from .scheduler import RunResult

DEFAULT_RETRIES = 2
KILL_GRACE_S = 3  # the CLI alone takes ~10 s after SIGTERM; SIGKILL of the client cancels the build server-side at once

# A failed step whose log shows one of these is worth another try (the cause is printed).
TRANSIENT = re.compile(
    r"connection reset|connection aborted|remotedisconnected|read timed out|timed out|timeout was reached"
    r"|temporary failure in name resolution|temporary failure resolving|could not resolve host|name or service not known"
    r"|incompleteread|connection broken"
    r"|\b5\d\d\s+(internal server error|bad gateway|service unavailable|gateway time-?out)"
    r"|(http error|status code|error|response code)[: ]+5\d\d\b",
    re.IGNORECASE,
)



def build_command(cli: str, context: Path, iidfile: Path, labels: dict[str, str], secrets: dict[str, Path],
                  build_args: tuple[tuple[str, str], ...] = (), platform: str = "") -> list[str]:
    """The `docker build` argv for one node: no tag (set after success), host network, secrets by file;
    `platform` (another than linux/amd64): built for it, under emulation where the host is another architecture."""
    argv = [cli, "build", "--progress=plain", "--network", "host", "--iidfile", str(iidfile)]
    if platform:
        argv += ["--platform", platform]
    for key, value in build_args:
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    for sid, src in sorted(secrets.items()):
        argv += ["--secret", f"id={sid},src={src}"]
    argv.append(str(context))
    return argv


def transient_cause(text: str) -> str | None:
    """The first log line that looks like a transient download failure, or None."""
    lines = text.splitlines()
    for line in lines:
        if TRANSIENT.search(line) and not line.lstrip().startswith("#0 building with"):
            return _clean_line(line)
    return None


def _clean_line(line: str, limit: int = 200) -> str:
    line = re.sub(r"^#\d+\s+[\d.]+\s+", "", line.strip())  # BuildKit's "#12 3.456 " prefix
    return line if len(line) <= limit else line[: limit - 3] + "..."




@dataclass
class NodeJob:
    node: str
    tag: str
    hash: str
    context: Path
    log: Path
    base_missing: str | None = None  # a system node whose base could not be made
    build_args: tuple[tuple[str, str], ...] = ()  # e.g. the site's apt mirror or snapshot (BUILDTOOL_APT_ROOTS)
    platform: str = ""  # --platform of the build ("" = the engine's default, linux/amd64)


@dataclass
class Runner:
    """Runs one node's `docker build` (with retries) and tags the result. Thread-safe; kill_all() for Ctrl-C."""

    client: Any
    cli: str
    jobs: dict[str, NodeJob]
    secrets: dict[str, Path]
    revision: str | None
    retries: int
    say: Any  # callable(str)
    builds: int = 0  # docker build invocations
    attempts: dict[str, int] = field(default_factory=dict)
    _procs: set[subprocess.Popen] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: bool = False

    def __call__(self, node: str) -> RunResult:
        job = self.jobs[node]
        if job.base_missing:
            return RunResult(False, job.base_missing, attempts=0)
        job.log.parent.mkdir(parents=True, exist_ok=True)
        attempt = 0
        while True:
            attempt += 1
            self.attempts[node] = attempt
            ok, text, rc = self._attempt(job, attempt)
            if ok is None:
                return RunResult(False, "interrupted", attempts=attempt, interrupted=True)
            if ok:
                return RunResult(True, "", attempts=attempt)
            cause = transient_cause(text)
            if cause is None or attempt > self.retries or self._stopping:
                return RunResult(False, f"docker build exit {rc}" + (f"; last transient cause: {cause}" if cause else ""), attempts=attempt)
            self.say(f"      {node}: transient download error, retry {attempt}/{self.retries}: {cause}")

    def _attempt(self, job: NodeJob, attempt: int) -> tuple[bool | None, str, int]:
        """(True|False|None for interrupted, this attempt's log text, exit code)."""
        with tempfile.TemporaryDirectory(prefix="buildtool-iid-") as tmp:
            iidfile = Path(tmp) / "iid"
            labels = {"io.buildtool.hash": job.hash}
            if self.revision:
                labels["org.opencontainers.image.revision"] = self.revision
            argv = build_command(self.cli, job.context, iidfile, labels, self.secrets, job.build_args, job.platform)
            env = dict(os.environ, DOCKER_BUILDKIT="1")
            with open(job.log, "a", encoding="utf-8") as log:
                start = log.tell()
                log.write(f"=== {job.node} attempt {attempt} at {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}; tag after success: {job.tag}\n")
                log.write("$ DOCKER_BUILDKIT=1 " + " ".join(argv) + "\n")
                log.flush()
                with self._lock:
                    if self._stopping:
                        log.write("=== not started: interrupted\n")
                        return None, "", -1
                    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
                    self._procs.add(proc)
                    self.builds += 1
                try:
                    rc = proc.wait()
                finally:
                    with self._lock:
                        self._procs.discard(proc)
                image = iidfile.read_text().strip() if rc == 0 and iidfile.exists() else ""
                if image:  # a complete build (even one that ended as Ctrl-C came): tag it now, never before
                    engine.tag(self.client, image, job.tag)
                    log.write(f"=== built {image}; tagged {job.tag}\n")
                else:
                    log.write(f"=== docker build exit {rc}" + (" (interrupted)" if self._stopping else "")
                              + (" but wrote no image id" if rc == 0 else "") + "\n")
            with open(job.log, encoding="utf-8", errors="replace") as fh:
                fh.seek(start)
                text = fh.read()
        if image:
            return True, text, rc
        if self._stopping:
            return None, text, rc
        return False, text, rc

    def kill_all(self) -> None:
        """Stop launching; SIGTERM every running build's process group, SIGKILL after a grace period."""
        with self._lock:
            self._stopping = True
            procs = list(self._procs)
        for p in procs:
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_S
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, sig)


def retries_from_env() -> int:
    try:
        return max(0, int(os.environ.get("BUILDTOOL_BUILD_RETRIES", DEFAULT_RETRIES)))
    except ValueError:
        return DEFAULT_RETRIES
