"""What every MPI flavor shares, wherever it comes from: the optional mpi4py, the table column and the checks."""

from __future__ import annotations

from ..config.templating import name_claims
from .base import Check, Column, Flavor


class MpiFlavor(Flavor):
    axis = "mpi"
    columns = (Column("MPI", lambda f: f"{f['mpi.flavor']} {f['mpi.version']}".strip()),)

    def mpi4py(self, component) -> tuple[str, ...]:
        mpi4py = component.fields.get("mpi4py")
        return (f"mpi4py=={mpi4py}",) if mpi4py else ()

    def checks(self, component, facts):
        return (Check("mpi", "mpirun-version", {"flavor": self.name, "version": facts["mpi.version"]}),
                Check("mpi", "name-matches-mpi", {"tag": facts["mpi.tag"],
                                                  "claims": list(name_claims(component.fields.get("tag", ""), facts["mpi.version"]))}),
                Check("mpi", "two-rank-run", {"mpi4py": bool(facts["mpi.mpi4py"])}))
