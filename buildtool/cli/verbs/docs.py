"""`buildtool docs`: print the images table, or the flavor reference (docs/flavors.md)."""

from __future__ import annotations

import argparse
import sys

from ..common import EXIT_OK, Inputs, add_inputs

NAME = "docs"
HELP = "print the images table (Markdown)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)
    p.add_argument("--flavors", action="store_true", help="print the flavor reference instead (docs/flavors.md: every flavor's fields and the facts templates read)")


def run(args: argparse.Namespace) -> int:
    if args.flavors:
        from ...render.flavor_docs import flavor_reference

        sys.stdout.write(flavor_reference())
        return EXIT_OK
    _, g = Inputs.from_args(args).generated()
    sys.stdout.write(g.table)
    return EXIT_OK
