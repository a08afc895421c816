"""buildtool.serving.smoke without an engine: the Dockerfile, the ONNX reader, expected outputs, the request and
response handling, the comparator, and templates/serving/score.py + serve.py run in-process on loopback."""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import struct
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from buildtool.errors import OperationError
from buildtool.serving import image as serving_image
from buildtool.serving import report as serving_report
from buildtool.serving import smoke as serving
from buildtool.serving.image import Target, render_dockerfile, serving_targets
from buildtool.serving.model import linear_predict, load_model_case, read_linear_onnx
from buildtool.serving.replies import ServingError, assert_outputs, compare_outputs, parse_response, request_body

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "images" / "models"
ORT = Target("onnxruntime1.24.1-openvino-debian13", "buildtool/debian13.sys.system-python.ort-openvino:h-401cfd8763987c1d1eff",
             "onnxruntime", "OpenVINOExecutionProvider")
PLAIN = Target("openmpi4.1.4-debian12", "buildtool/debian12.sys.system-python.openmpi:h-6ef1b807ac9ce340d491", "python", "python")


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


@pytest.fixture(scope="module")
def case():
    return load_model_case(MODELS)


# The model -----------------------------------------------------------------------------------------------


def test_onnx_reader_gives_the_weights_make_tiny_model_wrote(case):
    # tests/images/models/make_tiny_model.py: W[i][j] = (i + 1) * 0.1 - j * 0.25, b = (0.5, -1, 2), float32
    assert case.linear.w == [[f32((i + 1) * 0.1 - j * 0.25) for j in range(3)] for i in range(10)]
    assert case.linear.b == [0.5, -1.0, 2.0]
    assert (case.linear.input, case.linear.output) == ("x", "y")


def test_expected_outputs_equal_the_model_files_numbers(case):
    spec = json.loads((MODELS / "tiny_linear.json").read_text())
    assert case.rows == spec["x"] and len(case.rows) == 2 and all(len(r) == 10 for r in case.rows)
    got = linear_predict(case.linear, spec["x"])
    assert compare_outputs(got, spec["y"], 1e-9) == []
    assert case.expected == spec["y"]


def test_linear_predict_checks_the_row_width(case):
    with pytest.raises(ValueError, match="row of 9 numbers"):
        linear_predict(case.linear, [[1.0] * 9])


def test_onnx_reader_rejects_what_is_not_a_linear_model():
    with pytest.raises(ValueError):
        read_linear_onnx(b"\x3a\x04\x0a\x02\x22\x00")  # a graph whose one node has no op_type
    with pytest.raises(ValueError, match="no graph"):
        read_linear_onnx(b"")
    with pytest.raises(ValueError, match="truncated"):
        read_linear_onnx(b"\x3a\x10\x0a")


def test_model_case_refuses_a_json_that_the_onnx_does_not_reproduce(tmp_path):
    for name in ("tiny_linear.onnx", "tiny_linear.json"):
        shutil.copy(MODELS / name, tmp_path / name)
    spec = json.loads((tmp_path / "tiny_linear.json").read_text())
    spec["y"][1][2] += 0.5
    (tmp_path / "tiny_linear.json").write_text(json.dumps(spec))
    with pytest.raises(OperationError, match=r"does not reproduce.*y\[1\]\[2\]"):
        load_model_case(tmp_path)


# Which leaves, and the Dockerfile ----------------------------------------------------------------------


def _variant(name, accel="none", ort="none", provider=None):
    facts = {"accelerator.flavor": accel, "onnxruntime.flavor": ort, "system.uid": 1000}
    if provider:
        facts["onnxruntime.provider"] = provider
    return SimpleNamespace(name=name, facts=facts)


def test_serving_targets_are_the_cpu_leaves_with_their_tags_and_model_paths():
    variants = [_variant("mpich-debian11"), _variant("ort-cpu", ort="ort-cpu", provider="CPUExecutionProvider"),
                _variant("cuda-ort", accel="cuda-wheels", ort="ort-cuda", provider="CUDAExecutionProvider"),
                _variant("ovino", ort="ort-openvino", provider="OpenVINOExecutionProvider")]
    g = SimpleNamespace(dag=SimpleNamespace(variant_node={v.name: f"node-{v.name}" for v in variants}),
                        rendered={f"node-{v.name}": SimpleNamespace(tag=f"buildtool/{v.name}:h-1") for v in variants})
    got = serving_targets(g, variants)
    assert [(t.image, t.tag, t.backend, t.provider, t.uid) for t in got] == [
        ("mpich-debian11", "buildtool/mpich-debian11:h-1", "python", "python", 1000),
        ("ort-cpu", "buildtool/ort-cpu:h-1", "onnxruntime", "CPUExecutionProvider", 1000),
        ("ovino", "buildtool/ovino:h-1", "onnxruntime", "OpenVINOExecutionProvider", 1000),
    ]


