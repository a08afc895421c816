"""The `buildtool` command line: the parser made from the verb table, and one place that turns errors into exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..edges.credpolicy import mask_url
from ..errors import OperationError, UserError
from .common import EXIT_FAILED, EXIT_USAGE
from .verbs import VERBS

DESCRIPTION = """\
buildtool turns one declarative matrix (images.yaml) and its lock (images.lock)
into pinned, committed Dockerfiles under generated/, one folder per node of the
layer DAG (base -> system -> python -> mpi -> accelerator -> onnxruntime).

exit codes: 0 ok, 1 stale output or a failed operation, 2 bad input (the error
names file:line and the key)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="buildtool", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for verb in VERBS:
        p = sub.add_parser(verb.NAME, help=verb.HELP, description=getattr(verb, "DESCRIPTION", verb.HELP))
        verb.add_arguments(p)
        p.set_defaults(run=verb.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except UserError as exc:
        print(mask_url(exc.render()), file=sys.stderr)
        return EXIT_USAGE
    except OperationError as exc:
        print(mask_url(f"error: {exc}"), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
