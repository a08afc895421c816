"""The empty choice of an axis (no MPI, no ONNX Runtime, CPU only): adds no layer."""

from __future__ import annotations

from .base import Flavor


class NoneFlavor(Flavor):
    name = "none"
    axis = "*"

    def facts(self, component, base, apt_pins):
        return {"version": ""}

    def labels(self, component, facts):
        return {}
