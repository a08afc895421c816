"""`buildtool check`: exit 1 with a diff when generated/ or the README table is stale."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from ...render.writer import diff_trees, read_tree
from ..common import EXIT_FAILED, EXIT_OK, Inputs, add_inputs
from .generate import OutputPaths, readme_text

NAME = "check"
HELP = "exit 1 with a diff when generated/ or the README table is stale"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)
    p.add_argument("--out", type=Path, default=None, help="the generated folder (default: generated/ beside --config)")
    p.add_argument("--readme", type=Path, default=None, help="the README (default: README.md beside --config)")


def run(args: argparse.Namespace) -> int:
    inputs = Inputs.from_args(args)
    paths = OutputPaths.from_args(args, inputs)
    _, g = inputs.generated()
    problems = diff_trees(g.tree, read_tree(paths.out), str(paths.out))
    readme = readme_text(paths.readme, g)
    if readme is not None and readme[0] != readme[1]:
        problems += [f"stale: {paths.readme} images section"] + list(difflib.unified_diff(
            readme[0].splitlines(), readme[1].splitlines(), f"{paths.readme} (on disk)", f"{paths.readme} (from images.yaml)", lineterm=""))
    if problems:
        print("\n".join(problems))
        print(f"\nstale: {paths.out}/ does not match images.yaml + images.lock; run `buildtool generate` (or `make generate`) and commit", file=sys.stderr)
        return EXIT_FAILED
    print(f"ok: {paths.out}/ and {paths.readme} are up to date ({len(g.tree)} files)")
    return EXIT_OK
