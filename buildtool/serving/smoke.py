"""Model-serving smoke: prove a CPU leaf serves a model the way AzureML uses a custom base image.

For each CPU leaf (an accelerator flavor that needs no device: `Flavor.needs_device`) a small serving image is built FROM the leaf's
image: templates/serving/score.py (AzureML's `init()` / `run(raw_data)` contract) behind
templates/serving/serve.py (standard-library `http.server`: `GET /` health, `POST /score`,
port 5001), running as the image's non-root user. The model is tiny_linear (y = x @ W + b,
tests/images/models/): where the image has ONNX Runtime, tiny_linear.onnx runs in an
InferenceSession on the image's execution provider; elsewhere a pure-Python linear model reads
the same W and b from linear.json, which is extracted here from the .onnx file itself. Every
leaf must answer the two rows of tiny_linear.json with its expected outputs (within 1e-4).

Pure parts live beside this module and are unit-tested without an engine: image.py (the targets, Dockerfile text, context),
model.py (the ONNX reader, expected outputs), replies.py (request/response handling, the comparator), report.py (the table).
This module is the engine edge, `smoke_one()` /
`serving_smoke()`: build offline (`DOCKER_BUILDKIT=1` Debian CLI, COPY only), `docker run`,
wait for health (bounded), POST, compare, and always remove the container and the image.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import OperationError
from .image import PORT, Target, serving_targets, write_context
from .model import MODELS, ModelCase, load_model_case
from .replies import ServingError, compare_outputs, parse_response, request_body
from .report import Result, render_table

HEALTH_TIMEOUT = 30.0
IMAGE_REPO = "buildtool-serving"
LABEL = "io.buildtool.serving"
NETWORKS = ("auto", "bridge", "host")
# `docker run` errors that mean the default bridge is unusable (e.g. docker0 gone after a second engine started).
_BRIDGE_BROKEN = re.compile(r"docker0|bridge|iptables|network|port is already allocated|userland-proxy|veth", re.IGNORECASE)


# The engine edge -------------------------------------------------------------------------------------


def _safe(name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.") or "image"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Docker:
    """Runs docker commands: `cli` for run/inspect/rm, a BuildKit-capable CLI (engine.buildkit_cli()) for builds."""

    def __init__(self, cli: str, build_cli: str | None = None) -> None:
        self.cli, self.build_cli = cli, build_cli

    def __call__(self, *args: str, timeout: float = 120, build: bool = False) -> subprocess.CompletedProcess:
        if build and self.build_cli is None:
            from ..engine.client import buildkit_cli

            self.build_cli = buildkit_cli()
        cmd = [self.build_cli if build else self.cli, *args]
        env = {**os.environ, "DOCKER_BUILDKIT": "1"} if build else None
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(cmd, 124, "", f"docker {args[0]} timed out after {timeout:.0f}s")
        except OSError as exc:
            return subprocess.CompletedProcess(cmd, 127, "", str(exc))


def _last_line(done: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (done.stderr or done.stdout or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit {done.returncode}"


def _http(method: str, url: str, body: bytes | None = None, timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class _Network:
    """Which network mode the run uses: auto tries the default bridge and, once it fails, uses the host's."""

    def __init__(self, mode: str) -> None:
        if mode not in NETWORKS:
            raise OperationError(f"network must be one of {', '.join(NETWORKS)}, not {mode!r}")
        self.mode = mode
        self.bridge_broken = ""


def _start(docker: _Docker, serving_tag: str, name: str, run_label: str, network: _Network) -> tuple[str, str, int]:
    """docker run -d; (container id, network used, host port on 127.0.0.1)."""
    common = ["run", "-d", "--name", name, "--label", f"{LABEL}={run_label}"]
    tried = []
    if network.mode == "bridge" or (network.mode == "auto" and not network.bridge_broken):
        done = docker(*common, "-p", f"127.0.0.1::{PORT}", serving_tag, timeout=120)
        if done.returncode == 0:
            cid = done.stdout.strip()
            mapped = docker("port", cid, f"{PORT}/tcp")
            match = re.search(r"127\.0\.0\.1:(\d+)", mapped.stdout)
            if match:
                return cid, "bridge", int(match.group(1))
            why = f"no published port ({_last_line(mapped)})"
        else:
            why = _last_line(done)
        tried.append(f"bridge: {why}")
        docker("rm", "-f", name)
        if network.mode == "bridge" or not _BRIDGE_BROKEN.search(why):
            raise ServingError("docker run failed: " + "; ".join(tried))
        network.bridge_broken = why
    port = free_port()
    done = docker(*common, "--network", "host", "-e", f"PORT={port}", "-e", "HOST=127.0.0.1", serving_tag, timeout=120)
    if done.returncode != 0:
        docker("rm", "-f", name)
        raise ServingError("docker run failed: " + "; ".join([*tried, f"host: {_last_line(done)}"]))
    return done.stdout.strip(), "host", port


def _logs(docker: _Docker, cid: str, lines: int = 15) -> str:
    done = docker("logs", "--tail", str(lines), cid, timeout=30)
    return "\n".join(x for x in (done.stdout + done.stderr).strip().splitlines() if x.strip())


