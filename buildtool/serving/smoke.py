"""Model-serving smoke: prove a CPU leaf serves a model the way AzureML uses a custom base image.

For each CPU leaf (an accelerator flavor that needs no device: `Flavor.needs_device`) a small serving image is built FROM the leaf's
image: templates/serving/score.py (AzureML's `init()` / `run(raw_data)` contract) behind
templates/serving/serve.py (standard-library `http.server`: `GET /` health, `POST /score`,
port 5001), running as the image's non-root user. The model is tiny_linear (y = x @ W + b,
tests/images/models/): where the image has ONNX Runtime, tiny_linear.onnx runs in an
InferenceSession on the image's execution provider; elsewhere a pure-Python linear model reads
the same W and b from linear.json, which is extracted here from the .onnx file itself. Every
leaf must answer the two rows of tiny_linear.json with its expected outputs (within 1e-4).

Pure parts (Dockerfile text, the ONNX reader, expected outputs, request/response handling, the
comparator, the table) are unit-tested without an engine; the engine edge is `smoke_one()` /
`serving_smoke()`: build offline (`DOCKER_BUILDKIT=1` Debian CLI, COPY only), `docker run`,
wait for health (bounded), POST, compare, and always remove the container and the image.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from ..components import flavor
from ..components.support_files import TEMPLATES_DIR
from ..errors import OperationError

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "images" / "models"
SERVING_TEMPLATES = TEMPLATES_DIR / "serving"
MODEL_NAME = "tiny_linear"
PORT = 5001
APP_ROOT = "/var/azureml-app"
MODEL_DIR = f"{APP_ROOT}/azureml-models/{MODEL_NAME}/1"  # AzureML's models/<name>/<version> layout
HEALTH_TIMEOUT = 30.0
ATOL = 1e-4
IMAGE_REPO = "buildtool-serving"
LABEL = "io.buildtool.serving"
NETWORKS = ("auto", "bridge", "host")
# `docker run` errors that mean the default bridge is unusable (e.g. docker0 gone after a second engine started).
_BRIDGE_BROKEN = re.compile(r"docker0|bridge|iptables|network|port is already allocated|userland-proxy|veth", re.IGNORECASE)


# What is served ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One CPU leaf to serve from: its image name and tag, and how its scoring script computes."""

    image: str
    tag: str
    backend: str  # onnxruntime | python
    provider: str  # the ORT execution provider, or "python"
    uid: int = 1000


def is_cpu_leaf(variant: Any) -> bool:
    """The variant's accelerator flavor needs no device (a variant without an accelerator fact is not a leaf of this matrix)."""
    name = variant.facts.get("accelerator.flavor")
    return name is not None and not flavor(str(name)).needs_device


def target_for(variant: Any, tag: str) -> Target:
    facts = variant.facts
    uid = int(facts.get("system.uid", 1000))
    if facts.get("onnxruntime.flavor", "none") != "none":
        return Target(variant.name, tag, "onnxruntime", str(facts.get("onnxruntime.provider") or "CPUExecutionProvider"), uid)
    return Target(variant.name, tag, "python", "python", uid)


def serving_targets(g: Any, variants: Iterable[Any]) -> list[Target]:
    """The CPU leaves among `variants` (a selection from buildtool.plan.expand.select), in order."""
    return [target_for(v, g.rendered[g.dag.variant_node[v.name]].tag) for v in variants if is_cpu_leaf(v)]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(SERVING_TEMPLATES)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False)


def render_dockerfile(target: Target) -> str:
    """The serving image's Dockerfile (no `# syntax=` line, bash pipefail SHELL, COPY only, ends as the uid)."""
    model_file = f"{MODEL_NAME}.onnx" if target.backend == "onnxruntime" else "linear.json"
    return _environment().get_template("Dockerfile.j2").render(
        image=target.image, base=target.tag, port=PORT, app_root=APP_ROOT, model_dir=MODEL_DIR, backend=target.backend,
        provider=target.provider, model_file=model_file, uid=target.uid)


# The model: tiny_linear.onnx read with the standard library ---------------------------------------------


@dataclass(frozen=True)
class LinearModel:
    w: list[list[float]]  # features x outputs
    b: list[float]
    input: str = "x"
    output: str = "y"

    def to_json(self) -> dict[str, Any]:
        return {"model": MODEL_NAME, "input": self.input, "output": self.output, "W": self.w, "b": self.b}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message; value is an int or bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated protobuf message")
        yield number, wire, value


