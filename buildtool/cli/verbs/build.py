"""`buildtool build`: the selection's layer DAG on the Docker Engine (parallel, content-hash skips)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ...config.model import DEFAULT_PLATFORM
from ...plan.ci_plan import restrict_to_nodes, selected_nodes
from ..arg_types import positive_int
from ..common import Inputs, add_format, add_inputs, add_selection, platform_out, selected

if TYPE_CHECKING:
    from ...engine.build import BuildOptions

NAME = "build"
HELP = "build the selected images' DAG on the Docker Engine (parallel, content-hash skips)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)
    add_selection(p)
    add_build_options(p)
    p.add_argument("--from-registry", nargs="?", const="", default=None, metavar="HOST[:PORT]",
                   help="use the registry as the cache: a node it has by content-hash tag is not built; the ancestors of a node "
                        "to build are pulled by that tag, never rebuilt (default host: $BUILDTOOL_REGISTRY, else the site overlay)")
    p.add_argument("--node", default=None, help="build only this node's chain (one job of a CI level matrix)")
    add_format(p)


def add_build_options(p: argparse.ArgumentParser, force: bool = True) -> None:
    """The flags BuildOptions is made from (shared with `buildtool ci build`)."""
    p.add_argument("--jobs", type=positive_int, default=2, help="nodes built in parallel (default: 2)")
    if force:
        p.add_argument("--force", action="store_true", help="rebuild nodes whose content-hash tag already exists")
    p.add_argument("--ca-bundle", type=Path, default=None, help="extra CA bundle for download steps (a BuildKit secret; default: site overlay)")
    p.add_argument("--logs", type=Path, default=Path("logs"), help="folder for per-node build logs (default: logs)")
    p.add_argument("--out", type=Path, default=None, help="the generated/ folder to build from (default: generated/ beside --config)")


def build_options(args: argparse.Namespace) -> BuildOptions:
    from ...engine.build import BuildOptions

    inputs = Inputs.from_args(args)
    platform = getattr(args, "platform", DEFAULT_PLATFORM)
    return BuildOptions(out=platform_out(args.out or inputs.root / "generated", platform), lock=inputs.lock, logs=args.logs, jobs=args.jobs,
                        force=getattr(args, "force", False), ca_bundle=args.ca_bundle, output_format=getattr(args, "format", "table"),
                        platform=platform)


def run(args: argparse.Namespace) -> int:
    from ...engine.build import run_build

    opts = build_options(args)
    config, g, chosen = selected(args)
    if args.from_registry is None and not args.node:
        return run_build(config, g, chosen, opts)
    nodes = selected_nodes(g, chosen, args.node)
    if args.from_registry is not None:
        from ...edges.registry import Registry
        from ...engine.remote import build_with_registry

        return build_with_registry(config, g, nodes, opts, Registry.from_site(config.site, host=args.from_registry or None))
    view, only = restrict_to_nodes(g, [args.node])
    return run_build(config, view, only, opts)
