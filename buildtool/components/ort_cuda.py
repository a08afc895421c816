"""onnxruntime-gpu with the CUDA execution provider; `cuda` is the line the wheel was built for."""

from __future__ import annotations

from ._ort import OrtGpuFlavor


class OrtCudaFlavor(OrtGpuFlavor):
    name = "ort-cuda"
    platforms = ("linux/amd64",)
    platforms_reason = "onnxruntime-gpu 1.24.x publishes no aarch64 wheels on PyPI"
    provider = "CUDAExecutionProvider"
