"""What the ONNX Runtime flavors share: the pinned package, provider facts and checks; the GPU packages' base."""

from __future__ import annotations

from ..config.schema import Dict, PipName, Version
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
    # Required version fields of a package family (the CUDA line of onnxruntime-gpu, OpenVINO's version): each is a
    # field, a fact and required; a subclass lists its own after its parent's.
    version_fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "version_fields" in cls.__dict__:
            cls.fields = {**OrtFlavor.base_fields, **{name: Version() for name in cls.version_fields}}
            cls.required = ("version",) + cls.version_fields
    columns = (Column("ONNX Runtime", lambda f: f"{f['onnxruntime.version']} ({f['onnxruntime.provider'].replace('ExecutionProvider', '')})"),)

    def direct_wheels(self, component):
        return (f"{self.package}=={component.fields['version']}",)

    def facts(self, component, base, apt_pins):
        return {"version": component.fields["version"], "package": self.package, "provider": self.provider,
                **{name: component.fields[name] for name in self.version_fields}}

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
    version_fields = ("cuda",)

    def library_checks(self, component, facts) -> tuple[Check, ...]:
        return ()

    def checks(self, component, facts):
        return super().checks(component, facts) + self.library_checks(component, facts) + (
            Check("gpu", "onnxruntime-on-device", {"provider": self.provider}, device=self.device),)
