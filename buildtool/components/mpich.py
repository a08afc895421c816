"""MPICH from the distribution's archive, plus an optional mpi4py."""

from __future__ import annotations

from ._apt_mpi import AptMpiFlavor


class MpichFlavor(AptMpiFlavor):
    name = "mpich"
    packages = ("mpich", "libmpich-dev")
    version_package = "mpich"
