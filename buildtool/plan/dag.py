"""Variants -> a layer DAG (a trie over layer chains): shared prefixes become shared nodes. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from operator import itemgetter
from typing import Any

from ..config.model import LAYER_AXES, Base, Component, Config, Variant
from ..errors import UserError
from .extras import SYSTEM_STAGE, place_extras

STAGES = ("base", SYSTEM_STAGE) + LAYER_AXES
# A node's local tag is buildtool/<id>:h-<hash>; pushed, <registry>/<namespace>/<id>: within OCI's 255.
REPO_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
MAX_NODE_ID = 200


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
    extras: tuple[Any, ...] = ()  # the images.yaml `extras` entries this layer installs (plan/extras.py)

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
    allowed = _allowed_prefixes(stage)
    return {k: v for k, v in variant.facts.items() if k.split(".", 1)[0] in allowed}


@cache
def _allowed_prefixes(stage: str) -> frozenset[str]:
    return frozenset({"os", "system"} | set(LAYER_AXES[: LAYER_AXES.index(stage) + 1] if stage in LAYER_AXES else ()))


class _FactsSlicer:
    """_facts_up_to for many variants whose facts share few key layouts: pick the keys once per layout."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, ...], Any]] = {}

    def __call__(self, facts: dict[str, Any], stage: str) -> dict[str, Any]:
        layout = tuple(facts)
        picked = self.keys.get((stage, layout))
        if picked is None:
            allowed = _allowed_prefixes(stage)
            keys = tuple(k for k in layout if k.split(".", 1)[0] in allowed)
            picked = self.keys[(stage, layout)] = (keys, itemgetter(*keys) if len(keys) > 1 else None)
        keys, get = picked
        if get is None:
            return {k: facts[k] for k in keys}
        return dict(zip(keys, get(facts)))


def build_dag(config: Config, variants: tuple[Variant, ...]) -> Dag:
    nodes: dict[str, Node] = {}
    variant_node: dict[str, str] = {}
    facts_up_to = _FactsSlicer()
    layer_axes = tuple((axis, config.components[axis]) for axis in LAYER_AXES)

    # A node id is its base key and the keys of its components (unique across bases and axes), and
    # a variant's facts are a function of those: two variants reaching one id agree on its facts.
    for variant in variants:
        chosen = dict(variant.combo)
        facts = variant.facts
        base = config.bases[chosen["os"]]
        parent = base.key
        if parent not in nodes:
            nodes[parent] = Node(parent, "base", base, None, None, facts_up_to(facts, "base"), 0)
        node_id = f"{parent}.sys"
        if node_id in nodes and nodes[node_id].stage != SYSTEM_STAGE:
            raise _collision(config, node_id, nodes[node_id], SYSTEM_STAGE, None)
        if node_id not in nodes:
            nodes[node_id] = Node(node_id, SYSTEM_STAGE, base, None, parent, facts_up_to(facts, SYSTEM_STAGE), 1)
            nodes[parent].children.append(node_id)
        parent = node_id
        depth = 1
        for axis, components in layer_axes:
            component = components[chosen[axis]]
            if not component.is_layer:
                continue
            depth += 1
            node_id = f"{parent}.{component.key}"
            known = nodes.get(node_id)
            if known is None:
                nodes[node_id] = Node(node_id, axis, base, component, parent, facts_up_to(facts, axis), depth)
                nodes[parent].children.append(node_id)
            elif known.component is not component or known.parent != parent:
                raise _collision(config, node_id, known, axis, component)
            parent = node_id
        nodes[parent].variants.append(variant.name)
        variant_node[variant.name] = parent
    for node_id, node in nodes.items():
        if len(node_id) > MAX_NODE_ID or not REPO_COMPONENT.fullmatch(node_id):
            path = ("components", node.stage, node.component.key) if node.component is not None else ("bases", node.base.key)
            raise UserError(f"node id {node_id!r} is not a valid image repository name", where=config.doc.where(path), key=".".join(path),
                            expected=f"ids of at most {MAX_NODE_ID} characters, lowercase letters and digits joined by single '.', '_' or '-' "
                                     "(OCI repository grammar: keys made of these)", found=node_id)
    chains = {v.name: [n.id for n in _chain(nodes, variant_node[v.name])] for v in variants}
    for nid, found in place_extras(config, variants, chains, {nid: n.stage for nid, n in nodes.items()}).items():
        nodes[nid].extras = found
    ordered = dict(sorted(nodes.items(), key=lambda kv: (kv[1].depth, kv[0])))
    for node in ordered.values():
        node.children.sort()
        node.variants.sort()
    return Dag(nodes=ordered, variant_node=dict(sorted(variant_node.items())))


def _collision(config: Config, node_id: str, known: Node, axis: str, component: Component | None) -> UserError:
    """Two different layer chains spelling one node id (the key grammar rules this out; this backs it up)."""
    path = ("components", axis, component.key) if component is not None else ("bases",)
    first = f"{known.stage} {known.component.key}" if known.component is not None else f"{known.stage} of base {known.base.key}"
    return UserError(f"two layer chains would get the same node id {node_id!r}", where=config.doc.where(path), key=".".join(path),
                     expected="keys that give every chain its own node id (component keys without '.', base keys without a 'sys' part)",
                     found=f"{first} and {axis} {component.key if component is not None else ''}".strip())


def _chain(nodes: dict[str, Node], leaf: str) -> list[Node]:
    """The nodes from the base up to `leaf`."""
    out, current = [], leaf
    while current is not None:
        out.append(nodes[current])
        current = nodes[current].parent
    return out[::-1]