def _wait_healthy(docker: _Docker, cid: str, port: int, started: float, timeout: float) -> float:
    """Seconds from `docker run` to GET / answering 200; ServingError at the deadline or when the container exits."""
    deadline = started + timeout
    last_state = 0.0
    why = "no answer"
    while True:
        try:
            status, _ = _http("GET", f"http://127.0.0.1:{port}/", timeout=2)
            if status == 200:
                return time.monotonic() - started
            why = f"HTTP {status}"
        except (OSError, urllib.error.URLError) as exc:
            why = str(getattr(exc, "reason", exc))
        now = time.monotonic()
        if now - last_state >= 1.0:
            last_state = now
            state = docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", cid, timeout=30).stdout.split()
            if state and state[0] == "false":
                raise ServingError(f"the container exited (code {state[1] if len(state) > 1 else '?'}) before it was healthy:\n"
                                   f"{_logs(docker, cid)}")
        if now >= deadline:
            raise ServingError(f"not healthy within {timeout:.0f}s ({why}):\n{_logs(docker, cid)}")
        time.sleep(0.2)


def _served_uid(log: str) -> int | None:
    match = re.search(r"ready on \S+ \(uid (\d+)\)", log)
    return int(match.group(1)) if match else None


def smoke_one(target: Target, *, docker_cli: str, build_cli: str | None = None, case: ModelCase | None = None, keep: bool = False,
              network: str | _Network = "auto", health_timeout: float = HEALTH_TIMEOUT, linear: dict[str, Any] | None = None,
              workdir: Path | None = None, run_label: str | None = None) -> Result:
    """Build the serving image FROM target.tag, run it, POST the two rows, compare; clean up unless keep."""
    t0 = time.monotonic()
    case = case or load_model_case()
    net = network if isinstance(network, _Network) else _Network(network)
    docker = _Docker(docker_cli, build_cli)
    run_label = run_label or secrets.token_hex(4)
    suffix = secrets.token_hex(3)
    serving_tag = f"{IMAGE_REPO}/{_safe(target.image)}:smoke-{suffix}"
    name = f"buildtool-serving-{_safe(target.image)}-{suffix}"
    result = Result(target.image, False, tag=target.tag, backend=target.backend, provider=target.provider, serving_tag=serving_tag)
    built = False
    cid = ""
    with tempfile.TemporaryDirectory(prefix="buildtool-serving-", dir=workdir) as tmp:
        try:
            if docker("image", "inspect", "--format", "{{.Id}}", target.tag, timeout=60).returncode != 0:
                raise ServingError(f"the image {target.tag} is not on the engine (run `buildtool build`)")
            context = write_context(target, Path(tmp) / "context", case, linear)
            done = docker("build", "-q", "-t", serving_tag, "--label", f"{LABEL}={run_label}", str(context), timeout=600, build=True)
            if done.returncode != 0:
                raise ServingError(f"docker build of the serving image failed:\n{(done.stderr or done.stdout)[-2000:]}")
            built = True
            started = time.monotonic()
            cid, result.network, port = _start(docker, serving_tag, name, run_label, net)
            result.seconds_to_healthy = round(_wait_healthy(docker, cid, port, started, health_timeout), 2)
            result.uid = _served_uid(_logs(docker, cid, 50))
            status, body = _http("POST", f"http://127.0.0.1:{port}/score", request_body(case.rows), timeout=30)
            try:
                result.response = parse_response(status, body)
            except ServingError:
                result.response = body.decode("utf-8", "replace")[:500]
                raise
            problems = compare_outputs(result.response["predictions"], case.expected)
            if problems:
                raise ServingError("wrong outputs: " + "; ".join(problems))
            if result.response.get("backend") not in (None, target.backend) or result.response.get("provider") not in (None, target.provider):
                raise ServingError(f"served by {result.response.get('backend')}/{result.response.get('provider')}, "
                                   f"expected {target.backend}/{target.provider}")
            if result.uid != target.uid:
                raise ServingError(f"the server runs as uid {result.uid}, expected {target.uid}")
            result.passed = True
        except ServingError as exc:
            result.error = str(exc)
        finally:
            if cid or built:
                docker("rm", "-f", name, timeout=60)
            if built and not keep:
                docker("rmi", "-f", serving_tag, timeout=120)
    result.seconds = round(time.monotonic() - t0, 2)
    return result


def serving_smoke(config: Any, g: Any, variants: Iterable[Any], *, docker_cli: str, keep: bool = False, build_cli: str | None = None,
                  network: str = "auto", health_timeout: float = HEALTH_TIMEOUT, models: Path = MODELS, out: Any = None,
                  run_label: str | None = None) -> list[Result]:
    """Serve tiny_linear from every CPU leaf among `variants`; a Result per image, and a table printed to `out`.

    `config` is the loaded images.yaml (kept for the call shape of the other stages); the
    leaves' facts and tags come from `g` (buildtool.render.generate.generate) and `variants`.
    `network`: auto (the default bridge with a published 127.0.0.1 port; the host network with a
    free port once the bridge fails), bridge or host. Containers and images carry the label
    io.buildtool.serving=<run_label>; both are removed after each image (the image kept with keep=True)."""
    del config
    out = out or sys.stdout
    case = load_model_case(models)
    answer = _Docker(docker_cli)("version", "--format", "{{.Server.Version}}", timeout=30)
    if answer.returncode != 0:
        raise OperationError(f"no Docker Engine answers ({_last_line(answer)}); run `make engine`")
    net = _Network(network)
    run_label = run_label or secrets.token_hex(4)
    results = []
    targets = serving_targets(g, variants)
    if not targets:
        print("no CPU leaf (accelerator cpu) in the selection: nothing to serve", file=out)
        return []
    for target in targets:
        result = smoke_one(target, docker_cli=docker_cli, build_cli=build_cli, case=case, keep=keep, network=net,
                           health_timeout=health_timeout, run_label=run_label)
        results.append(result)
    if net.bridge_broken:
        print(f"note: the default bridge failed ({net.bridge_broken}); served on the host network", file=out)
    print(render_table(results), file=out, flush=True)
    return results
