"""The serving smoke's results: one record per image and the table printed after a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    image: str
    passed: bool
    seconds_to_healthy: float | None = None
    response: Any = None  # the parsed reply of POST /score (or its raw text when it did not parse)
    error: str | None = None
    tag: str = ""
    backend: str = ""
    provider: str = ""
    network: str = ""
    uid: int | None = None
    seconds: float = 0.0  # build + run + checks + cleanup
    serving_tag: str = ""
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("image", "passed", "seconds_to_healthy", "response", "error", "tag", "backend", "provider",
                                              "network", "uid", "seconds", "serving_tag")}


def _fmt_reply(result: Result) -> str:
    if result.error:
        return result.error.splitlines()[0][:110]
    preds = (result.response or {}).get("predictions") if isinstance(result.response, dict) else None
    if not preds:
        return "-"
    return " | ".join(", ".join(f"{v:.4f}" for v in row) for row in preds)


def render_table(results: list[Result]) -> str:
    head = ["IMAGE", "MODEL ON", "NET", "HEALTHY", "RESULT", "REPLY (predictions) / ERROR"]
    rows = [[r.image, r.provider if r.backend == "onnxruntime" else "python (linear.json)", r.network or "-",
             "-" if r.seconds_to_healthy is None else f"{r.seconds_to_healthy:.1f} s", "pass" if r.passed else "FAIL", _fmt_reply(r)]
            for r in results]
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    passed = sum(r.passed for r in results)
    lines.append(f"{passed}/{len(results)} serving images answered POST /score with the expected outputs")
    return "\n".join(lines)
