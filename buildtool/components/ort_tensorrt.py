"""onnxruntime-gpu with TensorRT's libraries from PyPI (tensorrt-cu12-libs), registered with ldconfig."""

from __future__ import annotations

from ..schema import Version
from ._ort import OrtGpuFlavor
from .base import Check


class OrtTensorrtFlavor(OrtGpuFlavor):
    name = "ort-tensorrt"
    provider = "TensorrtExecutionProvider"
    fields = {**OrtGpuFlavor.fields, "tensorrt": Version()}
    required = ("version", "cuda", "tensorrt")

    def facts(self, component, base, apt_pins):
        return {**super().facts(component, base, apt_pins), "tensorrt": component.fields["tensorrt"]}

    def labels(self, component, facts):
        out = super().labels(component, facts)
        out["io.buildtool.tensorrt.version"] = facts["onnxruntime.tensorrt"]
        return out

    def library_checks(self, component, facts):
        return (Check("cuda", "tensorrt-libraries", {"libs": ["libnvinfer"], "tensorrt": facts["onnxruntime.tensorrt"]}),)
