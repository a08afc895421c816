"""What the ONNX Runtime flavors share: the pinned package, provider facts and checks; the GPU packages' base."""

from __future__ import annotations

from ..schema import Dict, PipName, Version
from ._wheels import WheelFlavor
from .base import Check, Column


class OrtFlavor(WheelFlavor):
    axis = "onnxruntime"
    package = "onnxruntime"
    provider = "CPUExecutionProvider"
    run_provider = "CPUExecutionProvider"
    base_fields = {"version": Version(), "extra_wheels": Dict(Version(), key=PipName())}
    fields = dict(base_fields)
    required = ("version",)
    wheel_field = "extra_wheels"
    columns = (Column("ONNX Runtime", lambda f: f"{f['onnxruntime.version']} ({f['onnxruntime.provider'].replace('ExecutionProvider', '')})"),)

    def direct_wheels(self, component):
        return (f"{self.package}=={component.fields['version']}",)

    def facts(self, component, base, apt_pins):
        return {"version": component.fields["version"], "package": self.package, "provider": self.provider}

    def labels(self, component, facts):
        out = super().labels(component, facts)
        out["io.buildtool.onnxruntime.provider"] = self.provider
        return out

    def checks(self, component, facts):
        return (
            Check("onnxruntime", "provider-listed", {"provider": self.provider}),
            Check("onnxruntime", "tiny-model-cpu", {"provider": self.run_provider}),
        )


class OrtGpuFlavor(OrtFlavor):
    """onnxruntime-gpu: built for one CUDA line (`cuda`), its provider proven on the device."""

    package = "onnxruntime-gpu"
    device = "nvidia"
    fields = {**OrtFlavor.base_fields, "cuda": Version()}
    required = ("version", "cuda")

    def facts(self, component, base, apt_pins):
        return {**super().facts(component, base, apt_pins), "cuda": component.fields["cuda"]}

    def library_checks(self, component, facts) -> tuple[Check, ...]:
        return ()

    def checks(self, component, facts):
        return super().checks(component, facts) + self.library_checks(component, facts) + (
            Check("gpu", "onnxruntime-on-device", {"provider": self.provider}, device=self.device),)
