"""ONNX Runtime's CPU package."""

from __future__ import annotations

from ._ort import OrtFlavor


class OrtCpuFlavor(OrtFlavor):
    name = "ort-cpu"
