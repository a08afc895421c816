"""`buildtool verify`: check every selected image with pytest-testinfra (derived + declared checks)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..arg_types import positive_int
from ..common import add_format, add_inputs, add_selection, selected

NAME = "verify"
HELP = "check every selected image with pytest-testinfra (derived + declared checks)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)
    add_selection(p)
    p.add_argument("--jobs", type=positive_int, default=2, help="images checked in parallel (default: 2)")
    p.add_argument("--gpu", choices=("auto", "yes", "no"), default="auto",
                   help="run the device tier (GPU checks): auto = only where the device kind's probe container runs (default)")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="folder for JUnit XML and the Markdown report (default: reports)")
    add_format(p)


def run(args: argparse.Namespace) -> int:
    from ...verify.runner import VerifyOptions, run_verify

    config, g, chosen = selected(args)
    return run_verify(config, g, chosen, VerifyOptions(reports=args.reports, jobs=args.jobs, gpu=args.gpu, output_format=args.format))
