"""The `buildtool` command line. Exit codes: 0 ok, 1 stale/failed operation, 2 bad input."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..edges.credpolicy import mask_url
from ..errors import OperationError, UserError
from .arg_types import duration, level, positive_int

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
buildtool turns one declarative matrix (images.yaml) and its lock (images.lock)
into pinned, committed Dockerfiles under generated/, one folder per node of the
layer DAG (base -> system -> python -> mpi -> accelerator -> onnxruntime).

exit codes: 0 ok, 1 stale output or a failed operation, 2 bad input (the error
names file:line and the key)."""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=Path("images.yaml"), help="the matrix (default: images.yaml)")
    p.add_argument("--lock", type=Path, default=None, help="resolved pins (default: images.lock beside --config)")
    p.add_argument("--site", type=Path, default=None, help="site overlay YAML (default: $BUILDTOOL_SITE, else none)")


def _selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group", default=None, help="a group from images.yaml, or 'all' (default: the default group)")
    p.add_argument("--filter", action="append", default=[], metavar="AXIS=V[,V]",
                   help="narrow the selection: os=, python=, mpi=, accelerator=, onnxruntime= or name=GLOB (repeatable)")
    p.add_argument("--platform", default="linux/amd64", metavar="OS/ARCH",
                   help="the platform to select, build, verify or publish for: linux/amd64 (default) or linux/arm64")


def _format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json"), default="table", help="output for people (table) or programs (json)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="buildtool", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("validate", help="check images.yaml, the site overlay and the lock; render everything in memory")
    _common(p)

    p = sub.add_parser("list", help="list the images of a group (or the combinations the rules dropped)")
    _common(p)
    _selection(p)
    _format(p)
    p.add_argument("--why-excluded", action="store_true", help="list every dropped combination and the rule or exclude that dropped it")

    p = sub.add_parser("generate", help="write generated/ and the README images table (atomic; no network)")
    _common(p)
    p.add_argument("--out", type=Path, default=None,
                   help="output folder, replaced as a whole (default: generated/ beside --config); refused when it holds anything buildtool did not write")
    p.add_argument("--readme", type=Path, default=None, help="README whose images section is refreshed (default: README.md beside --config)")

    p = sub.add_parser("check", help="exit 1 with a diff when generated/ or the README table is stale")
    _common(p)
    p.add_argument("--out", type=Path, default=None, help="the generated folder (default: generated/ beside --config)")
    p.add_argument("--readme", type=Path, default=None, help="the README (default: README.md beside --config)")

    p = sub.add_parser("docs", help="print the images table (Markdown)")
    _common(p)
    p.add_argument("--flavors", action="store_true", help="print the flavor reference instead (docs/flavors.md: every flavor's fields and the facts templates read)")

    sub.add_parser("schema", help="print images.yaml's JSON Schema (draft 2020-12), made from the schema the loader checks with",
                   description="Print the JSON Schema (draft 2020-12) of images.yaml, generated from buildtool's own schema objects "
                               "(components discriminated by `flavor`). schema/images.schema.json is a committed copy; editors read it "
                               "through images.yaml's `# yaml-language-server: $schema=` line. `buildtool validate` checks more "
                               "(cross-references, rules, PEP 440 versions).")

    p = sub.add_parser("matrix", help="print the CI job matrix of one DAG level (JSON, for strategy.matrix)")
    _common(p)
    _selection(p)
    p.add_argument("--level", type=level, default=None, help="DAG level (0 = system layers); omit to list the levels")

    p = sub.add_parser("bases", help="make every base the selected images need: local image, else pull, else bootstrap")
    _common(p)
    _selection(p)
    p.add_argument("--force", action="store_true", help="bootstrap again even when the base image exists")
    p.add_argument("--refresh-stale", action="store_true",
                   help="when a bootstrap today installs other packages than images.lock records (the archive moved), accept it, "
                        "re-lock just that base and regenerate generated/ (announced; recorded in the lock and the images' labels)")
    _format(p)

    p = sub.add_parser("build", help="build the selected images' DAG on the Docker Engine (parallel, content-hash skips)")
    _common(p)
    _selection(p)
    p.add_argument("--jobs", type=positive_int, default=2, help="nodes built in parallel (default: 2)")
    p.add_argument("--force", action="store_true", help="rebuild nodes whose content-hash tag already exists")
    p.add_argument("--ca-bundle", type=Path, default=None, help="extra CA bundle for download steps (a BuildKit secret; default: site overlay)")
    p.add_argument("--logs", type=Path, default=Path("logs"), help="folder for per-node build logs (default: logs)")
    p.add_argument("--out", type=Path, default=None, help="the generated/ folder to build from (default: generated/ beside --config)")
    p.add_argument("--from-registry", nargs="?", const="", default=None, metavar="HOST[:PORT]",
                   help="use the registry as the cache: a node it has by content-hash tag is not built; the ancestors of a node "
                        "to build are pulled by that tag, never rebuilt (default host: $BUILDTOOL_REGISTRY, else the site overlay)")
    p.add_argument("--node", default=None, help="build only this node's chain (one job of a CI level matrix)")
    _format(p)

    p = sub.add_parser("verify", help="check every selected image with pytest-testinfra (derived + declared checks)")
    _common(p)
    _selection(p)
    p.add_argument("--jobs", type=positive_int, default=2, help="images checked in parallel (default: 2)")
    p.add_argument("--gpu", choices=("auto", "yes", "no"), default="auto",
                   help="run the GPU tier: auto = only where `docker run --gpus all` works (default)")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="folder for JUnit XML and the Markdown report (default: reports)")
    _format(p)

    p = sub.add_parser("publish", help="push verified images to the site's registry; write the release record and notes (releases/)")
    _common(p)
    _selection(p)
    _format(p)
    from ..publish.push import add_arguments as publish_arguments  # --dry-run --verify --jobs --releases --reports --logs --state --date

    publish_arguments(p)

    p = sub.add_parser("serving", help="model-serving smoke: serve a tiny model FROM each CPU leaf (POST /score) and check the reply")
    _common(p)
    _selection(p)
    p.add_argument("--network", choices=("auto", "bridge", "host"), default="auto",
                   help="auto: the default bridge, else the host network once the bridge fails (default: auto)")
    p.add_argument("--keep", action="store_true", help="keep the serving images (containers are always removed)")
    _format(p)

    p = sub.add_parser("prune", help="remove content-hash tags the current plan no longer names, and old build cache")
    _common(p)
    p.add_argument("--dry-run", action="store_true", help="print what would be removed")
    p.add_argument("--cache-age", type=duration, default="168h", help="also prune BuildKit cache older than this (default: 168h; '' to skip)")

    p = sub.add_parser("lock", help="resolve apt and pip pins into images.lock (needs the network)")
    _common(p)
    p.add_argument("--only", choices=("apt", "pip"), default=None, help="refresh only one kind of pin")
    p.add_argument("--base", action="append", default=[], metavar="KEY",
                   help="re-resolve the apt pins of this base only (repeatable); every other base's pins stay byte-identical")
    p.add_argument("--jobs", type=positive_int, default=4, help="parallel pip resolutions (default: 4)")
    p.add_argument("--upgrade", action="store_true", help="re-resolve every pip set (default: only sets that are missing or whose request changed)")
    p.add_argument("--upgrade-package", action="append", default=[], metavar="NAME",
                   help="move this pip package to its newest version wherever it appears (repeatable): re-resolve just the sets that "
                        "require or pin it, every other package kept at its locked version where it still fits (implies --only pip)")
    p.add_argument("--check", action="store_true",
                   help="write nothing: report pins whose .deb cannot be fetched (stale; exit 1) and pins with a newer version in -security/-updates")
    p.add_argument("--refresh-stale", action="store_true",
                   help="re-lock only the bases with stale pins or a moved base, announce what moved, regenerate generated/")
    p.add_argument("--format", choices=("table", "json"), default="table", help="--check output")
    p.add_argument("--platform", default="linux/amd64", metavar="OS/ARCH",
                   help="resolve this platform's pins (linux/arm64: its own section of images.lock, bases bootstrapped for arm64)")

    _ci(sub)
    return parser


