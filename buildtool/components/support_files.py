"""Where the Jinja2 templates and the support files copied into images live."""

from __future__ import annotations

from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


def read_support_file(name: str) -> str:
    return (TEMPLATES_DIR / "files" / name).read_text(encoding="utf-8")
