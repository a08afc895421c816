"""What `buildtool lock` and `buildtool lock --platform P` share: which bases, where apt's logs go, the written line."""

from __future__ import annotations

import time
from pathlib import Path

from ..config.model import Config
from ..lock.format import Lock


def apt_keys(known: dict, bases: tuple[str, ...]) -> list[str]:
    """The bases to resolve: those named, else every one, bootstrapped bases before those resolved on another."""
    return list(bases) or sorted(known, key=lambda k: (bool(known[k].resolve_on), k))


def apt_log_dir(config: Config) -> Path:
    return Path(config.path).resolve().parent / "logs" / "lock"


def report_written(lock_path: Path, lock: Lock, sets: int, started: float, label: str = "") -> None:
    print(f"wrote {lock_path}{label}: {len(lock.bases)} bases, {sum(len(b.packages) for b in lock.bases.values())} .debs, "
          f"{len(lock.pip)} pip sets ({sets} pip resolutions) in {time.monotonic() - started:.0f} s")
