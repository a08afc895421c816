"""`buildtool matrix`: the CI job matrix of one DAG level (JSON for strategy.matrix)."""

from __future__ import annotations

import argparse

from ...errors import Location, UserError
from ...plan.ci_plan import level_matrix, selected_nodes, selection_levels
from ..arg_types import level
from ..common import EXIT_OK, add_inputs, add_selection, emit_json, selected

NAME = "matrix"
HELP = "print the CI job matrix of one DAG level (JSON, for strategy.matrix)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)
    add_selection(p)
    p.add_argument("--level", type=level, default=None, help="DAG level (0 = system layers); omit to list the levels")


def run(args: argparse.Namespace) -> int:
    _, g, chosen = selected(args)
    levels = selection_levels(g, selected_nodes(g, chosen))
    if args.level is None:
        emit_json({"levels": len(levels), "nodes_per_level": [len(ids) for ids in levels]})
        return EXIT_OK
    if not 0 <= args.level < len(levels):
        raise UserError(f"no DAG level {args.level}", where=Location("--level"), key="--level", expected=f"0..{len(levels) - 1}", found=args.level)
    emit_json(level_matrix(g.dag, g.rendered, levels[args.level]))
    return EXIT_OK
