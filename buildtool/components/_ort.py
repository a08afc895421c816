"""What the ONNX Runtime flavors share: the pinned package, provider facts and checks."""

from __future__ import annotations

from ..schema import Dict, PipName, Version
from .base import Check, Flavor


class OrtFlavor(Flavor):
    axis = "onnxruntime"
    package = "onnxruntime"
    provider = "CPUExecutionProvider"
    base_fields = {"version": Version(), "extra_wheels": Dict(Version(), key=PipName())}
    fields = dict(base_fields)
    required = ("version",)

    def pip_requirements(self, component, facts):
        reqs = [f"{self.package}=={component.fields['version']}"]
        reqs += [f"{n}=={v}" for n, v in sorted(component.fields.get("extra_wheels", {}).items())]
        return tuple(reqs)

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

    run_provider = "CPUExecutionProvider"
