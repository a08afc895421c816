"""Run folders and log tails: one run-id scheme for build logs and verify reports, one way to quote a log's end."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path


def new_run_folder(root: Path, now: _dt.datetime | None = None) -> tuple[str, Path]:
    """Create and claim `<root>/<run id>`; the id is a UTC stamp (sorts by time), `-N` added when two runs share a second.
    mkdir is the claim, so two processes starting at once never share a folder."""
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    root.mkdir(parents=True, exist_ok=True)
    run_id, n = stamp, 1
    while True:
        try:
            (root / run_id).mkdir()
            return run_id, root / run_id
        except FileExistsError:
            n += 1
            run_id = f"{stamp}-{n}"


def tail_lines(path: Path, n: int = 12) -> list[str]:
    """The last `n` non-blank lines of a log (none when it cannot be read)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if line.strip()][-n:]
