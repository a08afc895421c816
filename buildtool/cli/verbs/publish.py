"""`buildtool publish`: push verified images to the site's registry; write the release record and notes."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..arg_types import positive_int
from ..common import add_format, add_inputs, add_selection, selected

NAME = "publish"
HELP = "push verified images to the site's registry; write the release record and notes (releases/)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)
    add_selection(p)
    add_format(p)
    p.add_argument("--dry-run", action="store_true", help="print what would be pushed (tags, release number) and push nothing")
    p.add_argument("--verify", action="store_true", help="first run `verify` on selected images that have no passing record for their content hash")
    p.add_argument("--jobs", type=positive_int, default=2, help="images verified in parallel with --verify (default: 2)")
    p.add_argument("--releases", type=Path, default=Path("releases"), help="folder of the committed release records and notes (default: releases)")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="verify reports to read records from (default: reports)")
    p.add_argument("--logs", type=Path, default=Path("logs"), help="folder for the publish log (default: logs)")
    p.add_argument("--state", type=Path, default=Path(".state"), help="folder for the unfinished-release marker (default: .state)")
    p.add_argument("--date", default=None, help="release date YYYYMMDD (default: today, UTC)")
    p.add_argument("--platforms", default="all", metavar="all|OS/ARCH[,OS/ARCH]",
                   help="platforms to publish: all (default: every platform an image is made for; two or more make an OCI index) "
                        "or a list such as linux/amd64")


def run(args: argparse.Namespace) -> int:
    from ...publish.multi import parse_platforms
    from ...publish.plan import Options
    from ...publish.push import publish

    platforms = parse_platforms(args.platforms)
    config, g, chosen = selected(args)
    return publish(config, g, list(chosen), Options(dry_run=args.dry_run, output_format=args.format, releases=args.releases,
                                                     reports=args.reports, state=args.state, logs=args.logs, verify=args.verify,
                                                     jobs=args.jobs, date=args.date, lock=args.lock, platforms=platforms))
