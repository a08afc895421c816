"""Outcomes of one verify run and their renderings: the terminal table (image x family), the
Markdown report and the JSON summary. Pure: built from the per-image results files that
tests/images/conftest.py writes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import FAMILY_ORDER

PASSED, FAILED, NOT_RUN = "passed", "failed", "not-run"
CELL = {PASSED: "pass", FAILED: "FAIL", NOT_RUN: "not run"}
TARGET_SECONDS = 5.0


@dataclass
class CheckOutcome:
    check: str
    family: str
    status: str
    message: str = ""
    node: str = ""
    tier: str = "cpu"
    seconds: float = 0.0


@dataclass
class ImageOutcome:
    image: str
    tag: str
    checks: list[CheckOutcome] = field(default_factory=list)
    checking_seconds: float | None = None  # from the container's start to the last check's end
    start_seconds: float | None = None  # `docker run -d`
    error: str = ""  # the image could not be checked at all (not built, pytest crashed, ...)
    log: str = ""

    @property
    def failed(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.status == FAILED]

    @property
    def not_run(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.status == NOT_RUN]

    @property
    def ok(self) -> bool:
        return not self.error and not self.failed and bool(self.checks)

    def family_status(self, family: str) -> str | None:
        """FAILED if any check of the family failed; NOT_RUN if none ran; PASSED if all that ran passed."""
        statuses = [c.status for c in self.checks if c.family == family]
        if not statuses:
            return None
        if FAILED in statuses:
            return FAILED
        if all(s == NOT_RUN for s in statuses):
            return NOT_RUN
        return PASSED

    def cell(self, family: str) -> str:
        status = self.family_status(family)
        if status is None:
            return "-"
        text = CELL[status]
        skipped = sum(1 for c in self.checks if c.family == family and c.status == NOT_RUN)
        if status == PASSED and skipped:
            text += f" ({skipped} not run)"
        return text


@dataclass
class RunSummary:
    run: str
    images: list[ImageOutcome]
    gpu: bool = False
    gpu_reason: str = ""
    reports: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.images) and all(i.ok for i in self.images)

    def families(self) -> list[str]:
        present = {c.family for i in self.images for c in i.checks}
        return [f for f in FAMILY_ORDER if f in present] + sorted(present - set(FAMILY_ORDER))

    def counts(self) -> dict[str, int]:
        out = {PASSED: 0, FAILED: 0, NOT_RUN: 0}
        for image in self.images:
            for c in image.checks:
                out[c.status] = out.get(c.status, 0) + 1
        return out


def outcome_from_results(image: str, tag: str, data: dict[str, Any] | None, log_tail: str = "") -> ImageOutcome:
    """An ImageOutcome from a results file (None: the pytest process wrote none)."""
    if data is None:
        return ImageOutcome(image, tag, error="the check session wrote no results (see its log)", log=log_tail)
    checks = [CheckOutcome(c["check"], c["family"], c["status"], c.get("message", ""), c.get("node", ""), c.get("tier", "cpu"),
                           float(c.get("seconds", 0.0)))
              for c in data.get("checks", []) if c.get("image") == image]
    info = data.get("images", {}).get(image, {})
    out = ImageOutcome(image, tag, checks, info.get("checking_seconds"), info.get("container_start_seconds"), info.get("error", ""), log_tail)
    if not checks and not out.error:
        out.error = "no check ran (see its log)"
    return out


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table_rows(summary: RunSummary) -> tuple[list[str], list[list[str]]]:
    families = summary.families()
    header = ["IMAGE", *[f.upper() for f in families], "SECONDS", "RESULT"]
    rows = []
    for image in summary.images:
        result = "ok" if image.ok else ("ERROR" if image.error else "FAILED")
        rows.append([image.image, *[image.cell(f) for f in families], _seconds(image.checking_seconds), result])
    return header, rows


def render_table(summary: RunSummary) -> str:
    header, rows = table_rows(summary)
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    counts = summary.counts()
    lines.append("")
    lines.append(f"{len(summary.images)} images: {counts[PASSED]} checks passed, {counts[FAILED]} failed, {counts[NOT_RUN]} not run"
                 + ("" if summary.gpu else f" (GPU tier: {summary.gpu_reason})"))
    for image in summary.images:
        if image.error:
            lines.append(f"ERROR {image.image}: {image.error}")
        for c in image.failed:
            lines.append(f"FAIL  {image.image} {c.check}: {c.message}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: RunSummary) -> str:
    header, rows = table_rows(summary)
    counts = summary.counts()
    out = [f"# Verify run {summary.run}", ""]
    out.append(f"- Result: **{'passed' if summary.ok else 'failed'}** — {len(summary.images)} images, "
               f"{counts[PASSED]} checks passed, {counts[FAILED]} failed, {counts[NOT_RUN]} not run")
    ran = "run (containers start with the device kinds' docker run flags)"
    out.append(f"- GPU tier: {ran if summary.gpu else 'not run — ' + summary.gpu_reason}")
    out.append(f"- Target: under {TARGET_SECONDS:.0f} s of checking per image after its container starts")
    out += ["", "| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_md(c) for c in r) + " |" for r in rows]
    for image in summary.images:
        out += ["", f"## {image.image}", "", f"- Tag: `{image.tag}`"]
        if image.checking_seconds is not None:
            over = "" if image.checking_seconds <= TARGET_SECONDS else " (over target)"
            out.append(f"- Checking: {image.checking_seconds:.2f} s after the container started{over}"
                       + (f" (docker run -d: {image.start_seconds:.2f} s)" if image.start_seconds is not None else ""))
        if image.error:
            out.append(f"- **Error:** {_md(image.error)}")
        if image.checks:
            out += ["", "| Check | Result | Node | Detail |", "|---|---|---|---|"]
            for c in image.checks:
                out.append(f"| {c.check} | {CELL[c.status]} | {c.node} | {_md(c.message)} |")
        if image.log and not image.ok:
            out += ["", "<details><summary>log tail</summary>", "", "```", image.log.rstrip(), "```", "", "</details>"]
    return "\n".join(out) + "\n"


def summary_json(summary: RunSummary) -> dict[str, Any]:
    families = summary.families()
    return {
        "run": summary.run,
        "ok": summary.ok,
        "reports": summary.reports,
        "gpu": {"run": summary.gpu, "reason": summary.gpu_reason},
        "counts": summary.counts(),
        "images": [
            {
                "image": i.image,
                "tag": i.tag,
                "ok": i.ok,
                "error": i.error,
                "checking_seconds": i.checking_seconds,
                "container_start_seconds": i.start_seconds,
                "families": {f: i.family_status(f) for f in families if i.family_status(f)},
                "checks": [asdict(c) for c in i.checks],
            }
            for i in summary.images
        ],
    }
