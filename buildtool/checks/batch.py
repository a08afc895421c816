"""Run many probes in one `docker exec`: a bash runner that starts them in parallel inside the
container and prints each one's exit code, seconds, stdout and stderr (base64) behind a marker.

Pure: `runner_script` builds the script, `parse_output` reads it back. The executor
(tests/images/conftest.py) sends the script through testinfra's docker:// backend.
"""

from __future__ import annotations

import base64
import binascii
import shlex
from collections.abc import Sequence

from .base import Probe, Result

MARKER = "@@buildtool-probe"
RUNNER_FAILED = 97


def runner_script(probes: Sequence[Probe]) -> str:
    lines = [
        "set -u",
        f"d=$(mktemp -d /tmp/buildtool-verify.XXXXXX) || exit {RUNNER_FAILED}",
        "probe() {",
        '  local i=$1 t=$2 start=$EPOCHREALTIME',
        '  timeout -k 5 "$t" bash -c "$3" >"$d/$i.out" 2>"$d/$i.err" </dev/null',
        '  echo "$? $start $EPOCHREALTIME" >"$d/$i.rc"',
        "}",
    ]
    for i, p in enumerate(probes):
        lines.append(f"probe {i} {int(p.timeout)} {shlex.quote(p.command)} &")
    lines.append("wait")
    lines.append(f"for i in $(seq 0 {len(probes) - 1}); do")
    lines.append(f'  printf "{MARKER} %s %s\\n" "$i" "$(cat "$d/$i.rc" 2>/dev/null || echo 98 0 0)"')
    lines.append('  base64 -w0 <"$d/$i.out" 2>/dev/null; echo')
    lines.append('  base64 -w0 <"$d/$i.err" 2>/dev/null; echo')
    lines.append("done")
    lines.append('rm -rf "$d"')
    return "\n".join(lines) + "\n" if probes else "true\n"


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text.strip(), validate=False).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""


def parse_output(probes: Sequence[Probe], stdout: str) -> dict[str, Result]:
    """Results by probe key; probes the output does not mention are missing (the caller reports it)."""
    lines = stdout.splitlines()
    out: dict[str, Result] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith(MARKER + " "):
            i += 1
            continue
        fields = line.split()
        try:
            index, rc = int(fields[1]), int(fields[2])
            seconds = max(0.0, _num(fields[4]) - _num(fields[3])) if len(fields) >= 5 else 0.0
        except (IndexError, ValueError):
            i += 1
            continue
        body = lines[i + 1] if i + 1 < len(lines) else ""
        err = lines[i + 2] if i + 2 < len(lines) else ""
        if 0 <= index < len(probes):
            out[probes[index].key] = Result(rc, _b64(body), _b64(err), round(seconds, 3))
        i += 3
    return out


def dedupe(probes: Sequence[Probe]) -> list[Probe]:
    """One probe per key (checks that ask for the same key share its run); order kept."""
    seen: dict[str, Probe] = {}
    for p in probes:
        seen.setdefault(p.key, p)
    return list(seen.values())


def _num(text: str) -> float:
    return float(text.replace(",", "."))  # $EPOCHREALTIME follows the locale's decimal point