@pytest.mark.parametrize("target", [ORT, PLAIN], ids=["onnxruntime", "python"])
def test_dockerfile_follows_the_project_rules(target):
    text = render_dockerfile(target)
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert "# syntax=" not in text
    assert lines[0] == f"FROM {target.tag}"
    assert lines[1] == 'SHELL ["/bin/bash", "-o", "pipefail", "-c"]'
    assert [ln for ln in lines if ln.startswith("USER")] == ["USER 1000"]
    assert lines[-1] == 'CMD ["python", "/var/azureml-app/serve.py"]' and lines[-2] == "USER 1000"
    assert not any(ln.startswith("RUN") for ln in lines), "the serving build stays offline: COPY only"
    assert f"SCORE_BACKEND={target.backend}" in text and f"SCORE_PROVIDER={target.provider}" in text
    assert ("SCORE_MODEL=tiny_linear.onnx" if target.backend == "onnxruntime" else "SCORE_MODEL=linear.json") in text
    assert "EXPOSE 5001" in text and "PORT=5001" in text


@pytest.mark.parametrize("target", [ORT, PLAIN], ids=["onnxruntime", "python"])
def test_dockerfile_passes_hadolint(tmp_path, target):
    hadolint = shutil.which("hadolint") or (str(REPO / ".venv/bin/hadolint") if (REPO / ".venv/bin/hadolint").exists() else None)
    if not hadolint:
        pytest.skip("hadolint is not installed (make venv)")
    path = tmp_path / "Dockerfile"
    path.write_text(render_dockerfile(target))
    done = subprocess.run([hadolint, "--config", str(REPO / ".hadolint.yaml"), str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_context_holds_the_scripts_and_the_right_model(tmp_path, case):
    ort = serving_image.write_context(ORT, tmp_path / "ort", case)
    plain = serving_image.write_context(PLAIN, tmp_path / "plain", case)
    assert sorted(p.name for p in ort.rglob("*") if p.is_file()) == ["Dockerfile", "score.py", "serve.py", "tiny_linear.onnx"]
    assert sorted(p.name for p in plain.rglob("*") if p.is_file()) == ["Dockerfile", "linear.json", "score.py", "serve.py"]
    spec = json.loads((plain / "model" / "linear.json").read_text())
    assert spec["W"] == case.linear.w and spec["b"] == case.linear.b
    broken = serving_image.write_context(PLAIN, tmp_path / "broken", case, linear={**spec, "b": [0.0, 0.0, 0.0]})
    assert json.loads((broken / "model" / "linear.json").read_text())["b"] == [0.0, 0.0, 0.0]


def test_serving_scripts_run_on_the_oldest_python_of_the_images():
    for name in ("score.py", "serve.py"):
        source = (serving_image.SERVING_TEMPLATES / name).read_text()
        ast.parse(source, name, feature_version=(3, 8))  # debian11's python is 3.9
        imports = {a.name.split(".")[0] for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import) for a in n.names}
        imports |= {n.module.split(".")[0] for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) and n.module}
        assert imports <= {"__future__", "json", "os", "importlib", "signal", "sys", "traceback", "http", "numpy", "onnxruntime"}, imports


# Request, response, comparator -----------------------------------------------------------------------


def test_request_body_is_azureml_shaped(case):
    assert json.loads(request_body(case.rows)) == {"data": case.rows}


def test_parse_response_accepts_predictions_or_a_bare_list():
    body = json.dumps({"predictions": [[1, 2.5]], "backend": "python", "provider": "python"})
    assert parse_response(200, body) == {"predictions": [[1.0, 2.5]], "backend": "python", "provider": "python"}
    assert parse_response(200, b"[[3, 4]]")["predictions"] == [[3.0, 4.0]]


@pytest.mark.parametrize("status, body, match", [
    (500, '{"error": "ValueError: boom"}', "HTTP 500: ValueError: boom"),
    (200, "<html>", "not JSON"),
    (200, '{"result": [[1]]}', "no list of number rows"),
    (200, '{"predictions": [[true, 1]]}', "no list of number rows"),
    (200, '{"predictions": [1, 2]}', "no list of number rows"),
])
def test_parse_response_refuses_what_is_not_a_prediction(status, body, match):
    with pytest.raises(ServingError, match=match):
        parse_response(status, body)


def test_comparator_passes_within_the_tolerance(case):
    near = [[v + 9e-5 for v in row] for row in case.expected]
    assert compare_outputs(near, case.expected) == []
    assert_outputs(near, case.expected)


def test_comparator_fails_on_wrong_numbers(case):
    wrong = [row[:] for row in case.expected]
    wrong[1][0] += 1e-3
    assert compare_outputs(wrong, case.expected) == [f"y[1][0] = {wrong[1][0]!r}, expected {case.expected[1][0]!r} (|diff| > 0.0001)"]
    with pytest.raises(AssertionError, match=r"y\[1\]\[0\]"):
        assert_outputs(wrong, case.expected)
    with pytest.raises(AssertionError, match="1 output rows, expected 2"):
        assert_outputs(wrong[:1], case.expected)
    with pytest.raises(AssertionError, match="row 0 has 2 values"):
        assert_outputs([wrong[0][:2], wrong[1]], case.expected)
    with pytest.raises(AssertionError, match="nan"):
        assert_outputs([[float("nan")] * 3, wrong[1]], [case.expected[0], wrong[1]])


