"""`buildtool ci <verb>`: what CI jobs run against the registry (the CLI edge of ci_plan, registry, remote).

    buildtool ci missing [--level N] [--github-output FILE]   job matrix of the nodes the registry lacks
    buildtool ci plan [--pull]        build / pull / leave-in-the-registry, from the registry and local tags alone
    buildtool ci build [--node N]     build the selection (or a node's chain) with the registry as the cache
    buildtool ci images [--node N] [--tags]   the images ending at a node, or their leaves' content-hash tags
    buildtool ci pull TAG...          pull content-hash tags from the registry and retag them locally
    buildtool ci push TAG...          push local content-hash tags under the same tag (skipped when present)

Every verb takes --config/--lock/--site and --registry HOST[:PORT] (default: the site overlay's registry,
which BUILDTOOL_REGISTRY overrides; `http://HOST` for a plain-HTTP registry).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ...config.model import Config
from ...edges.registry import Registry, RegistryClient
from ...engine.registry_transfer import ensure_parent, push_tag
from ...errors import OperationError
from ...plan.ci_plan import level_matrix, missing_levels, selected_nodes, selection_levels
from ...render.generate import Generated
from ..arg_types import level, positive_int
from ..common import Inputs, add_format, add_inputs, add_selection, selected
from .build import add_build_options, build_options

NAME = "ci"
HELP = "CI against the registry: missing nodes, plan, build/pull/push by content-hash tag"


def add_arguments(p: argparse.ArgumentParser) -> None:
    verbs = p.add_subparsers(dest="ci_command", metavar="VERB", required=True)

    def common(sp: argparse.ArgumentParser, selection: bool = True) -> None:
        add_inputs(sp)
        sp.add_argument("--registry", default=None, help="host[:port], http://host[:port] for plain HTTP (default: the site overlay's, "
                                                         "which $BUILDTOOL_REGISTRY overrides)")
        if selection:
            add_selection(sp)
            sp.add_argument("--node", default=None, help="only this node's chain")
            sp.add_argument("--lookups", type=positive_int, default=8, help="HEAD requests in flight (default: 8)")

    sp = verbs.add_parser("missing", help="job matrix of the nodes whose content-hash tag the registry lacks")
    common(sp)
    sp.add_argument("--level", type=level, default=None)
    sp.add_argument("--github-output", default=None, help="also append levelN=/anyN=/missing= lines to this file ($GITHUB_OUTPUT)")

    sp = verbs.add_parser("plan", help="build / pull / skip decision from the registry alone")
    common(sp)
    sp.add_argument("--pull", action="store_true", help="also pull the ancestors of the nodes to build")

    sp = verbs.add_parser("build", help="build the selection (or --node's chain) with the registry as the cache")
    common(sp)
    add_build_options(sp, force=False)
    add_format(sp)

    sp = verbs.add_parser("images", help="image names whose leaf node is --node (comma-separated), or with --tags their content-hash tags")
    common(sp)
    sp.add_argument("--tags", action="store_true")

    sp = verbs.add_parser("pull", help="pull content-hash tags from the registry, retag locally")
    common(sp, selection=False)
    sp.add_argument("tags", nargs="+")

    sp = verbs.add_parser("push", help="push local content-hash tags to the registry")
    common(sp, selection=False)
    sp.add_argument("tags", nargs="+")


def _selection(args: argparse.Namespace) -> tuple[Config, Generated, list[str], list[list[str]]]:
    """(config, generated, needed nodes in topological order, levels restricted to them)."""
    config, g, chosen = selected(args)
    nodes = selected_nodes(g, chosen, getattr(args, "node", None))
    return config, g, nodes, selection_levels(g, nodes)


def _registry(args: argparse.Namespace, config: Config) -> Registry:
    return Registry.from_site(config.site, host=args.registry or None)


def _config(args: argparse.Namespace) -> Config:
    return Inputs.from_args(args).load_config()


def cmd_missing(args: argparse.Namespace) -> int:
    """JSON job matrix of the nodes the registry lacks: one level (`{"include": [...]}`), or all levels."""
    config, g, nodes, levels = _selection(args)
    reg = _registry(args, config)
    tag_of = {n: g.rendered[n].tag for n in nodes}
    remote = RegistryClient(reg).existing(tag_of.values(), jobs=args.lookups)
    missing = missing_levels(levels, tag_of, remote)
    if args.level is not None:
        if not 0 <= args.level < len(levels):
            raise OperationError(f"no DAG level {args.level} (0..{len(levels) - 1})")
        print(json.dumps(level_matrix(g.dag, g.rendered, missing[args.level]), sort_keys=True))
        return 0
    doc: dict[str, Any] = {f"level{i}": json.dumps(level_matrix(g.dag, g.rendered, ids), sort_keys=True) for i, ids in enumerate(missing)}
    doc["levels"] = len(levels)
    doc["missing"] = sum(len(ids) for ids in missing)
    doc["present"] = len(nodes) - doc["missing"]
    if args.github_output:
        with open(args.github_output, "a", encoding="utf-8") as fh:
            for i, ids in enumerate(missing):
                fh.write(f"level{i}={doc[f'level{i}']}\n")
                fh.write(f"any{i}={'true' if ids else 'false'}\n")
            fh.write(f"missing={doc['missing']}\n")
    print(json.dumps(doc, indent=2, sort_keys=True))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """What a runner would do: build / pull / leave in the registry, from the registry and local tags alone."""
    from ...engine.remote import pull_for_build, registry_plan

    t0 = time.monotonic()
    config, g, nodes, _ = _selection(args)
    reg = _registry(args, config)
    tag_of = {n: g.rendered[n].tag for n in nodes}
    plan, client = registry_plan(nodes, g, reg, args.lookups)
    pulled: dict[str, str] = {}
    if args.pull and plan.to_pull:
        from ...engine import client as engine

        pulled = pull_for_build(engine.docker_client(), plan, tag_of, reg).pulled
    out = {"to_build": plan.to_build, "to_pull": plan.to_pull, "from_registry": plan.from_registry, "local": plan.local,
           "pulled": pulled, "registry": reg.host, "requests": client.requests, "seconds": round(time.monotonic() - t0, 3)}
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    """Pull content-hash tags (e.g. a matrix entry's parent_tag) from the registry and retag them locally."""
    from ...engine import client as engine

    reg = _registry(args, _config(args))
    client = engine.docker_client()
    for t in args.tags:
        print(json.dumps({"tag": t, "image": ensure_parent(client, t, reg), "from": reg.remote_ref(t)}, sort_keys=True))
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Push local content-hash tags to the registry under the same content-hash tag."""
    from ...engine import client as engine

    reg = _registry(args, _config(args))
    client = engine.docker_client()
    lookups = RegistryClient(reg)
    for t in args.tags:
        print(json.dumps({"tag": t, "digest": push_tag(client, t, reg, lookups), "to": reg.remote_ref(t)}, sort_keys=True))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """`buildtool build` with the registry as the cache (see remote.build_with_registry)."""
    from ...engine.remote import build_with_registry

    config, g, nodes, _ = _selection(args)
    if not nodes:
        raise OperationError("the selection has no images to build")
    return build_with_registry(config, g, nodes, build_options(args), _registry(args, config), lookups=args.lookups)


def cmd_images(args: argparse.Namespace) -> int:
    """The selected images whose leaf node is --node (all selected images without it), comma-separated;
    with --tags, their leaf nodes' content-hash tags instead, one a line."""
    config, g, chosen = selected(args)
    selected_nodes(g, chosen, args.node)  # an unknown --node, or one off the selection's chains, is an error
    names = {v.name for v in chosen}
    leaf_of = {name: nid for name, nid in g.dag.variant_node.items() if name in names and (not args.node or nid == args.node)}
    if args.tags:
        print("\n".join(sorted({g.rendered[nid].tag for nid in leaf_of.values()})))
    else:
        print(",".join(sorted(leaf_of)))
    return 0


VERBS = {"missing": cmd_missing, "plan": cmd_plan, "build": cmd_build, "images": cmd_images, "pull": cmd_pull, "push": cmd_push}


def run(args: argparse.Namespace) -> int:
    """`buildtool ci <verb>`."""
    return int(VERBS[args.ci_command](args))
