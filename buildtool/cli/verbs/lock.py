"""`buildtool lock`: resolve apt and pip pins into images.lock; --check / --refresh-stale against today's archive."""

from __future__ import annotations

import argparse
import sys

from ...config.model import DEFAULT_PLATFORM, Config
from ...lock.format import load_lock
from ...plan.platforms import check_platform
from ..arg_types import positive_int
from ..common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Inputs, add_inputs, emit_json
from .generate import OutputPaths, write_outputs

NAME = "lock"
HELP = "resolve apt and pip pins into images.lock (needs the network)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)
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
    p.add_argument("--platform", default=DEFAULT_PLATFORM, metavar="OS/ARCH",
                   help="resolve only this platform's pins (linux/arm64: its section of images.lock, its bases bootstrapped for arm64); "
                        "a whole lock without --base resolves every platform")


def run(args: argparse.Namespace) -> int:
    from ...resolve.lock_command import resolve_lock

    inputs = Inputs.from_args(args)
    config = inputs.load_config()
    if args.check or args.refresh_stale:
        return _check(inputs, config, bases=tuple(args.base), refresh=args.refresh_stale, output_format=args.format)
    if args.upgrade_package and args.only == "apt":
        print("error: --upgrade-package moves pip pins; it cannot go with --only apt", file=sys.stderr)
        return EXIT_USAGE
    only = "pip" if args.upgrade_package and args.only is None else args.only  # moving one pip package never re-locks the bases
    if args.platform != DEFAULT_PLATFORM:
        from ...resolve.platform import resolve_platform_lock

        return EXIT_OK if resolve_platform_lock(config, inputs.lock, check_platform(args.platform), only, args.jobs, tuple(args.base),
                                                args.upgrade, tuple(args.upgrade_package)) else EXIT_FAILED
    return EXIT_OK if resolve_lock(config, inputs.lock, only=only, jobs=args.jobs, bases=tuple(args.base), upgrade=args.upgrade,
                                   upgrade_packages=tuple(args.upgrade_package)) else EXIT_FAILED


def _check(inputs: Inputs, config: Config, bases: tuple[str, ...], refresh: bool, output_format: str) -> int:
    """--check: report (exit 1 when a pin is stale). --refresh-stale: re-lock exactly the stale bases and regenerate."""
    from ...lock.check import check_lock, render_report

    report = check_lock(load_lock(inputs.lock), config.site, bases=list(bases) or None)
    if output_format == "json":
        emit_json(report.as_json())
    else:
        print(render_report(report))
    if not report.stale:
        return EXIT_OK
    if not refresh:
        return EXIT_FAILED
    return refresh_bases(inputs, config, report.stale_bases(), "pool files gone: " + ", ".join(
        f"{p.base} {p.package} {p.locked}" for p in report.stale))


def refresh_bases(inputs: Inputs, config: Config, keys: list[str], why: str, images: dict[str, str] | None = None) -> int:
    """Re-lock the apt pins of `keys` against today's archive, say loudly what moved, record it in the lock
    (and so in the images' labels), and regenerate generated/ and the README table."""
    from ...resolve.lock_command import resolve_lock

    print(f"refresh: re-locking the apt pins of {', '.join(keys)} ({why})", file=sys.stderr)
    before = load_lock(inputs.lock)
    if not resolve_lock(config, inputs.lock, only="apt", jobs=1, bases=tuple(keys), images=images, refreshed_because=why):
        return EXIT_FAILED
    after = load_lock(inputs.lock)
    for key in keys:
        old, new = before.apt.get(key, {}), after.apt.get(key, {})
        moved = [f"{n} {old.get(n, '-')} -> {new.get(n, '-')}" for n in sorted(set(old) | set(new)) if old.get(n) != new.get(n)]
        print(f"refresh: {key}: {len(moved)} pins moved" + "".join(f"\n    {m}" for m in moved), file=sys.stderr)
    rc = write_outputs(inputs, OutputPaths(inputs.root.resolve() / "generated", inputs.root.resolve() / "README.md"))
    print(f"refresh: done; review and commit {inputs.lock.name} and generated/ (the refresh is recorded in the lock and in "
          f"the system layer's io.buildtool.apt.refreshed label until the next `buildtool lock`)", file=sys.stderr)
    return rc
