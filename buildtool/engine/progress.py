"""Terminal output of `buildtool build`: one line per state change, a live status line on a TTY, the summary table."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from .scheduler import BUILT, CACHED, FAILED, INTERRUPTED, RUNNING, SKIPPED, Event


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    if n >= 1_000_000_000:
        return f"{n / 1e9:.2f} GB"
    return f"{n / 1e6:.0f} MB"


def human_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m}m{sec:02d}s"


class Console:
    """Thread-safe progress printer. On a TTY a status line is redrawn under the event lines once a second."""

    def __init__(self, stream: TextIO | None = None, total: int = 0, live: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.total = total
        self.counts = {s: 0 for s in (RUNNING, BUILT, CACHED, FAILED, SKIPPED, INTERRUPTED)}
        self.running: dict[str, float] = {}
        self.t0 = time.monotonic()
        self._lock = threading.RLock()
        self._status_shown = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.t0 = time.monotonic()
        if self.live:
            self._ticker = threading.Thread(target=self._tick, name="build-status", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        with self._lock:
            self._clear_status()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._draw_status()

    # --- output ------------------------------------------------------------------------------

    def line(self, text: str) -> None:
        with self._lock:
            self._clear_status()
            self.stream.write(text + "\n")
            self._draw_status()
            self.stream.flush()

    def event(self, e: Event, log: str | None = None) -> None:
        with self._lock:
            if e.kind == "start":
                self.counts[RUNNING] += 1
                self.running[e.node] = time.monotonic()
                self.line(f"[{e.index}/{e.total}] building {e.node} ...")
                return
            if e.kind in (BUILT, FAILED, INTERRUPTED):
                self.counts[RUNNING] -= 1
                self.running.pop(e.node, None)
            self.counts[e.kind] += 1
            if e.kind == BUILT:
                self.line(f"[{e.index}/{e.total}] {e.node}: done in {human_seconds(e.seconds)}")
            elif e.kind == CACHED:
                self.line(f"[{e.index}/{e.total}] {e.node}: cached ({e.detail})")
            elif e.kind == FAILED:
                self.line(f"[{e.index}/{e.total}] {e.node}: FAILED after {human_seconds(e.seconds)}"
                          + (f" (see {log})" if log else f" ({e.detail})"))
            elif e.kind == INTERRUPTED:
                self.line(f"[{e.index}/{e.total}] {e.node}: interrupted after {human_seconds(e.seconds)}")
            elif e.kind == SKIPPED:
                self.line(f"      {e.node}: skipped ({e.detail})")

    def status_text(self) -> str:
        c = self.counts
        done = c[BUILT] + c[CACHED]
        text = (f"-- {human_seconds(time.monotonic() - self.t0)} elapsed: running {c[RUNNING]}, done {done}/{self.total} "
                f"(built {c[BUILT]}, cached {c[CACHED]}), failed {c[FAILED]}, skipped {c[SKIPPED]}")
        if self.running:
            now = time.monotonic()
            text += " | " + ", ".join(f"{n} {human_seconds(now - t)}" for n, t in self.running.items())
        return text

    def _draw_status(self) -> None:
        if not self.live or self._stop.is_set():
            return
        width = shutil.get_terminal_size((120, 20)).columns - 1
        self.stream.write("\r\x1b[2K" + self.status_text()[:width])
        self.stream.flush()
        self._status_shown = True

    def _clear_status(self) -> None:
        if self._status_shown:
            self.stream.write("\r\x1b[2K")
            self._status_shown = False


def summary_table(rows: Sequence[dict[str, Any]]) -> str:
    cols = ("NODE", "STATUS", "SECONDS", "SIZE", "LOG")
    table = [(r["node"], r["status"] + (f" ({r['detail']})" if r["status"] in (SKIPPED, "pending") and r.get("detail") else ""),
              f"{r['seconds']:.1f}" if r["status"] in (BUILT, FAILED, INTERRUPTED) else "-", human_size(r.get("size")), r.get("log") or "-")
             for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) if table else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip() for t in table]
    return "\n".join(lines)
