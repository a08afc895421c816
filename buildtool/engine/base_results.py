"""What `buildtool bases` made: one record per base, the summary table, and .state/bases.json."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .progress import human_size


@dataclass
class BaseResult:
    base: str
    ref: str
    status: str = "failed"  # present | pulled | bootstrapped | failed
    seconds: float = 0.0
    size: int | None = None  # bytes, as the engine reports it
    image_id: str | None = None
    detail: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    manifest: tuple[str, ...] = ()
    drift: list[str] = field(default_factory=list)  # packages that differ from the lock's manifest

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d["manifest"] = len(self.manifest)
        d["seconds"] = round(self.seconds, 1)
        return d


def short_id(image_id: str | None) -> str:
    if not image_id:
        return "-"
    return image_id.split(":", 1)[-1][:12]


def render_table(results: Sequence[BaseResult]) -> str:
    cols = ("BASE", "STATUS", "SECONDS", "SIZE", "IMAGE ID", "LOCAL REF")
    rows = [(r.base, r.status, f"{r.seconds:.1f}", human_size(r.size), short_id(r.image_id), r.ref) for r in results]
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)



def save_state(path: Path, results: Sequence[BaseResult]) -> None:
    """Merge this run's bases into .state/bases.json (one entry per base key)."""
    state: dict[str, Any] = {}
    if path.exists():
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                state = loaded
    for r in results:
        entry = {"recipe": r.recipe, "local_ref": r.ref, "status": r.status, "detail": r.detail}
        if r.ok:
            entry.update({"image_id": r.image_id, "size": r.size, "seconds": round(r.seconds, 1)})
        elif isinstance(state.get(r.base), dict) and state[r.base].get("image_id"):
            entry["image_id"] = state[r.base]["image_id"]  # keep what was made before
        state[r.base] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
