"""A runner that uses the registry as its cache: build what the registry lacks, pull only what that needs.

Nodes the registry has (by content-hash tag) are neither built nor pulled unless a node to build
sits below them; then they are pulled by that tag and retagged locally (`<registry>/<ns>/<node>:h-...`
-> `buildtool/<node>:h-...`), never rebuilt. When nothing is missing, nothing is pulled either.
The decision is buildtool.plan.ci_plan's (pure); the registry settings, lookups, pulls and pushes are
buildtool.edges.registry's; `buildtool ci build` and `buildtool build --from-registry` call this module.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from ..config.model import Config
from ..edges.registry import DEFAULT_LOOKUPS, Registry, RegistryClient
from ..errors import OperationError
from ..plan.ci_plan import RemotePlan, leaves, plan_against_registry, restrict_to_nodes
from ..render.generate import Generated
from .build import BuildOptions, run_build
from .registry_transfer import ensure_parent, push_tag


@dataclass
class PullReport:
    pulled: dict[str, str]  # local tag -> image id
    seconds: float


def pull_for_build(client: Any, plan: RemotePlan, tag_of: Mapping[str, str], registry: Registry) -> PullReport:
    """Pull every node of `plan.to_pull` (the ancestors of what will be built), parents first."""
    t0 = time.monotonic()
    pulled = {tag_of[n]: ensure_parent(client, tag_of[n], registry) for n in plan.to_pull}
    return PullReport(pulled=pulled, seconds=time.monotonic() - t0)


def local_tags() -> set[str]:
    """Every repo:tag on this engine (one raw request on the socket when possible)."""
    from . import client as engine

    quick = engine.local_tags_quick()
    return set(quick if quick is not None else engine.local_tags(engine.docker_client()))


def registry_plan(nodes: Sequence[str], g: Generated, registry: Registry, lookups: int = DEFAULT_LOOKUPS) -> tuple[RemotePlan, RegistryClient]:
    """The registry's tags and this engine's, decided by ci_plan.plan_against_registry."""
    tag_of = {n: g.rendered[n].tag for n in nodes}
    parents = {n: g.dag.nodes[n].parent for n in nodes}
    client = RegistryClient(registry)
    remote = client.existing(tag_of.values(), jobs=lookups)
    return plan_against_registry(nodes, parents, tag_of, local_tags(), remote), client


def build_with_registry(config: Config, g: Generated, nodes: Sequence[str], opts: BuildOptions, registry: Registry,
                        lookups: int = DEFAULT_LOOKUPS, out: TextIO | None = None) -> int:
    """Build `nodes` (topological order) on this engine using the registry as the cache (see the module
    docstring). What is left is handed to `build.run_build` restricted to exactly those chains. Writes the
    decision to stdout (JSON line `registry-plan: {...}`) before building; 0 when nothing needs building.
    """
    out = out or sys.stdout
    if opts.force:
        raise OperationError("--force rebuilds what exists; it does not go with the registry as the cache")
    t0 = time.monotonic()
    tag_of = {n: g.rendered[n].tag for n in nodes}
    parents = {n: g.dag.nodes[n].parent for n in nodes}
    plan, client_lookups = registry_plan(nodes, g, registry, lookups)
    pulled: dict[str, str] = {}
    client = None
    if plan.to_build and plan.to_pull:
        from . import client as engine

        client = engine.docker_client()
        pulled = pull_for_build(client, plan, tag_of, registry).pulled
    decision = {"registry": registry.host, "to_build": plan.to_build, "pulled": pulled, "from_registry": plan.from_registry,
                "local": plan.local, "requests": client_lookups.requests, "seconds": round(time.monotonic() - t0, 3)}
    print("registry-plan: " + json.dumps(decision, sort_keys=True), file=out, flush=True)
    if not plan.to_build:
        print(f"nothing to build: {len(plan.from_registry)} nodes in {registry.host}, {len(plan.local)} local "
              f"(decided in {decision['seconds']:.2f} s, no pulls, no builds)", file=out, flush=True)
        return 0
    from . import client as engine
    client = client or engine.docker_client()
    bases = sorted({g.dag.nodes[n].base.local_ref for n in plan.to_build if g.dag.nodes[n].stage == "system"})
    unshared = share_bases(client, registry, bases, out)
    view, chosen = restrict_to_nodes(g, leaves(plan.to_build, parents))
    rc = run_build(config, view, chosen, opts)
    for ref in unshared:  # bootstrapped here: the next runner pulls these bytes instead of bootstrapping again
        if engine.image_id(client, ref):
            print(f"base {ref}: pushed {push_tag(client, ref, registry)}", file=out, flush=True)
    return rc


def share_bases(client: Any, registry: Registry, base_refs: Sequence[str], out: Any) -> list[str]:
    """Pull each base a node to build stands on from the registry by its content tag (its manifest's digest),
    so runners share the same bytes; the refs the registry does not have yet (pushed after the build)."""
    unshared = []
    for ref in base_refs:
        try:
            ensure_parent(client, ref, registry)
            print(f"base {ref}: from {registry.host}", file=out, flush=True)
        except OperationError as exc:
            print(f"base {ref}: not in {registry.host} ({exc}); made here", file=out, flush=True)
            unshared.append(ref)
    return unshared


if __name__ == "__main__":  # pragma: no cover - the old entry point says where it went instead of doing nothing
    sys.exit("`python -m buildtool.engine.remote` is gone: use `buildtool ci missing|plan|build|images|pull|push` (same flags)")
