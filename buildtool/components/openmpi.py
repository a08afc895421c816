"""Open MPI from the distribution's archive (mpirun, headers), plus an optional mpi4py."""

from __future__ import annotations

from ._apt_mpi import AptMpiFlavor


class OpenMpiFlavor(AptMpiFlavor):
    name = "openmpi"
    packages = ("openmpi-bin", "libopenmpi-dev")
    version_package = "openmpi-bin"

    def env(self, component, facts):
        # CMA (single-copy) needs ptrace rights that containers do not grant.
        return {"OMPI_MCA_btl_vader_single_copy_mechanism": "none"}
