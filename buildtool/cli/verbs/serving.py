"""`buildtool serving`: the model-serving smoke (POST /score) on the selection's CPU leaves."""

from __future__ import annotations

import argparse
import sys

from ..common import EXIT_FAILED, EXIT_OK, add_format, add_inputs, add_selection, emit_json, selected

NAME = "serving"
HELP = "model-serving smoke: serve a tiny model FROM each CPU leaf (POST /score) and check the reply"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)
    add_selection(p)
    p.add_argument("--network", choices=("auto", "bridge", "host"), default="auto",
                   help="auto: the default bridge, else the host network once the bridge fails (default: auto)")
    p.add_argument("--keep", action="store_true", help="keep the serving images (containers are always removed)")
    add_format(p)


def run(args: argparse.Namespace) -> int:
    """Build a model-serving image FROM each selected CPU leaf, POST two rows to /score, compare; exit 1 on any failure."""
    from ...engine.client import docker_cli
    from ...serving.smoke import serving_smoke

    config, g, chosen = selected(args)
    results = serving_smoke(config, g, list(chosen), docker_cli=docker_cli(), keep=args.keep, network=args.network,
                            out=sys.stderr if args.format == "json" else sys.stdout)
    if args.format == "json":
        emit_json([r.as_dict() for r in results])
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED
