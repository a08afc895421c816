"""`buildtool bases`: make every base the selection needs (local image, else pull, else bootstrap)."""

from __future__ import annotations

import argparse
import sys

from ...config.model import DEFAULT_PLATFORM
from ...lock.format import load_lock, platform_lock
from ..common import EXIT_FAILED, Inputs, add_format, add_inputs, add_selection, selected
from .lock import refresh_bases

NAME = "bases"
HELP = "make every base the selected images need: local image, else pull, else bootstrap"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)
    add_selection(p)
    p.add_argument("--force", action="store_true", help="bootstrap again even when the base image exists")
    p.add_argument("--refresh-stale", action="store_true",
                   help="when a bootstrap today installs other packages than images.lock records (the archive moved), accept it, "
                        "re-lock just that base and regenerate generated/ (announced; recorded in the lock and the images' labels)")
    add_format(p)


def run(args: argparse.Namespace) -> int:
    from ...engine.bases import run_bases

    inputs = Inputs.from_args(args)
    config, _, chosen = selected(args)
    platform = getattr(args, "platform", DEFAULT_PLATFORM)
    lock = platform_lock(load_lock(inputs.lock), platform)
    keys = sorted({v.get("os") for v in chosen})
    results: list = []
    rc = run_bases(config, [config.bases[k] for k in keys], force=args.force, output_format=args.format, accept_drift=args.refresh_stale,
                   locked_manifests={k: b.manifest for k, b in lock.bases.items()}, results_out=results)
    drifted = {r.base: r.image_id for r in results if r.ok and r.drift}
    if rc != 0 or not drifted:
        return rc
    if platform != DEFAULT_PLATFORM:  # another platform's pins are re-locked by a deliberate lock of that platform
        print(f"error: {', '.join(sorted(drifted))} for {platform}: the archive moved since the lock; run "
              f"`buildtool lock --platform {platform} --only apt` and `buildtool generate`", file=sys.stderr)
        return EXIT_FAILED
    # The archive moved since the lock: these bases were bootstrapped with other packages. Re-lock just them.
    why = "; ".join(f"base {r.base} bootstrapped with {len(r.drift)} other packages ({', '.join(r.drift[:3])})" for r in results if r.drift)
    return refresh_bases(inputs, config, sorted(drifted), why, images=drifted)
