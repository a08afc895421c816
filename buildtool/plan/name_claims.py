"""An MPI component's part of image names claims no other version than the one the image carries. Pure.

`tag: "openmpi5.0"` over the distribution's Open MPI 4.1.6 names a lie (AzureML-Containers#133: an image named
openmpi4.1.0 that carried 3.1.2). The version a layer carries is its `mpi.version` fact: the images.yaml pin of a
PyPI MPI, the lock's package version of an apt one; a family not locked yet has none to compare. verify proves the
same against the built image (checks/mpi.py, name-matches-mpi)."""

from __future__ import annotations

from ..config.model import Config
from ..config.templating import name_claims, versions_agree
from ..errors import UserError
from .dag import Dag


def check_mpi_names(config: Config, dag: Dag) -> None:
    seen = set()
    for node in dag.nodes.values():
        component = node.component
        if node.stage != "mpi" or component is None or (component.key, node.base.key) in seen:
            continue
        seen.add((component.key, node.base.key))
        carried, part = str(node.facts.get("mpi.version") or ""), str(node.facts.get("mpi.tag") or "")
        template = str(component.fields.get("tag", ""))
        wrong = [v for v in name_claims(template, carried) if carried and not versions_agree(v, carried)]
        if wrong:
            path = ("components", "mpi", component.key, "tag")
            raise UserError(f"the image names' MPI part {part!r} claims {wrong[0]}, but {component.key} on {node.base.key} carries "
                            f"{component.flavor} {carried}", where=config.doc.where(path), key=".".join(path),
                            expected="a tag whose version is the one installed (write {version})", found=component.fields.get("tag"))
