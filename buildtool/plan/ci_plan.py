"""CI planning against a registry, from tag sets alone: pure (no network, no engine, no CLI).

The content-hash tag (`buildtool/<node>:h-<hash20>`) names a node's rendered content and its
parent's hash, so a tag the registry already has is a node nobody needs to build again; a changed
node changes every hash below it, so "missing" is exactly "changed, plus its subtree".

- `matrix_entry`: the one CI job-matrix entry of a node (generated/ci/level-N.json, `buildtool
  matrix`, `buildtool ci missing`).
- `missing_levels`: per DAG level, the nodes whose tag the registry lacks.
- `plan_against_registry`: what a runner with some local tags does: build, pull (ancestors of a
  node to build only), leave in the registry.
- `selected_nodes`, `selection_levels`, `leaves`, `restrict_to_nodes`: which nodes a selection
  covers, and a view of the plan that builds exactly some chains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from ..errors import OperationError


def matrix_entry(dag: Any, rendered: Mapping[str, Any], nid: str) -> dict[str, str]:
    """One job of a CI level matrix: {node, tag, parent_tag, context, base}."""
    return {"node": nid, "tag": rendered[nid].tag, "parent_tag": rendered[nid].parent_ref,
            "context": f"generated/nodes/{nid}", "base": dag.nodes[nid].base.key}


def level_matrix(dag: Any, rendered: Mapping[str, Any], ids: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """A GitHub Actions strategy.matrix: {"include": [entry, ...]}."""
    return {"include": [matrix_entry(dag, rendered, nid) for nid in ids]}


@dataclass(frozen=True)
class RemotePlan:
    """What a runner does given its local tags and the registry's."""

    to_build: list[str]  # not local, not in the registry: build (topological order)
    to_pull: list[str]  # not local, in the registry, an ancestor of a node to build: pull + retag
    from_registry: list[str]  # in the registry and not needed locally: neither pulled nor built
    local: list[str]  # already tagged on this engine


def plan_against_registry(nodes: Sequence[str], parents: Mapping[str, str | None], tag_of: Mapping[str, str],
                          local_tags: Iterable[str], remote_tags: Iterable[str]) -> RemotePlan:
    """Decide from tag sets alone; `nodes` in topological order, parents outside `nodes` (bases) are ignored."""
    local, remote = set(local_tags), set(remote_tags)
    in_sel = set(nodes)
    is_local = {n for n in nodes if tag_of[n] in local}
    to_build = [n for n in nodes if n not in is_local and tag_of[n] not in remote]
    need: set[str] = set()
    for n in to_build:
        p = parents.get(n)
        while p is not None and p in in_sel:
            if p not in is_local and p not in to_build:
                need.add(p)
            p = parents.get(p)
    to_pull = [n for n in nodes if n in need]
    from_registry = [n for n in nodes if n not in is_local and n not in need and n not in to_build]
    return RemotePlan(to_build=to_build, to_pull=to_pull, from_registry=from_registry, local=[n for n in nodes if n in is_local])


def missing_levels(levels: Sequence[Sequence[str]], tag_of: Mapping[str, str], remote_tags: Iterable[str]) -> list[list[str]]:
    """Per DAG level, the nodes whose content-hash tag the registry does not have."""
    remote = set(remote_tags)
    return [[n for n in ids if tag_of[n] not in remote] for ids in levels]


def selected_nodes(g: Any, chosen: Sequence[Any], node: str | None = None) -> list[str]:
    """The layer nodes (no bases) of the chosen images' chains, topological order; with `node`, only
    the part of them on that node's chain (the node and its ancestors)."""
    wanted: set[str] = set()
    for v in chosen:
        wanted.update(n.id for n in g.dag.chain(g.dag.variant_node[v.name]) if n.stage != "base")
    if node:
        if node not in g.dag.nodes:
            raise OperationError(f"no node {node!r} in the plan")
        wanted &= {n.id for n in g.dag.chain(node)}
        if node not in wanted:
            raise OperationError(f"node {node!r} is not in the selected images' chains")
    return [nid for nid in g.dag.nodes if nid in wanted]


def selection_levels(g: Any, nodes: Iterable[str]) -> list[list[str]]:
    """The DAG levels restricted to `nodes`, empty levels dropped."""
    wanted = set(nodes)
    return [ids for ids in ([nid for nid in ids if nid in wanted] for ids in g.dag.levels()) if ids]


def leaves(nodes: Sequence[str], parents: Mapping[str, str | None]) -> list[str]:
    """The nodes of `nodes` that are no other node's parent within `nodes`."""
    inner = {parents.get(n) for n in nodes}
    return [n for n in nodes if n not in inner]


def restrict_to_nodes(g: Any, targets: Sequence[str]) -> tuple[Any, list[Any]]:
    """A view of `g` plus stand-in images whose chains end at `targets`, so that `build.run_build`
    builds exactly those chains (an inner node alone, not the images below it)."""
    names = {f"node:{n}": n for n in targets}
    dag = dataclasses.replace(g.dag, variant_node={**g.dag.variant_node, **names})
    return dataclasses.replace(g, dag=dag), [SimpleNamespace(name=name) for name in names]
