"""`buildtool prune`: remove content-hash tags the plan no longer names, and old build cache."""

from __future__ import annotations

import argparse

from ..arg_types import duration
from ..common import Inputs, add_inputs

NAME = "prune"
HELP = "remove content-hash tags the current plan no longer names, and old build cache"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)
    p.add_argument("--dry-run", action="store_true", help="print what would be removed")
    p.add_argument("--cache-age", type=duration, default="168h", help="also prune BuildKit cache older than this (default: 168h; '' to skip)")


def run(args: argparse.Namespace) -> int:
    from ...engine.prune import run_prune

    _, g = Inputs.from_args(args).generated()
    return run_prune({r.tag for r in g.rendered.values()}, dry_run=args.dry_run, cache_age=args.cache_age or None)
