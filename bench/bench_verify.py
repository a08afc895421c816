"""Verification speed per image: batched probes (what `buildtool verify` does) vs one `docker exec` per probe.

    python bench/bench_verify.py [--group smoke] [--filter AXIS=V ...] [--repeat 3]

For each built image of the selection it starts one container, then times
  batched:  every probe of the image's checks in one `docker exec` per user (ImageSession.gather),
  baseline: the same probes one testinfra `host.run` (= one `docker exec`) each, one after another,
and evaluates every check on the batched results. Target: batched checking under 5 s per image.
Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from buildtool.checks.session import ImageSession  # noqa: E402
from buildtool.config.loader import load_config  # noqa: E402
from buildtool.lock.format import load_lock  # noqa: E402
from buildtool.plan.expand import select  # noqa: E402
from buildtool.render.generate import generate  # noqa: E402
from buildtool.verify.checkplan import image_plan  # noqa: E402

ASSETS = ROOT / "tests" / "images" / "models"


def one_by_one(session: ImageSession) -> float:
    """The baseline: each probe in its own `docker exec`, as a naive testinfra suite would run them."""
    import shlex

    import testinfra

    probes = session.planned_probes()
    hosts: dict[str, object] = {}
    t0 = time.monotonic()
    for p in probes:
        host = hosts.setdefault(p.user, testinfra.get_host(f"docker://{p.user + '@' if p.user else ''}{session.container}"))
        host.run("bash -c " + shlex.quote(p.command))  # type: ignore[attr-defined]
    return time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", default=None)
    parser.add_argument("--filter", action="append", default=[])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    config = load_config(ROOT / "images.yaml")
    g = generate(config, load_lock(ROOT / "images.lock"))
    names = [v.name for v in select(config, g.expansion.variants, args.group, tuple(args.filter))]
    rows = []
    for entry in image_plan(config, g.dag, g.rendered, names):
        batched, baseline, probes, checks, failed = [], [], 0, 0, 0
        for _ in range(args.repeat):
            session = ImageSession(entry=entry, assets=ASSETS)
            try:
                session.start()
            except Exception as exc:  # not built: say so and go on
                print(f"{entry['image']}: skipped ({exc})", file=sys.stderr)
                break
            try:
                t0 = time.monotonic()
                session.gather()
                outcomes = [session.evaluate(c) for c in entry["checks"]]
                batched.append(time.monotonic() - t0)
                probes = len(session.planned_probes())
                checks = len(outcomes)
                failed = sum(o.status == "failed" for o in outcomes)
                baseline.append(one_by_one(session))
            finally:
                session.stop()
        if batched:
            rows.append((entry["image"], checks, probes, failed, statistics.median(batched), statistics.median(baseline)))
    print(f"verification speed, median of {args.repeat} (seconds after the container started)\n")
    print(f"{'image':<50} {'checks':>6} {'probes':>6} {'failed':>6} {'batched':>8} {'1 exec/probe':>12} {'ratio':>6}")
    for name, checks, probes, failed, b, base in rows:
        print(f"{name:<50} {checks:>6} {probes:>6} {failed:>6} {b:>8.2f} {base:>12.2f} {b / base:>6.2f}")
    if rows:
        worst = max(r[4] for r in rows)
        print(f"\nworst batched: {worst:.2f} s per image (target < 5 s): {'met' if worst < 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
