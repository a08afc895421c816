"""Miniconda from its checksummed installer, with python and conda pinned against updates."""

from __future__ import annotations

from ..config.schema import AbsPath, CondaChannel, HttpUrl, List, Map, Sha256, Version
from ._python import PythonFlavor
from .base import Check

PREFIX = "/opt/conda"


class CondaFlavor(PythonFlavor):
    name = "conda"
    platforms = ("linux/amd64",)
    platforms_reason = "the Miniconda installer in images.yaml is the x86_64 one"
    fields = {
        "installer": Map({"url": HttpUrl(), "sha256": Sha256()}, required=("url", "sha256"), what="the installer's url and sha256"),
        "conda": Version(),
        "python": Version(),
        "channels": List(CondaChannel(), min_items=1, unique=True),
        "prefix": AbsPath(),
    }
    required = ("installer", "conda", "python", "channels")
    template = "conda.Dockerfile.j2"

    def apt_packages(self, component, base):
        return ("curl",)

    def facts(self, component, base, apt_pins):
        prefix = component.fields.get("prefix", PREFIX)
        return {
            "version": component.fields["python"],
            "conda": component.fields["conda"],
            "prefix": prefix,
            "bin": f"{prefix}/bin",
            "provider": "conda",
        }

    def labels(self, component, facts):
        out = super().labels(component, facts)
        out["io.buildtool.conda.version"] = facts["python.conda"]
        return out

    def env(self, component, facts):
        return {"CONDA_DIR": facts["python.prefix"], "PATH": f"{facts['python.bin']}:$PATH"}

    def checks(self, component, facts):
        return super().checks(component, facts) + (
            Check("conda", "conda-version", {"version": facts["python.conda"], "prefix": facts["python.prefix"]}),
        )
