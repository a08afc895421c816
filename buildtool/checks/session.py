"""One long-lived container per image, and the batched probes that every check of the image reads.

`ImageSession.start()` runs `docker run -d --rm --entrypoint sleep <tag> infinity` as the
image's default user (with the `docker run` flags of each device kind its checks need and the
host has, from buildtool/components/devices.py: `--gpus all` for nvidia); `gather()` collects the probes of
all the image's checks plus the session-wide batch queries (one `dpkg-query -W`, one
`pip list --format json`), copies the files they need (`docker cp`) and runs them through
pytest-testinfra's docker:// backend: one `docker exec` per user (`docker://root@id` for
the root probes), the probes in parallel inside the container. `evaluate()` is then pure.
`stop()` removes the container; `buildtool verify` also removes any container labelled
with its run id, in case a pytest process was killed.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..components.devices import DEFAULT_GPU, check_device, device_kind, run_args
from . import lookup
from .base import DEFAULT_USER, SESSION_PROBES, CheckFailed, Image, NotRun, Probe, Result
from .batch import dedupe, parse_output, runner_script

RUN_LABEL = "io.buildtool.verify.run"
HOSTNAME = "buildtool-verify"


class SessionError(RuntimeError):
    pass


def docker_cli() -> str:
    found = shutil.which("docker")
    if found:
        return found
    from ..engine.client import docker_cli as engine_cli

    return engine_cli()


def _docker(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([docker_cli(), *args], capture_output=True, text=True, timeout=timeout)


@dataclass
class Outcome:
    status: str  # passed | failed | not-run
    message: str = ""


@dataclass
class ImageSession:
    entry: dict[str, Any]
    assets: Path | None = None
    gpu: bool = False  # the plan's GPU tier is on (a plan without `devices`: the default GPU kind)
    run_id: str = ""
    devices: dict[str, Any] | None = None  # the plan's `devices`: kind -> {"on": bool, "reason": str}
    container: str = ""
    started_at: float = 0.0  # monotonic, when the container answered
    start_seconds: float = 0.0  # how long `docker run -d` took
    gather_seconds: float = 0.0
    probe_seconds: dict[str, float] = field(default_factory=dict)
    probe_errors: dict[str, str] = field(default_factory=dict)  # check id -> why its probes could not be made
    image: Image | None = None
    error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # Devices ----------------------------------------------------------------------

    def available(self) -> frozenset[str]:
        """The device kinds the host hands to containers (as `buildtool verify` found them)."""
        if self.devices is None:
            return frozenset({DEFAULT_GPU}) if self.gpu else frozenset()
        return frozenset(k for k, d in self.devices.items() if d.get("on"))

    def wanted(self) -> frozenset[str]:
        """The device kinds this image's checks need that the host has: the container gets exactly these."""
        have = self.available()
        return frozenset(k for c in self.entry["checks"] if (k := check_device(c)) and k in have)

    def device_off(self, check: dict[str, Any]) -> str | None:
        """Why a check cannot run here (its device kind is off), else None."""
        kind = check_device(check)
        if kind is None or kind in self.available():
            return None
        found = (self.devices or {}).get(kind) or {}
        try:
            fallback = device_kind(kind).no_device
        except KeyError as exc:
            fallback = str(exc)
        return str(found.get("reason") or fallback)

    # Lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        tag = self.entry["tag"]
        found = _docker("image", "inspect", tag)
        if found.returncode != 0:
            raise SessionError(f"image {tag} is not on the engine: build it first (`buildtool build`)")
        inspect = json.loads(found.stdout)[0]
        # No network (checks need none, and no bridge to depend on), but a hostname that resolves,
        # as on a bridge network: MPICH's TCP channel looks up its own hostname even on one node.
        args = ["run", "-d", "--rm", "--network", "none", "--hostname", HOSTNAME, "--add-host", f"{HOSTNAME}:127.0.0.1", "--entrypoint", "sleep"]
        if self.run_id:
            args += ["--label", f"{RUN_LABEL}={self.run_id}"]
        kinds = self.wanted()
        args += list(run_args(kinds))
        t0 = time.monotonic()
        started = _docker(*args, tag, "infinity")
        if started.returncode != 0:
            raise SessionError(f"cannot start a container of {tag}: {started.stderr.strip()[-400:]}")
        self.container = started.stdout.strip()
        self.started_at = time.monotonic()
        self.start_seconds = self.started_at - t0
        self.image = Image(entry=self.entry, inspect=inspect, assets=self.assets, gpu=bool(kinds), devices=kinds)

    def stop(self) -> None:
        if self.container:
            _docker("rm", "-f", self.container, timeout=60)
            self.container = ""

    # Probes -----------------------------------------------------------------------

    def planned_probes(self) -> list[Probe]:
        assert self.image is not None
        probes: list[Probe] = list(SESSION_PROBES)
        for check in self.entry["checks"]:
            if self.device_off(check) is not None:
                continue
            try:
                probes += lookup(check["family"], check["name"]).probes(self.image, check["params"])
            except Exception as exc:  # a broken plan entry fails its own check, not the session
                self.probe_errors[check["id"]] = f"{type(exc).__name__}: {exc}"
        return dedupe(probes)

    def gather(self) -> None:
        """Run every probe once (idempotent, thread-safe)."""
        with self._lock:
            if self.error:
                raise SessionError(self.error)
            try:
                if self.image is None:
                    self.start()
                assert self.image is not None
                if self.image.results:
                    return
                self._gather()
            except (SessionError, subprocess.SubprocessError, OSError) as exc:
                self.error = str(exc)
                raise SessionError(self.error) from exc

    def _gather(self) -> None:
        assert self.image is not None
        t0 = time.monotonic()
        probes = self.planned_probes()
        self._copy_files(probes)
        by_user: dict[str, list[Probe]] = {}
        for p in probes:
            by_user.setdefault(p.user, []).append(p)
        with ThreadPoolExecutor(max_workers=max(1, len(by_user))) as pool:
            answers = list(pool.map(lambda item: self._run_batch(*item), by_user.items()))
        for part in answers:
            self.image.results.update(part)
        self.gather_seconds = time.monotonic() - t0
        self.probe_seconds = {k: r.seconds for k, r in self.image.results.items()}

    def _copy_files(self, probes: list[Probe]) -> None:
        copies = {dest: src for p in probes for src, dest in p.files}
        for dest, src in sorted(copies.items()):
            if self.assets is None:
                raise SessionError(f"no assets folder for {src}")
            done = _docker("cp", str(self.assets / src), f"{self.container}:{dest}")
            if done.returncode != 0:
                raise SessionError(f"docker cp {src} -> {dest} failed: {done.stderr.strip()[-300:]}")

    def _run_batch(self, user: str, probes: list[Probe]) -> dict[str, Result]:
        import testinfra

        host = testinfra.get_host(f"docker://{user + '@' if user != DEFAULT_USER else ''}{self.container}")
        out = host.run("bash -c " + shlex.quote(runner_script(probes)))
        results = parse_output(probes, out.stdout)
        if len(results) != len(probes):
            lost = [p.key for p in probes if p.key not in results]
            why = (out.stderr or out.stdout).strip()[-300:]
            for key in lost:
                results[key] = Result(125, "", f"the probe runner (as {user or 'the default user'}) gave no answer (exit {out.rc}): {why}")
        return results

    # Evaluation -------------------------------------------------------------------

    def evaluate(self, check: dict[str, Any], gpu_reason: str = "") -> Outcome:
        off = self.device_off(check)
        if off is not None:
            return Outcome("not-run", (gpu_reason if self.devices is None else "") or off)
        try:
            self.gather()
        except SessionError as exc:
            return Outcome("failed", str(exc))
        if check["id"] in self.probe_errors:
            return Outcome("failed", f"cannot prepare the check: {self.probe_errors[check['id']]}")
        assert self.image is not None
        try:
            note = lookup(check["family"], check["name"]).evaluate(self.image, check["params"])
        except NotRun as exc:
            return Outcome("not-run", str(exc))
        except CheckFailed as exc:
            return Outcome("failed", str(exc))
        except Exception as exc:  # a check that crashes is a failed check, with the reason
            return Outcome("failed", f"check crashed: {type(exc).__name__}: {exc}")
        return Outcome("passed", note or "")

    def checking_seconds(self) -> float:
        return time.monotonic() - self.started_at if self.started_at else 0.0