# score.py and serve.py, in-process -------------------------------------------------------------------


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"serving_{name}", serving_image.SERVING_TEMPLATES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def score(tmp_path, case, monkeypatch):
    """templates/serving/score.py on the python backend, with linear.json as the serving image has it."""
    serving_image.write_context(PLAIN, tmp_path / "ctx", case)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path / "ctx" / "model"))
    monkeypatch.setenv("SCORE_BACKEND", "python")
    monkeypatch.setenv("SCORE_MODEL", "linear.json")
    module = _load("score")
    module.init()
    return module


def test_score_run_follows_azureml_contract(score, case):
    out = score.run(json.dumps({"data": case.rows}))
    json.dumps(out)  # JSON-serialisable
    assert out["backend"] == "python"
    assert_outputs(out["predictions"], case.expected, 1e-9)
    with pytest.raises(ValueError, match="data"):
        score.run(json.dumps({"rows": case.rows}))
    with pytest.raises(ValueError, match="10 numbers"):
        score.run(json.dumps({"data": [[1, 2]]}))


def test_score_refuses_an_unknown_backend(monkeypatch):
    monkeypatch.setenv("SCORE_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="SCORE_BACKEND"):
        _load("score").init()


def _http(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_serve_answers_health_and_score_on_loopback(score, case):
    serve = _load("serve")
    server = serve.make_server(score, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert _http("GET", base + "/")[0] == 200
        status, body = _http("POST", base + "/score", request_body(case.rows))
        assert_outputs(parse_response(status, body)["predictions"], case.expected)
        status, body = _http("POST", base + "/score", b'{"data": "nope"}')
        with pytest.raises(ServingError, match="HTTP 500: ValueError"):
            parse_response(status, body)
        assert _http("POST", base + "/predict", b"{}")[0] == 404
        assert _http("GET", base + "/nothing")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_served_uid_is_read_from_the_startup_line():
    assert serving._served_uid("serve: score.py ready on 0.0.0.0:5001 (uid 1000)\n") == 1000
    assert serving._served_uid("Traceback ...") is None


# The engine edge with a fake docker ----------------------------------------------------------------


class FakeDocker:
    def __init__(self, bridge_error: str | None) -> None:
        self.bridge_error = bridge_error
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, *args, timeout=120, build=False):
        self.calls.append(args)
        if args[0] == "run" and "--network" not in args and self.bridge_error:
            return subprocess.CompletedProcess(args, 125, "", f"docker: Error response from daemon: {self.bridge_error}.\n")
        if args[0] == "run":
            return subprocess.CompletedProcess(args, 0, "c0ffee\n", "")
        if args[0] == "port":
            return subprocess.CompletedProcess(args, 0, "127.0.0.1:49153\n", "")
        return subprocess.CompletedProcess(args, 0, "", "")


def test_start_publishes_port_5001_on_loopback_over_the_bridge():
    fake = FakeDocker(None)
    assert serving._start(fake, "img:1", "c", "lbl", serving._Network("auto")) == ("c0ffee", "bridge", 49153)
    assert ["-p", "127.0.0.1::5001"] == [a for a in fake.calls[0] if a in ("-p", "127.0.0.1::5001")]


def test_start_falls_back_to_the_host_network_when_the_bridge_is_broken():
    fake = FakeDocker("failed to create endpoint c on network bridge: could not find bridge docker0")
    net = serving._Network("auto")
    cid, mode, port = serving._start(fake, "img:1", "c", "lbl", net)
    assert (cid, mode) == ("c0ffee", "host") and port > 0
    host_run = fake.calls[-1]
    assert host_run[0] == "run" and "--network" in host_run and f"PORT={port}" in host_run and "HOST=127.0.0.1" in host_run
    assert "docker0" in net.bridge_broken
    fake.calls.clear()
    serving._start(fake, "img:1", "c2", "lbl", net)  # the next image goes straight to the host network
    assert [c[0] for c in fake.calls] == ["run"]


def test_start_does_not_hide_other_run_errors():
    with pytest.raises(ServingError, match="no such image"):
        serving._start(FakeDocker("pull access denied: no such image"), "img:1", "c", "lbl", serving._Network("auto"))
    with pytest.raises(ServingError, match="docker0"):
        serving._start(FakeDocker("could not find bridge docker0"), "img:1", "c", "lbl", serving._Network("bridge"))


def test_table_lists_each_image_and_the_count():
    results = [serving_report.Result("a", True, 1.25, {"predictions": [[1.0, 2.0]]}, None, backend="python", provider="python", network="bridge"),
               serving_report.Result("b", False, None, None, "not healthy within 30s (connection refused)", backend="onnxruntime",
                              provider="CPUExecutionProvider", network="host")]
    table = serving_report.render_table(results)
    assert "1.2 s" in table and "1.0000, 2.0000" in table and "pass" in table
    assert "FAIL" in table and "not healthy within 30s" in table and "CPUExecutionProvider" in table
    assert table.splitlines()[-1].startswith("1/2 serving images")
