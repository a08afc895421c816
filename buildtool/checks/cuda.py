"""CUDA: libcudart, libcudnn, libnccl resolvable by the dynamic linker, and their versions (read through
ctypes, no GPU needed) equal the pins."""

from __future__ import annotations

import json
import shlex

from .base import CheckFailed, CheckImpl, Image, Probe, expect
from .linker import LDCONFIG, find_library, linker_cache
from .probes import source


def probe_command(mode: str) -> str:
    return f"python -c {shlex.quote(source('cuda_probe.py'))} {mode}"


CUDA_VERSIONS = Probe("cuda-versions", probe_command("versions"))
TENSORRT_VERSION = Probe("tensorrt-version", probe_command("tensorrt"))


# Version integers -> dotted versions -----------------------------------------------


def cudart_version(value: int) -> str:
    """cudaRuntimeGetVersion: 1000*major + 10*minor (12080 -> '12.8', 11080 -> '11.8')."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def cudnn_version(value: int) -> str:
    """cudnnGetVersion: cuDNN 9+ is 10000*major + 100*minor + patch (91002 -> '9.10.2');
    cuDNN 8 and older 1000*major + 100*minor + patch (8906 -> '8.9.6')."""
    if value >= 90000:
        return f"{value // 10000}.{(value % 10000) // 100}.{value % 100}"
    return f"{value // 1000}.{(value % 1000) // 100}.{value % 100}"


def nccl_version(value: int) -> str:
    """ncclGetVersion: from 2.9 on 10000*major + 100*minor + patch (22703 -> '2.27.3'); before, 1000*major + 100*minor + patch."""
    if value >= 20900:
        return f"{value // 10000}.{(value % 10000) // 100}.{value % 100}"
    return f"{value // 1000}.{(value % 1000) // 100}.{value % 100}"


def tensorrt_version(value: int) -> str:
    """getInferLibVersion: TensorRT 10+ is 10000*major + 100*minor + patch (101303 -> '10.13.3');
    TensorRT 8 1000*major + 100*minor + patch (8601 -> '8.6.1')."""
    if value >= 100000:
        return f"{value // 10000}.{(value % 10000) // 100}.{value % 100}"
    return f"{value // 1000}.{(value % 1000) // 100}.{value % 100}"


DECODERS = {"cudart": (cudart_version, "cuda", 2), "cudnn": (cudnn_version, "cudnn", 3), "nccl": (nccl_version, "nccl", 3)}


def pin_prefix(pin: str, parts: int) -> str:
    """The part of a pin a library reports: CUDA 12.8.90 -> '12.8' (the runtime API reports major.minor),
    cuDNN 9.10.2.21 -> '9.10.2', NCCL 2.27.3 -> '2.27.3'."""
    return ".".join(str(pin).split(".")[:parts])


def compare_versions(report: dict, pins: dict) -> tuple[list[str], list[str]]:
    """(problems, found) for a `cuda_probe.py versions` report against {cuda, cudnn, nccl} pins."""
    problems, found = [], []
    for lib, (decode, pin_key, parts) in DECODERS.items():
        if pin_key not in pins:
            continue
        entry = report.get(lib)
        if not isinstance(entry, dict) or "error" in entry or "value" not in entry:
            problems.append(f"lib{lib}: {entry.get('error') if isinstance(entry, dict) else 'no answer'}")
            continue
        if entry.get("rc", 0) != 0:
            problems.append(f"lib{lib} ({entry.get('library')}): version call returned error {entry['rc']}")
            continue
        got, want = decode(int(entry["value"])), pin_prefix(pins[pin_key], parts)
        found.append(f"{lib} {got} ({entry['value']})")
        if got != want:
            problems.append(f"lib{lib} ({entry.get('library')}) reports {got} ({entry['value']}), the pin is {pins[pin_key]} (want {want})")
    return problems, found


def parse_report(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    raise CheckFailed(f"the ctypes probe printed no JSON: {stdout.strip()[:300]!r}")


def _libs_probes(image: Image, params: dict) -> list[Probe]:
    return [LDCONFIG]


def _libs_evaluate(image: Image, params: dict) -> str:
    cache = linker_cache(image)
    found, missing = [], []
    for stem in params["libs"]:
        names = find_library(cache, stem)
        (found if names else missing).append(f"{stem} ({', '.join(names)})" if names else stem)
    expect(not missing, f"not in `ldconfig -p`: {', '.join(missing)}" + (f"; found {', '.join(found)}" if found else ""))
    return ", ".join(found)


def _versions_probes(image: Image, params: dict) -> list[Probe]:
    return [CUDA_VERSIONS]


def _versions_evaluate(image: Image, params: dict) -> str:
    result = image.result(CUDA_VERSIONS.key)
    expect(result.ok, f"the ctypes probe failed (exit {result.rc}): {result.brief()}")
    problems, found = compare_versions(parse_report(result.stdout), params)
    if problems:
        raise CheckFailed("; ".join(problems))
    return ", ".join(found)


def _trt_probes(image: Image, params: dict) -> list[Probe]:
    return [LDCONFIG, TENSORRT_VERSION]


def _trt_evaluate(image: Image, params: dict) -> str:
    cache = linker_cache(image)
    missing = [stem for stem in params.get("libs", ["libnvinfer"]) if not find_library(cache, stem)]
    expect(not missing, f"not in `ldconfig -p`: {', '.join(missing)}")
    result = image.result(TENSORRT_VERSION.key)
    expect(result.ok, f"the ctypes probe failed (exit {result.rc}): {result.brief()}")
    entry = parse_report(result.stdout).get("tensorrt")
    if not isinstance(entry, dict) or "value" not in entry:
        raise CheckFailed(f"libnvinfer: {entry.get('error') if isinstance(entry, dict) else 'no answer'}")
    got, want = tensorrt_version(int(entry["value"])), pin_prefix(params["tensorrt"], 3)
    expect(got == want, f"libnvinfer ({entry.get('library')}) reports {got} ({entry['value']}), the pin is {params['tensorrt']} (want {want})")
    return f"{entry.get('library')}: TensorRT {got} ({entry['value']})"


CHECKS = {
    "tensorrt-libraries": CheckImpl(_trt_probes, _trt_evaluate, "libnvinfer in `ldconfig -p`; getInferLibVersion equals the TensorRT pin"),
    "libraries-resolvable": CheckImpl(_libs_probes, _libs_evaluate, "libcudart, libcudnn, libnccl in `ldconfig -p`"),
    "library-versions": CheckImpl(_versions_probes, _versions_evaluate, "cudaRuntimeGetVersion, cudnnGetVersion, ncclGetVersion equal the pins"),
}
