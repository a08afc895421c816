"""`buildtool validate`: load and render everything in memory; report the matrix's size."""

from __future__ import annotations

import argparse

from ...render.unlocked import summary
from ..common import EXIT_OK, Inputs, add_inputs

NAME = "validate"
HELP = "check images.yaml, the site overlay and the lock; render everything in memory (before a lock: the names, and what is not locked)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)


def run(args: argparse.Namespace) -> int:
    config, g, unlocked = Inputs.from_args(args).planned()
    for line in summary(unlocked):
        print(line)
    layers = sum(1 for n in g.dag.nodes.values() if n.stage != "base")
    print(f"ok: {args.config}: {len(g.expansion.variants)} images, {layers} layer nodes over {len(config.bases)} bases, "
          f"{len(g.expansion.dropped)} combinations dropped; site overlay: {config.site.source}"
          + (f"; {len({u.node for u in unlocked})} layer nodes not locked yet (run `buildtool lock`)" if unlocked else ""))
    return EXIT_OK