def _tensor(buf: bytes) -> tuple[str, list[int], list[float]]:
    """A TensorProto of FLOATs: (name, dims, values). dims=1, data_type=2, float_data=4, name=8, raw_data=9."""
    name, dims, values, raw, dtype = "", [], [], None, None
    for number, wire, value in _fields(buf):
        if number == 1:
            if wire == 2:  # packed
                pos = 0
                while pos < len(value):
                    dim, pos = _varint(value, pos)
                    dims.append(dim)
            else:
                dims.append(value)
        elif number == 2:
            dtype = value
        elif number == 4:
            values.extend(struct.unpack(f"<{len(value) // 4}f", value))
        elif number == 8:
            name = value.decode("utf-8")
        elif number == 9:
            raw = value
    if dtype != 1:
        raise ValueError(f"initializer {name!r} is not FLOAT (data_type {dtype})")
    if raw is not None:
        values = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if math.prod(dims) != len(values):
        raise ValueError(f"initializer {name!r}: dims {dims} but {len(values)} values")
    return name, dims, values


def read_linear_onnx(data: bytes) -> LinearModel:
    """W and b of a MatMul(x, W) -> Add(., b) ONNX model (ModelProto.graph = 7; GraphProto: node = 1,
    initializer = 5, input = 11, output = 12; NodeProto: input = 1, output = 2, op_type = 4)."""
    graph = next((v for n, w, v in _fields(data) if n == 7 and w == 2), None)
    if graph is None:
        raise ValueError("no graph in the ONNX model")
    nodes, inits, inputs, outputs = [], {}, [], []
    for number, _, value in _fields(graph):
        if number == 1:
            node = {"input": [], "output": [], "op": ""}
            for n, _, v in _fields(value):
                if n in (1, 2):
                    node["input" if n == 1 else "output"].append(v.decode("utf-8"))
                elif n == 4:
                    node["op"] = v.decode("utf-8")
            nodes.append(node)
        elif number == 5:
            name, dims, values = _tensor(value)
            inits[name] = (dims, values)
        elif number in (11, 12):
            name = next((v.decode("utf-8") for n, _, v in _fields(value) if n == 1), "")
            (inputs if number == 11 else outputs).append(name)
    ops = [n["op"] for n in nodes]
    if ops != ["MatMul", "Add"]:
        raise ValueError(f"not a linear model: nodes {ops}, expected ['MatMul', 'Add']")
    matmul, add = nodes
    w_name = next((i for i in matmul["input"] if i in inits), None)
    b_name = next((i for i in add["input"] if i in inits), None)
    if w_name is None or b_name is None:
        raise ValueError("MatMul/Add do not take W and b from initializers")
    (wdims, wvals), (bdims, bvals) = inits[w_name], inits[b_name]
    if len(wdims) != 2 or bdims != [wdims[1]]:
        raise ValueError(f"W has dims {wdims} and b {bdims}: not (n, m) and (m,)")
    rows, cols = wdims
    w = [[float(wvals[r * cols + c]) for c in range(cols)] for r in range(rows)]
    real_inputs = [i for i in inputs if i not in inits]
    return LinearModel(w, [float(v) for v in bvals], real_inputs[0] if real_inputs else "x", outputs[0] if outputs else "y")


def linear_predict(model: LinearModel, rows: list[list[float]]) -> list[list[float]]:
    """y = x @ W + b in float64 (what the python backend serves; ORT computes it in float32)."""
    width = len(model.w)
    out = []
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row of {len(row)} numbers; the model takes {width}")
        out.append([math.fsum(row[i] * model.w[i][j] for i in range(width)) + model.b[j] for j in range(len(model.b))])
    return out


@dataclass(frozen=True)
class ModelCase:
    """The request rows and the outputs they must give (tests/images/models/tiny_linear.json)."""

    linear: LinearModel
    rows: list[list[float]]
    expected: list[list[float]]
    onnx: Path


def load_model_case(models: Path = MODELS) -> ModelCase:
    """tiny_linear.json's rows and outputs, and the model read from tiny_linear.onnx; they must agree."""
    onnx = models / f"{MODEL_NAME}.onnx"
    try:
        spec = json.loads((models / f"{MODEL_NAME}.json").read_text(encoding="utf-8"))
        linear = read_linear_onnx(onnx.read_bytes())
    except (OSError, ValueError) as exc:
        raise OperationError(f"cannot read the serving model from {models}: {exc}") from exc
    problems = compare_outputs(linear_predict(linear, spec["x"]), spec["y"], 1e-6)
    if problems:
        raise OperationError(f"{onnx.name} does not reproduce {MODEL_NAME}.json's outputs: {'; '.join(problems[:3])}")
    return ModelCase(linear, spec["x"], spec["y"], onnx)


# Request, response, comparison ---------------------------------------------------------------------


