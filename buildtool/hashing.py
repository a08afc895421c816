"""Content hashing helpers."""

from __future__ import annotations

import hashlib


def short_hash(text: str | bytes, length: int = 16) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:length]
