"""onnxruntime-openvino: ONNX Runtime with the OpenVINO provider bundled (runs on the CPU device)."""

from __future__ import annotations

from ._ort import OrtFlavor


class OrtOpenvinoFlavor(OrtFlavor):
    name = "ort-openvino"
    platforms = ("linux/amd64",)
    platforms_reason = "onnxruntime-openvino publishes x86_64 wheels only"
    package = "onnxruntime-openvino"
    provider = "OpenVINOExecutionProvider"
    run_provider = "OpenVINOExecutionProvider"
    version_fields = ("openvino",)
