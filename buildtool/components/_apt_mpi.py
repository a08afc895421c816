"""Shared shape of the MPI flavors that come from the distribution's archive."""

from __future__ import annotations

from ..schema import Version
from .base import Check, Flavor, upstream_version


class AptMpiFlavor(Flavor):
    axis = "mpi"
    fields = {"mpi4py": Version()}
    packages: tuple[str, ...] = ()
    version_package = ""
    template = "apt-mpi.Dockerfile.j2"

    def apt_packages(self, component, base):
        return self.packages

    def pip_requirements(self, component, facts):
        mpi4py = component.fields.get("mpi4py")
        return (f"mpi4py=={mpi4py}",) if mpi4py else ()

    def facts(self, component, base, apt_pins):
        pin = apt_pins.get(self.version_package)
        return {"version": upstream_version(pin) if pin else "", "mpi4py": component.fields.get("mpi4py", "")}

    def checks(self, component, facts):
        return (Check("mpi", "mpirun-version", {"flavor": self.name, "version": facts["mpi.version"]}),
                Check("mpi", "two-rank-run", {"mpi4py": bool(facts["mpi.mpi4py"])}))
