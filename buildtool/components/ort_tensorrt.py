"""onnxruntime-gpu with TensorRT's libraries from PyPI (tensorrt-cu12-libs), registered with ldconfig."""

from __future__ import annotations

from ._ort import OrtGpuFlavor
from .base import Check


class OrtTensorrtFlavor(OrtGpuFlavor):
    name = "ort-tensorrt"
    platforms = ("linux/amd64",)
    platforms_reason = "onnxruntime-gpu 1.24.x publishes no aarch64 wheels on PyPI"
    provider = "TensorrtExecutionProvider"
    version_fields = OrtGpuFlavor.version_fields + ("tensorrt",)

    def labels(self, component, facts):
        out = super().labels(component, facts)
        out["io.buildtool.tensorrt.version"] = facts["onnxruntime.tensorrt"]
        return out

    def library_checks(self, component, facts):
        return (Check("cuda", "tensorrt-libraries", {"libs": ["libnvinfer"], "tensorrt": facts["onnxruntime.tensorrt"]}),)
