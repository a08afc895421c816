"""The scoring protocol: AzureML's request body, what a reply must be, and how served outputs are compared."""

from __future__ import annotations

import json
from typing import Any

from ..checks.onnxruntime import outputs_match

ATOL = 1e-4


def request_body(rows: list[list[float]]) -> bytes:
    """AzureML's request shape: {"data": [[...], ...]}."""
    return json.dumps({"data": rows}, separators=(",", ":")).encode("utf-8")


class ServingError(Exception):
    """The server's reply is not a prediction (an HTTP error, not JSON, a wrong shape)."""


def parse_response(status: int, body: bytes | str) -> dict[str, Any]:
    """The reply of POST /score as {"predictions": [[float]], ...}; ServingError otherwise.

    Accepts run() returning {"predictions": ...} (score.py) or a bare list of rows."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        raise ServingError(f"HTTP {status}, not JSON: {text[:200]!r}") from None
    if status != 200:
        detail = data.get("error") if isinstance(data, dict) else data
        raise ServingError(f"HTTP {status}: {str(detail)[:300]}")
    if isinstance(data, list):
        data = {"predictions": data}
    preds = data.get("predictions") if isinstance(data, dict) else None
    ok = isinstance(preds, list) and all(isinstance(r, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)
                                         for r in preds)
    if not ok:
        raise ServingError(f"no list of number rows under 'predictions': {text[:200]!r}")
    return {**data, "predictions": [[float(v) for v in r] for r in preds]}


def compare_outputs(got: list[list[float]], want: list[list[float]], atol: float = ATOL) -> list[str]:
    """What differs between served and expected outputs (empty when every value is within atol): the image check's rule."""
    return outputs_match(got, want, rtol=0.0, atol=atol)


def assert_outputs(got: list[list[float]], want: list[list[float]], atol: float = ATOL) -> None:
    """AssertionError naming every value off by more than atol."""
    problems = compare_outputs(got, want, atol)
    if problems:
        raise AssertionError("served outputs differ from the expected ones: " + "; ".join(problems))
