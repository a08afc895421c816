"""Intel MPI runtime from PyPI (impi-rt) inside the Python environment, registered with ldconfig."""

from __future__ import annotations

from ..schema import Version
from .base import Check, Flavor


class IntelMpiFlavor(Flavor):
    name = "intelmpi"
    axis = "mpi"
    fields = {"version": Version(), "mpi4py": Version()}
    required = ("version",)
    template = "intelmpi.Dockerfile.j2"

    def pip_requirements(self, component, facts):
        reqs = [f"impi-rt=={component.fields['version']}"]
        if component.fields.get("mpi4py"):
            reqs.append(f"mpi4py=={component.fields['mpi4py']}")
        return tuple(reqs)

    def facts(self, component, base, apt_pins):
        return {"version": component.fields["version"], "mpi4py": component.fields.get("mpi4py", "")}

    def env(self, component, facts):
        return {"I_MPI_ROOT": facts["python.prefix"]}

    def checks(self, component, facts):
        return (Check("mpi", "mpirun-version", {"flavor": self.name, "version": facts["mpi.version"]}),
                Check("mpi", "two-rank-run", {"mpi4py": bool(facts["mpi.mpi4py"])}))
