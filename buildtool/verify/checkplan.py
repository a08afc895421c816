"""What to prove about each image: derived checks from its chain of components plus declared checks. Pure.

A node runs the checks of every node in its chain, the way a child image runs
its parents' checks; `buildtool verify` executes the plan (issue 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..components import device_kind
from ..config.model import AXES, Config
from ..plan.dag import Dag, Node
from ..render.render import RenderedNode, node_flavor, node_labels

# Labels every node rewrites; the image carries the last node's value.
_PER_NODE_LABELS = ("org.opencontainers.image.title", "org.opencontainers.image.description", "org.opencontainers.image.base.name", "io.buildtool.node")


@dataclass(frozen=True)
class PlannedCheck:
    family: str
    name: str
    node: str  # the node that introduced the check
    params: dict[str, Any] = field(default_factory=dict)
    tier: str = "cpu"  # the device kind's tier ("gpu"): such checks run only where its devices reach a container
    device: str | None = None  # the device kind (components/devices.py), None for a CPU check

    @property
    def id(self) -> str:
        return f"{self.family}/{self.name}"


def _axis_values(node: Node) -> dict[str, str]:
    return {axis: str(node.facts[axis]) for axis in AXES if axis in node.facts}


def declared_applies(check: dict[str, Any], node: Node) -> bool:
    selector = check.get("on")
    if selector is None:
        return True
    known = _axis_values(node)
    return all(axis in known and known[axis] in allowed for axis, allowed in selector.values)


def expected_labels(config: Config, dag: Dag, rendered: dict[str, RenderedNode], node_id: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for node in dag.chain(node_id):
        if node.id in rendered:
            labels.update(node_labels(config, node, rendered[node.id].parent_ref, node_flavor(node)))
    return dict(sorted(labels.items()))


def checks_for(config: Config, dag: Dag, rendered: dict[str, RenderedNode], node_id: str) -> tuple[PlannedCheck, ...]:
    out: list[PlannedCheck] = []
    for node in dag.chain(node_id):
        if node.stage == "base":
            continue
        for check in node_flavor(node).checks(node.component, node.facts):
            tier = device_kind(check.device).tier if check.device else "cpu"
            out.append(PlannedCheck(check.family, check.name, node.id, dict(check.params), tier, check.device))
        if node.extras and node.id in rendered:
            out.append(extras_check(config, node, rendered[node.id]))
    leaf = dag.nodes[node_id]
    out.append(PlannedCheck("os", "architecture", node_id, {"arch": leaf.base.arch}))  # the platform it was built for
    out.append(PlannedCheck("labels", "labels-match", node_id, {"labels": expected_labels(config, dag, rendered, node_id)}))
    out.append(PlannedCheck("hygiene", "no-caches", node_id, {"python_prefix": leaf.facts.get("python.prefix", "")}))
    out.append(PlannedCheck("hygiene", "no-build-secrets", node_id, {}))
    for check in config.checks:
        if declared_applies(check, leaf):
            params = {k: v for k, v in check.items() if k not in ("name", "on", "kind")}
            out.append(PlannedCheck("declared", check["name"], node_id, {"kind": check["kind"], **params}))
    # Same check from two nodes (e.g. python-version re-stated) runs once: keep the deepest.
    unique: dict[tuple[str, str], PlannedCheck] = {}
    for check in out:
        unique[(check.family, check.name)] = check
    return tuple(unique.values())


def extras_check(config: Config, node: Node, rendered: RenderedNode) -> PlannedCheck:
    """The layer's extras (images.yaml `extras`): every .deb of their closure at the version its extra-debs.lock names."""
    from ..render.extras import EXTRA_DEBS

    text = dict(rendered.files)[EXTRA_DEBS]
    packages = {parts[4]: parts[5] for line in text.splitlines() if line and not line.startswith("#") and len(parts := line.split()) >= 7}
    repos = [config.apt_repositories[k] for k in sorted({r for e in node.extras for r in e.repositories})]
    return PlannedCheck("extras", f"extra-packages-{node.stage}", node.id, {
        "packages": packages, "requested": sorted({n for e in node.extras for n in e.apt}),
        "repositories": [{"key": r.key, "url": r.url, "keyring": r.keyring_path, "sources": f"/etc/apt/sources.list.d/buildtool-{r.key}.sources"}
                         for r in repos]})


def image_plan(config: Config, dag: Dag, rendered: dict[str, RenderedNode], names: list[str]) -> list[dict[str, Any]]:
    """JSON-ready plan: one entry per image with its tag and checks."""
    plan = []
    for name in names:
        nid = dag.variant_node[name]
        plan.append({
            "image": name,
            "node": nid,
            "tag": rendered[nid].tag,
            "user": config.system.user,
            "uid": config.system.uid,
            "checks": [{"id": c.id, "family": c.family, "name": c.name, "node": c.node, "tier": c.tier,
                        "device": c.device, "params": c.params}
                       for c in checks_for(config, dag, rendered, nid)],
        })
    return plan
