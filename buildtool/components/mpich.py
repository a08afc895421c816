"""MPICH from the distribution's archive, plus an optional mpi4py."""

from __future__ import annotations

from ._apt_mpi import AptMpiFlavor


class MpichFlavor(AptMpiFlavor):
    name = "mpich"
    packages = ("mpich", "libmpich-dev")
    version_package = "mpich"
    template = None  # its own partial: mpich.Dockerfile.j2 (adds the libmpi.so.12 name mpi4py loads)