def _ci(sub: argparse._SubParsersAction) -> None:
    """`buildtool ci <verb>`: the registry-side jobs of CI (buildtool/cli/ci.py)."""
    ci = sub.add_parser("ci", help="CI against the registry: missing nodes, plan, build/pull/push by content-hash tag")
    verbs = ci.add_subparsers(dest="ci_command", metavar="VERB", required=True)

    def common(sp: argparse.ArgumentParser, selection: bool = True) -> None:
        _common(sp)
        sp.add_argument("--registry", default=None, help="host[:port], http://host[:port] for plain HTTP (default: the site overlay's, "
                                                         "which $BUILDTOOL_REGISTRY overrides)")
        if selection:
            _selection(sp)
            sp.add_argument("--node", default=None, help="only this node's chain")
            sp.add_argument("--lookups", type=positive_int, default=8, help="HEAD requests in flight (default: 8)")

    sp = verbs.add_parser("missing", help="job matrix of the nodes whose content-hash tag the registry lacks")
    common(sp)
    sp.add_argument("--level", type=level, default=None)
    sp.add_argument("--github-output", default=None, help="also append levelN=/anyN=/missing= lines to this file ($GITHUB_OUTPUT)")

    sp = verbs.add_parser("plan", help="build / pull / skip decision from the registry alone")
    common(sp)
    sp.add_argument("--pull", action="store_true", help="also pull the ancestors of the nodes to build")

    sp = verbs.add_parser("build", help="build the selection (or --node's chain) with the registry as the cache")
    common(sp)
    sp.add_argument("--jobs", type=positive_int, default=2)
    sp.add_argument("--ca-bundle", type=Path, default=None)
    sp.add_argument("--logs", type=Path, default=Path("logs"))
    sp.add_argument("--out", type=Path, default=Path("generated"))
    _format(sp)

    sp = verbs.add_parser("images", help="image names whose leaf node is --node (comma-separated), or with --tags their content-hash tags")
    common(sp)
    sp.add_argument("--tags", action="store_true")

    sp = verbs.add_parser("pull", help="pull content-hash tags from the registry, retag locally")
    common(sp, selection=False)
    sp.add_argument("tags", nargs="+")

    sp = verbs.add_parser("push", help="push local content-hash tags to the registry")
    common(sp, selection=False)
    sp.add_argument("tags", nargs="+")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from . import commands

        return getattr(commands, f"cmd_{args.command}")(args)
    except UserError as exc:
        print(mask_url(exc.render()), file=sys.stderr)
        return EXIT_USAGE
    except OperationError as exc:
        print(mask_url(f"error: {exc}"), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def emit_json(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
