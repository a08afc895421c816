"""Shared shape of the MPI flavors that come from the distribution's archive."""

from __future__ import annotations

from ..config.schema import Version
from ._mpi import MpiFlavor
from .base import upstream_version


class AptMpiFlavor(MpiFlavor):
    fields = {"mpi4py": Version()}
    packages: tuple[str, ...] = ()
    version_package = ""
    template = "apt-mpi.Dockerfile.j2"

    def apt_packages(self, component, base):
        return self.packages

    def pip_requirements(self, component, facts):
        return self.mpi4py(component)

    def facts(self, component, base, apt_pins):
        pin = apt_pins.get(self.version_package)
        return {"version": upstream_version(pin) if pin else "", "mpi4py": component.fields.get("mpi4py", "")}
