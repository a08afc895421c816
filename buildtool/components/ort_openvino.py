"""onnxruntime-openvino: ONNX Runtime with the OpenVINO provider bundled (runs on the CPU device)."""

from __future__ import annotations

from ..schema import Version
from ._ort import OrtFlavor


class OrtOpenvinoFlavor(OrtFlavor):
    name = "ort-openvino"
    package = "onnxruntime-openvino"
    provider = "OpenVINOExecutionProvider"
    run_provider = "OpenVINOExecutionProvider"
    fields = {**OrtFlavor.base_fields, "openvino": Version()}
    required = ("version", "openvino")

    def facts(self, component, base, apt_pins):
        return {**super().facts(component, base, apt_pins), "openvino": component.fields["openvino"]}
