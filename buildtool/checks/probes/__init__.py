"""Scripts that run inside the images (stdlib only). Read as text by the check modules."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def source(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")
