"""The nvidia device kind's checks (they run only where its `docker run` flags work, see
buildtool/components/devices.py): a device is visible to the CUDA runtime, cuDNN creates a handle
on it, NCCL initialises a communicator on it."""

from __future__ import annotations

from ..components.devices import NVIDIA
from .base import CheckFailed, CheckImpl, Image, NotRun, Probe
from .cuda import parse_report, probe_command
from .onnxruntime import model_evaluate, tiny_model_probe

NO_GPU = NVIDIA.no_device  # "no GPU: docker run --gpus all failed"
CUDA_DEVICE = Probe("cuda-device", probe_command("device"))


def device_problems(report: dict) -> tuple[list[str], str]:
    problems = []
    cudart = report.get("cudart")
    if not isinstance(cudart, dict) or "error" in cudart:
        return [f"libcudart: {cudart.get('error') if isinstance(cudart, dict) else 'no answer'}"], ""
    if cudart.get("rc") != 0 or cudart.get("count", 0) < 1:
        return [f"cudaGetDeviceCount returned error {cudart.get('rc')} with {cudart.get('count')} devices (driver {cudart.get('driver')})"], ""
    for lib, call in (("cudnn", "cudnnCreate"), ("nccl", "ncclCommInitAll")):
        entry = report.get(lib)
        if not isinstance(entry, dict) or "error" in entry:
            problems.append(f"lib{lib}: {entry.get('error') if isinstance(entry, dict) else 'no answer'}")
        elif entry.get("rc") != 0:
            problems.append(f"{call} on device 0 returned error {entry['rc']}")
    return problems, f"{cudart['count']} device(s), driver API {cudart.get('driver')}"


def _probes(image: Image, params: dict) -> list[Probe]:
    return [CUDA_DEVICE] if NVIDIA.name in image.devices else []


def _evaluate(image: Image, params: dict) -> str:
    if NVIDIA.name not in image.devices:
        raise NotRun(NO_GPU)
    result = image.result(CUDA_DEVICE.key)
    if not result.ok:
        raise CheckFailed(f"the ctypes device probe failed (exit {result.rc}): {result.brief()}")
    problems, note = device_problems(parse_report(result.stdout))
    if problems:
        raise CheckFailed("; ".join(problems))
    return note


def _ort_probes(image: Image, params: dict) -> list[Probe]:
    return [tiny_model_probe(image, params["provider"])] if NVIDIA.name in image.devices else []


def _ort_evaluate(image: Image, params: dict) -> str:
    if NVIDIA.name not in image.devices:
        raise NotRun(NO_GPU)
    return model_evaluate(image, params["provider"])


CHECKS = {
    "device-visible": CheckImpl(_probes, _evaluate, "cudaGetDeviceCount > 0, cudnnCreate and ncclCommInitAll succeed (GPU tier)"),
    "onnxruntime-on-device": CheckImpl(_ort_probes, _ort_evaluate, "the tiny model runs on the GPU provider, no fallback (GPU tier)"),
}
