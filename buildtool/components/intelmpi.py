"""Intel MPI runtime from PyPI (impi-rt) inside the Python environment, registered with ldconfig."""

from __future__ import annotations

from ..config.schema import Version
from ._mpi import MpiFlavor
from ._wheels import WheelFlavor


class IntelMpiFlavor(MpiFlavor, WheelFlavor):
    name = "intelmpi"
    platforms = ("linux/amd64",)
    platforms_reason = "impi-rt publishes manylinux x86_64 wheels only (no aarch64 on PyPI)"
    fields = {"version": Version(), "mpi4py": Version()}
    required = ("version",)
    template = "intelmpi.Dockerfile.j2"

    def direct_wheels(self, component):
        return (f"impi-rt=={component.fields['version']}",) + self.mpi4py(component)

    def facts(self, component, base, apt_pins):
        return {"version": component.fields["version"], "mpi4py": component.fields.get("mpi4py", "")}

    def env(self, component, facts):
        return {"I_MPI_ROOT": facts["python.prefix"]}
