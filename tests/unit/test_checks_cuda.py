"""CUDA/cuDNN/NCCL version integers (as ctypes returns them) -> dotted versions, compared with the pins."""

from __future__ import annotations

import pytest

from buildtool.checks import cuda, gpu
from buildtool.checks.base import CheckFailed, Image, NotRun, Result


@pytest.mark.parametrize(("value", "want"), [(12080, "12.8"), (11080, "11.8"), (12090, "12.9"), (13000, "13.0"), (10020, "10.2")])
def test_cudart_version(value, want):
    assert cuda.cudart_version(value) == want


@pytest.mark.parametrize(("value", "want"), [(91002, "9.10.2"), (90800, "9.8.0"), (91900, "9.19.0"), (8906, "8.9.6"), (8600, "8.6.0"), (7605, "7.6.5")])
def test_cudnn_version_both_encodings(value, want):
    assert cuda.cudnn_version(value) == want


@pytest.mark.parametrize(("value", "want"), [(22703, "2.27.3"), (22105, "2.21.5"), (22501, "2.25.1"), (22803, "2.28.3"), (2708, "2.7.8"), (2804, "2.8.4")])
def test_nccl_version_both_encodings(value, want):
    assert cuda.nccl_version(value) == want


def test_pin_prefix_is_what_the_library_reports():
    assert cuda.pin_prefix("12.8.90", 2) == "12.8"
    assert cuda.pin_prefix("9.10.2.21", 3) == "9.10.2"
    assert cuda.pin_prefix("2.27.3", 3) == "2.27.3"


PINS = {"cuda": "12.8.90", "cudnn": "9.10.2.21", "nccl": "2.27.3"}


def report(cudart=12080, cudnn=91002, nccl=22703):
    return {"mode": "versions",
            "cudart": {"library": "libcudart.so.12", "rc": 0, "value": cudart},
            "cudnn": {"library": "libcudnn.so.9", "rc": 0, "value": cudnn},
            "nccl": {"library": "libnccl.so.2", "rc": 0, "value": nccl}}


def test_versions_matching_the_pins():
    problems, found = cuda.compare_versions(report(), PINS)
    assert problems == []
    assert found == ["cudart 12.8 (12080)", "cudnn 9.10.2 (91002)", "nccl 2.27.3 (22703)"]


def test_a_different_nccl_is_named_with_both_versions():
    problems, _ = cuda.compare_versions(report(nccl=22105), PINS)
    assert len(problems) == 1
    assert "libnccl" in problems[0] and "2.21.5" in problems[0] and "2.27.3" in problems[0]


def test_cudnn8_pin_against_cudnn8_library():
    problems, _ = cuda.compare_versions(report(cudart=11080, cudnn=8906, nccl=22105), {"cuda": "11.8.89", "cudnn": "8.9.6.50", "nccl": "2.21.5"})
    assert problems == []


def test_a_missing_library_is_a_problem_not_a_crash():
    r = report()
    r["nccl"] = {"error": "OSError: libnccl: not found by the dynamic linker"}
    problems, found = cuda.compare_versions(r, PINS)
    assert problems == ["libnccl: OSError: libnccl: not found by the dynamic linker"]
    assert len(found) == 2


def test_an_error_code_from_the_version_call_fails():
    r = report()
    r["cudart"]["rc"] = 35
    problems, _ = cuda.compare_versions(r, PINS)
    assert "error 35" in problems[0]


def _image(stdout: str, rc: int = 0, gpu_on: bool = True, key: str = "cuda-device") -> Image:
    return Image(entry={"image": "x", "tag": "t", "checks": []}, results={key: Result(rc, stdout, "")}, gpu=gpu_on)


def test_library_versions_check_end_to_end():
    import json

    image = _image(json.dumps(report()), key=cuda.CUDA_VERSIONS.key)
    assert "nccl 2.27.3" in cuda.CHECKS["library-versions"].evaluate(image, PINS)
    image = _image(json.dumps(report(cudnn=90800)), key=cuda.CUDA_VERSIONS.key)
    with pytest.raises(CheckFailed, match="libcudnn"):
        cuda.CHECKS["library-versions"].evaluate(image, PINS)


def test_gpu_tier_without_gpu_is_not_run_never_passed():
    image = _image("", gpu_on=False)
    assert gpu.CHECKS["device-visible"].probes(image, {}) == []
    with pytest.raises(NotRun, match="no GPU: docker run --gpus all failed"):
        gpu.CHECKS["device-visible"].evaluate(image, {})


