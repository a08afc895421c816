"""`buildtool validate`: load and render everything in memory; report the matrix's size."""

from __future__ import annotations

import argparse

from ..common import EXIT_OK, Inputs, add_inputs

NAME = "validate"
HELP = "check images.yaml, the site overlay and the lock; render everything in memory"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)


def run(args: argparse.Namespace) -> int:
    config, g = Inputs.from_args(args).generated()
    print(f"ok: {args.config}: {len(g.expansion.variants)} images, {len(g.rendered)} layer nodes over {len(config.bases)} bases, "
          f"{len(g.expansion.dropped)} combinations dropped; site overlay: {config.site.source}")
    return EXIT_OK