def request_body(rows: list[list[float]]) -> bytes:
    """AzureML's request shape: {"data": [[...], ...]}."""
    return json.dumps({"data": rows}, separators=(",", ":")).encode("utf-8")


class ServingError(Exception):
    """The server's reply is not a prediction (an HTTP error, not JSON, a wrong shape)."""


def parse_response(status: int, body: bytes | str) -> dict[str, Any]:
    """The reply of POST /score as {"predictions": [[float]], ...}; ServingError otherwise.

    Accepts run() returning {"predictions": ...} (score.py) or a bare list of rows."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        raise ServingError(f"HTTP {status}, not JSON: {text[:200]!r}") from None
    if status != 200:
        detail = data.get("error") if isinstance(data, dict) else data
        raise ServingError(f"HTTP {status}: {str(detail)[:300]}")
    if isinstance(data, list):
        data = {"predictions": data}
    preds = data.get("predictions") if isinstance(data, dict) else None
    ok = isinstance(preds, list) and all(isinstance(r, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)
                                         for r in preds)
    if not ok:
        raise ServingError(f"no list of number rows under 'predictions': {text[:200]!r}")
    return {**data, "predictions": [[float(v) for v in r] for r in preds]}


def compare_outputs(got: list[list[float]], want: list[list[float]], atol: float = ATOL) -> list[str]:
    """What differs between served and expected outputs (empty when every value is within atol)."""
    if len(got) != len(want):
        return [f"{len(got)} rows, expected {len(want)}"]
    problems = []
    for r, (grow, wrow) in enumerate(zip(got, want)):
        if len(grow) != len(wrow):
            problems.append(f"row {r} has {len(grow)} values, expected {len(wrow)}")
            continue
        for c, (g, w) in enumerate(zip(grow, wrow)):
            if not (math.isfinite(g) and abs(g - w) <= atol):
                problems.append(f"y[{r}][{c}] = {g!r}, expected {w!r} (|diff| > {atol})")
    return problems


def assert_outputs(got: list[list[float]], want: list[list[float]], atol: float = ATOL) -> None:
    """AssertionError naming every value off by more than atol."""
    problems = compare_outputs(got, want, atol)
    if problems:
        raise AssertionError("served outputs differ from the expected ones: " + "; ".join(problems))


# Results ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    image: str
    passed: bool
    seconds_to_healthy: float | None = None
    response: Any = None  # the parsed reply of POST /score (or its raw text when it did not parse)
    error: str | None = None
    tag: str = ""
    backend: str = ""
    provider: str = ""
    network: str = ""
    uid: int | None = None
    seconds: float = 0.0  # build + run + checks + cleanup
    serving_tag: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("image", "passed", "seconds_to_healthy", "response", "error", "tag", "backend", "provider",
                                              "network", "uid", "seconds", "serving_tag")}


def _fmt_reply(result: Result) -> str:
    if result.error:
        return result.error.splitlines()[0][:110]
    preds = (result.response or {}).get("predictions") if isinstance(result.response, dict) else None
    if not preds:
        return "-"
    return " | ".join(", ".join(f"{v:.4f}" for v in row) for row in preds)


def render_table(results: list[Result]) -> str:
    head = ["IMAGE", "MODEL ON", "NET", "HEALTHY", "RESULT", "REPLY (predictions) / ERROR"]
    rows = [[r.image, r.provider if r.backend == "onnxruntime" else "python (linear.json)", r.network or "-",
             "-" if r.seconds_to_healthy is None else f"{r.seconds_to_healthy:.1f} s", "pass" if r.passed else "FAIL", _fmt_reply(r)]
            for r in results]
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    passed = sum(r.passed for r in results)
    lines.append(f"{passed}/{len(results)} serving images answered POST /score with the expected outputs")
    return "\n".join(lines)


# The engine edge -------------------------------------------------------------------------------------


def write_context(target: Target, dest: Path, case: ModelCase, linear: dict[str, Any] | None = None) -> Path:
    """The build context: Dockerfile, score.py, serve.py and model/ (the .onnx, or linear.json).

    `linear` replaces linear.json's content (a deliberately broken model in the tests)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "Dockerfile").write_text(render_dockerfile(target), encoding="utf-8")
    for name in ("score.py", "serve.py"):
        shutil.copyfile(SERVING_TEMPLATES / name, dest / name)
    model = dest / "model"
    model.mkdir(exist_ok=True)
    if target.backend == "onnxruntime":
        shutil.copyfile(case.onnx, model / case.onnx.name)
    else:
        spec = linear if linear is not None else case.linear.to_json()
        (model / "linear.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return dest


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
