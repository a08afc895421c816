"""Variants -> a layer DAG (a trie over layer chains): shared prefixes become shared nodes. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .model import LAYER_AXES, Base, Component, Config, Variant

SYSTEM_STAGE = "system"
STAGES = ("base", SYSTEM_STAGE) + LAYER_AXES


@dataclass
class Node:
    id: str
    stage: str  # base | system | python | mpi | accelerator | onnxruntime
    base: Base
    component: Component | None  # None for base and system nodes
    parent: str | None
    facts: dict[str, Any]  # facts of the axes up to and including this stage
    depth: int
    children: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)  # image names that end at this node

    @property
    def is_leaf(self) -> bool:
        return not self.children

    @property
    def published(self) -> bool:
        return bool(self.variants)


@dataclass
class Dag:
    nodes: dict[str, Node]  # in topological order (parents first)
    variant_node: dict[str, str]  # image name -> node id

    def chain(self, node_id: str) -> list[Node]:
        out = []
        current: str | None = node_id
        while current is not None:
            out.append(self.nodes[current])
            current = self.nodes[current].parent
        return out[::-1]

    def subtree(self, node_id: str) -> list[str]:
        out, stack = [], [node_id]
        while stack:
            nid = stack.pop()
            out.append(nid)
            stack.extend(self.nodes[nid].children)
        return sorted(out, key=lambda n: (self.nodes[n].depth, n))

    def levels(self) -> list[list[str]]:
        """Build levels for CI (level 0 = system layers; bases are made by `buildtool bases`)."""
        layered = [n for n in self.nodes.values() if n.stage != "base"]
        depth = max((n.depth for n in layered), default=0)
        return [sorted(n.id for n in layered if n.depth == d) for d in range(1, depth + 1) if any(n.depth == d for n in layered)]


def _facts_up_to(variant: Variant, stage: str) -> dict[str, Any]:
    """A node's facts: those of the OS, the system layer, and the axes down to its own stage."""
    allowed = {"os", "system"} | set(LAYER_AXES[: LAYER_AXES.index(stage) + 1] if stage in LAYER_AXES else ())
    return {k: v for k, v in variant.facts.items() if k.split(".", 1)[0] in allowed}


def build_dag(config: Config, variants: tuple[Variant, ...]) -> Dag:
    nodes: dict[str, Node] = {}
    variant_node: dict[str, str] = {}

    def add(node_id: str, stage: str, base: Base, component: Component | None, parent: str | None, facts: dict[str, Any], depth: int) -> None:
        existing = nodes.get(node_id)
        if existing is None:
            nodes[node_id] = Node(node_id, stage, base, component, parent, facts, depth)
            if parent is not None:
                nodes[parent].children.append(node_id)
        elif existing.facts != facts:  # pragma: no cover - config validation makes keys unique
            raise AssertionError(f"node {node_id} reached with different facts")

    for variant in variants:
        base = config.bases[variant.get("os")]
        add(base.key, "base", base, None, None, _facts_up_to(variant, "base"), 0)
        parent = f"{base.key}.sys"
        add(parent, SYSTEM_STAGE, base, None, base.key, _facts_up_to(variant, SYSTEM_STAGE), 1)
        depth = 1
        for axis in LAYER_AXES:
            component = config.component(axis, variant.get(axis))
            if not component.is_layer:
                continue
            depth += 1
            node_id = f"{parent}.{component.key}"
            add(node_id, axis, base, component, parent, _facts_up_to(variant, axis), depth)
            parent = node_id
        nodes[parent].variants.append(variant.name)
        variant_node[variant.name] = parent
    ordered = dict(sorted(nodes.items(), key=lambda kv: (kv[1].depth, kv[0])))
    for node in ordered.values():
        node.children.sort()
        node.variants.sort()
    return Dag(nodes=ordered, variant_node=dict(sorted(variant_node.items())))
