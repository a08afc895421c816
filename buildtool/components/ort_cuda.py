"""onnxruntime-gpu with the CUDA execution provider; `cuda` is the line the wheel was built for."""

from __future__ import annotations

from ..schema import Version
from ._ort import OrtFlavor


class OrtCudaFlavor(OrtFlavor):
    name = "ort-cuda"
    package = "onnxruntime-gpu"
    provider = "CUDAExecutionProvider"
    fields = {**OrtFlavor.base_fields, "cuda": Version()}
    required = ("version", "cuda")

    def facts(self, component, base, apt_pins):
        return {**super().facts(component, base, apt_pins), "cuda": component.fields["cuda"]}

    def checks(self, component, facts):
        from .base import Check

        return super().checks(component, facts) + (Check("gpu", "onnxruntime-on-device", {"provider": self.provider, "tier": "gpu"}),)
