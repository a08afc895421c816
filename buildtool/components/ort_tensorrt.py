"""onnxruntime-gpu with TensorRT's libraries from PyPI (tensorrt-cu12-libs), registered with ldconfig."""

from __future__ import annotations

from ..schema import Version
from ._ort import OrtFlavor


class OrtTensorrtFlavor(OrtFlavor):
    name = "ort-tensorrt"
    package = "onnxruntime-gpu"
    provider = "TensorrtExecutionProvider"
    fields = {**OrtFlavor.base_fields, "cuda": Version(), "tensorrt": Version()}
    required = ("version", "cuda", "tensorrt")

    def facts(self, component, base, apt_pins):
        return {**super().facts(component, base, apt_pins), "cuda": component.fields["cuda"], "tensorrt": component.fields["tensorrt"]}

    def labels(self, component, facts):
        out = super().labels(component, facts)
        out["io.buildtool.tensorrt.version"] = facts["onnxruntime.tensorrt"]
        return out

    def checks(self, component, facts):
        from .base import Check

        return super().checks(component, facts) + (
            Check("cuda", "tensorrt-libraries", {"libs": ["libnvinfer"], "tensorrt": facts["onnxruntime.tensorrt"]}),
            Check("gpu", "onnxruntime-on-device", {"provider": self.provider, "tier": "gpu"}),
        )
