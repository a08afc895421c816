"""Intel MPI runtime from PyPI (impi-rt) inside the Python environment, registered with ldconfig."""

from __future__ import annotations

from ._pip_mpi import PipMpiFlavor


class IntelMpiFlavor(PipMpiFlavor):
    name = "intelmpi"
    platforms = ("linux/amd64",)
    platforms_reason = "impi-rt publishes manylinux x86_64 wheels only (no aarch64 on PyPI)"
    package = "impi-rt"
    library = "libmpi.so.12"

    def env(self, component, facts):
        return {"I_MPI_ROOT": facts["python.prefix"]}
