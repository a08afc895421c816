"""The JSON layout buildtool writes (generated/*.json, images.lock): sorted keys, one line per entry. Pure."""

from __future__ import annotations

import json
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

_COMPACT_ENCODER = json.JSONEncoder(sort_keys=True, separators=(", ", ": "))  # no indent: the C encoder
# The C encoder made once (JSONEncoder.encode makes one per call, a third of the cost of a small record).
_C_ENCODE = None if c_make_encoder is None else c_make_encoder(
    None, _COMPACT_ENCODER.default, encode_basestring_ascii, None, ": ", ", ", True, False, True)


def _compact(o: Any) -> str:
    if _C_ENCODE is None or type(o) is str:
        return _COMPACT_ENCODER.encode(o)
    return "".join(_C_ENCODE(o, 0))


def to_json(data: Any, pretty_depth: int = 2) -> str:
    """JSON with sorted keys, one line per entry down to `pretty_depth` levels of nesting and compact below.

    With the default, every entry of a top-level collection (a node of plan.json, a bake target, a
    CI job) is one line: a changed node is a one-line diff, and the standard library's C encoder
    writes each line (its indenting encoder is pure Python and the slowest part of a large run).
    Raises TypeError for what JSON cannot hold (non-string keys, objects)."""
    return _pretty(data, "\n", pretty_depth) + "\n"


def _pretty(o: Any, nl: str, depth: int) -> str:
    if depth <= 0 or not o or type(o) not in (dict, list, tuple):
        return _compact(o)
    inner = nl + "  "
    # The last pretty level writes its entries compact directly (the 10,000-entry collections).
    value = _compact if depth == 1 else lambda v: _pretty(v, inner, depth - 1)
    if type(o) is dict:
        if not all(type(k) is str for k in o):
            raise TypeError("generated JSON has string keys only")
        key = encode_basestring_ascii  # what the encoder writes for a str (ensure_ascii)
        items = [inner + key(k) + ": " + value(o[k]) for k in sorted(o)]
    else:
        items = [inner + value(v) for v in o]
    return ("{" if type(o) is dict else "[") + ",".join(items) + nl + ("}" if type(o) is dict else "]")
