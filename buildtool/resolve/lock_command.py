"""`buildtool lock`: resolve apt and/or pip pins (every platform the matrix makes) and write images.lock."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from ..config.model import Config
from ..lock.format import Lock, bind_bases, dump_lock, load_lock
from ..plan.dag import build_dag
from ..plan.expand import expand
from ..render.writer import write_file_atomically
from .apt_resolve import utc_timestamp
from .lock_steps import apt_keys, apt_log_dir, report_written
from .pip import resolve_pip


def resolve_lock(config: Config, lock_path: Path, only: str | None, jobs: int, bases: tuple[str, ...] = (), upgrade: bool = False,
                 images: dict[str, str] | None = None, refreshed_because: str = "", upgrade_packages: tuple[str, ...] = ()) -> bool:
    """Resolve apt and/or pip pins and write images.lock; False (and nothing written) on any failure.

    apt: the bases in `bases` (default: all) are re-resolved against today's archive; the others keep
    their entries byte-identical."""
    from ..errors import OperationError
    from .apt import resolve_bases_apt
    from .apt_resolve import ResolveError as AptResolveError

    started = time.monotonic()
    old = load_lock(lock_path, upgrading=True)
    lock = Lock(path=str(lock_path), bases={k: v for k, v in old.bases.items() if k in config.bases}, pip=dict(old.pip),
                platforms=dict(old.platforms))
    unknown = [b for b in bases if b not in config.bases]
    if unknown:
        print(f"error: unknown base {', '.join(unknown)} (known: {', '.join(sorted(config.bases))})", file=sys.stderr)
        return False
    if only in (None, "apt"):
        bound = bind_bases(config, old)
        dag = build_dag(bound, expand(bound, old).variants)
        try:
            fresh = resolve_bases_apt(config, dag, apt_keys(config.bases, bases), old, log_dir=apt_log_dir(config), images=images)
            if refreshed_because:  # an automatic refresh is recorded (and shown in labels) until the next deliberate lock
                stamp = utc_timestamp()
                fresh = {k: replace(v, refreshed=(f"{stamp} automatic refresh ({refreshed_because})"[:300],)) for k, v in fresh.items()}
            lock.bases.update(fresh)
        except (AptResolveError, OperationError) as exc:
            print(f"error: apt: {exc}; {lock_path} not written", file=sys.stderr)
            return False
    sets = 0
    if only in (None, "pip"):
        ok, sets = resolve_pip(bind_bases(config, lock), lock, jobs, upgrade, upgrade_packages)
        if not ok:  # every set that did resolve is kept: one bad requirement must not throw the others' work away
            write_file_atomically(lock_path, dump_lock(lock))
            print(f"error: some pip sets did not resolve (above); {lock_path} written with the {sets} resolutions that worked",
                  file=sys.stderr)
            return False
    write_file_atomically(lock_path, dump_lock(lock))
    report_written(lock_path, lock, sets, started)
    if bases:  # re-locking named bases (a refresh) is linux/amd64's; another platform's: `buildtool lock --platform P --base KEY`
        return True
    from ..plan.platforms import extra_platforms
    from .platform import resolve_platform_lock

    ok = True
    for platform in extra_platforms(config):  # a whole lock covers every platform the matrix makes
        ok = resolve_platform_lock(config, lock_path, platform, only, jobs, (), upgrade, upgrade_packages) and ok
    return ok