def test_gpu_device_report():
    ok = {"cudart": {"rc": 0, "count": 1, "driver": 13000, "driver_rc": 0}, "cudnn": {"rc": 0}, "nccl": {"rc": 0}}
    assert gpu.device_problems(ok) == ([], "1 device(s), driver API 13000")
    no_driver = {"cudart": {"rc": 35, "count": 0, "driver": 0, "driver_rc": 0}}
    problems, _ = gpu.device_problems(no_driver)
    assert "error 35" in problems[0]
    bad_nccl = {**ok, "nccl": {"rc": 2}}
    assert gpu.device_problems(bad_nccl)[0] == ["ncclCommInitAll on device 0 returned error 2"]


def test_probe_script_reports_missing_libraries_as_errors(tmp_path):
    """The in-image probe itself, on this host (no CUDA here): every library is an error entry, exit 0."""
    import json
    import subprocess
    import sys

    from buildtool.checks.probes import HERE

    env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": str(tmp_path)}
    out = subprocess.run([sys.executable, str(HERE / "cuda_probe.py"), "versions"], capture_output=True, text=True, env=env, check=True)
    data = json.loads(out.stdout)
    assert data["mode"] == "versions"
    assert set(data) >= {"cudart", "cudnn", "nccl"}
    for lib in ("cudart", "cudnn", "nccl"):
        assert "error" in data[lib] or "value" in data[lib]


@pytest.mark.parametrize(("value", "want"), [(101303, "10.13.3"), (100000, "10.0.0"), (8601, "8.6.1")])
def test_tensorrt_version(value, want):
    assert cuda.tensorrt_version(value) == want


def test_tensorrt_check_against_the_pin():
    import json

    from buildtool.checks.linker import LDCONFIG

    ldconfig = "\tlibnvinfer.so.10 (libc6,x86-64) => /opt/venv/lib/python3.11/site-packages/tensorrt_libs/libnvinfer.so.10\n"
    report = {"mode": "tensorrt", "tensorrt": {"library": "libnvinfer.so.10", "rc": 0, "value": 101303}}
    image = Image(entry={"image": "x", "tag": "t", "checks": []},
                  results={LDCONFIG.key: Result(0, ldconfig, ""), cuda.TENSORRT_VERSION.key: Result(0, json.dumps(report), "")})
    check = cuda.CHECKS["tensorrt-libraries"]
    assert "TensorRT 10.13.3" in check.evaluate(image, {"libs": ["libnvinfer"], "tensorrt": "10.13.3.9"})
    with pytest.raises(CheckFailed, match="the pin is 10.14.0"):
        check.evaluate(image, {"libs": ["libnvinfer"], "tensorrt": "10.14.0.1"})
    image.results[LDCONFIG.key] = Result(0, "", "")
    with pytest.raises(CheckFailed, match="libnvinfer"):
        check.evaluate(image, {"libs": ["libnvinfer"], "tensorrt": "10.13.3.9"})


def test_onnxruntime_on_device_is_gpu_tier():
    import json
    from pathlib import Path

    from buildtool.checks import onnxruntime

    models = Path(__file__).resolve().parents[1] / "images" / "models"
    spec = json.loads((models / "tiny_linear.json").read_text())
    check = gpu.CHECKS["onnxruntime-on-device"]
    off = Image(entry={"image": "x", "tag": "t", "checks": []}, assets=models, gpu=False)
    assert check.probes(off, {"provider": "CUDAExecutionProvider"}) == []
    with pytest.raises(NotRun):
        check.evaluate(off, {"provider": "CUDAExecutionProvider"})
    on = Image(entry={"image": "x", "tag": "t", "checks": []}, assets=models, gpu=True)
    key = onnxruntime.tiny_model_probe(on, "CUDAExecutionProvider").key
    on.results[key] = Result(0, json.dumps({"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"], "y": spec["y"]}), "")
    assert "CUDAExecutionProvider" in check.evaluate(on, {"provider": "CUDAExecutionProvider"})
    on.results[key] = Result(0, json.dumps({"providers": ["CPUExecutionProvider"], "y": spec["y"]}), "")
    with pytest.raises(CheckFailed, match="fell back"):
        check.evaluate(on, {"provider": "CUDAExecutionProvider"})
