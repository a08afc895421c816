"""`buildtool lock --platform P` for a platform besides linux/amd64: its own apt and pip pins (images.lock `platforms`).

apt: the base bootstrapped for the architecture (debootstrap --arch, run under emulation where the host is
another architecture) and apt resolving every layer chain in a container of it, as for linux/amd64: the
manifest and every .deb are the architecture's own. (apt's `-o APT::Architecture=arm64` on the amd64 base
would resolve against an amd64 dpkg database: the closure and the manifest would be the wrong ones.)

pip: every set resolved again by uv for the platform's wheels (the lock keeps the sha256 of the one wheel
that installs), a new set preferring linux/amd64's versions of it so one image has the same versions on
every platform where the wheels exist.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..config.model import Config
from ..lock.format import Lock, bind_bases, dump_lock, load_lock, platform_lock
from ..plan.dag import build_dag
from ..plan.platforms import platform_config, platform_variants
from ..render.writer import write_file_atomically
from .lock_steps import apt_keys, apt_log_dir, report_written


def resolve_platform_lock(config: Config, lock_path: Path, platform: str, only: str | None, jobs: int, bases: tuple[str, ...] = (),
                          upgrade: bool = False, upgrade_packages: tuple[str, ...] = ()) -> bool:
    """Resolve one platform's pins into images.lock; every other platform's stay byte-identical. False (nothing
    written for apt) on a failure."""
    from ..errors import OperationError
    from .apt import resolve_bases_apt
    from .apt_resolve import ResolveError as AptResolveError
    from .pip import resolve_pip
    from .uv import MACHINES

    started = time.monotonic()
    whole = load_lock(lock_path, upgrading=True)
    view = platform_config(config, platform)
    old = platform_lock(whole, platform)
    lock = Lock(path=str(lock_path), bases={k: v for k, v in old.bases.items() if k in view.bases}, pip=dict(old.pip), platform=platform)
    unknown = [b for b in bases if b not in view.bases]
    if unknown:
        print(f"error: no base {', '.join(unknown)} for {platform} (made for it: {', '.join(sorted(view.bases))})", file=sys.stderr)
        return False
    if only in (None, "apt"):
        bound = bind_bases(view, old)
        dag = build_dag(bound, platform_variants(config, bound, old))
        try:
            lock.bases.update(resolve_bases_apt(view, dag, apt_keys(view.bases, bases), old, log_dir=apt_log_dir(config)))
        except (AptResolveError, OperationError) as exc:
            print(f"error: apt ({platform}): {exc}; {lock_path} not written", file=sys.stderr)
            return False
    ok, sets = True, 0
    if only in (None, "pip"):
        bound = bind_bases(view, lock)
        ok, sets = resolve_pip(bound, lock, jobs, upgrade, upgrade_packages, machine=MACHINES[platform], prefer=whole.pip,
                               variants=platform_variants(config, bound, lock))
    whole.platforms[platform] = lock
    write_file_atomically(lock_path, dump_lock(whole))
    report_written(lock_path, lock, sets, started, f" ({platform})")
    return ok
