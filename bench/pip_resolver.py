"""The pip resolver `buildtool lock` used before uv (kept here only as the baseline of bench_lock.py).

`pip install --dry-run --report` with binary wheels only, for the set's Python line (an interpreter
of that line when one is found: pip evaluates markers with the interpreter it runs on) and the
manylinux platforms glibc 2.31 runs, constrained by the ancestors' pins; the report's sha256 of
each distribution pip would install is the pin.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from buildtool.lock.format import PipPin, PipRequest
from buildtool.resolve.uv import PLATFORMS, ResolveError, new_pins

PIP_TIMEOUT_S = 900


def pins_from_report(report: dict[str, Any]) -> tuple[PipPin, ...]:
    """name (canonical), version and wheel sha256 of each distribution pip would install."""
    pins = []
    for item in report.get("install", []):
        name = canonicalize_name(item["metadata"]["name"])
        archive = item.get("download_info", {}).get("archive_info", {})
        sha = archive.get("hashes", {}).get("sha256")
        if sha is None and str(archive.get("hash", "")).startswith("sha256="):
            sha = archive["hash"].split("=", 1)[1]
        if not sha:
            raise ResolveError(f"pip's report gives no sha256 for {name}")
        pins.append(PipPin(str(name), item["metadata"]["version"], sha))
    return tuple(sorted(pins, key=lambda p: p.name))


@functools.cache
def interpreter(line: str) -> tuple[str, bool]:
    """A python of this line (pip evaluates markers with the interpreter it runs on), else ours."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == line:
        return sys.executable, True
    found = [shutil.which(f"python{line}") or ""]
    for root in (os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")):
        found += sorted(glob.glob(f"{root}/versions/{line}.*/bin/python")) if root else []
    for exe in found:
        if exe and _runs_line(exe, line):
            return exe, True
    return sys.executable, False


def _runs_line(exe: str, line: str) -> bool:
    """True if `exe` is Python `line` with a pip that writes --report (22.2 or later)."""
    probe = "import sys, pip; print('%d.%d' % sys.version_info[:2]); print(pip.__version__)"
    try:
        out = subprocess.run([exe, "-c", probe], capture_output=True, text=True, timeout=30)
        python, pip = out.stdout.split()
        return out.returncode == 0 and python == line and Version(pip) >= Version("22.2")
    except (OSError, subprocess.TimeoutExpired, ValueError, InvalidVersion):
        return False


def pip_command(exe: str, request: PipRequest, report: Path, target: Path, constraints: Path, index: str) -> list[str]:
    # --isolated: the host's pip config (local wheel dirs, constraint caps) must not leak into the lock.
    cmd = [exe, "-m", "pip", "--isolated", "--disable-pip-version-check", "install", "--dry-run", "--ignore-installed", "--quiet",
           "--report", str(report), "--only-binary=:all:", "--implementation", "cp", "--python-version", request.python,
           "--target", str(target), "--index-url", index, "-c", str(constraints)]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    cert = next((os.environ[v] for v in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE") if os.environ.get(v)), None)
    if cert:  # --isolated drops pip.conf, which may hold the CA bundle of a TLS-intercepting proxy
        cmd += ["--cert", cert]
    return cmd + list(request.requires)


def run_pip(request: PipRequest, index: str, env: dict[str, str] | None = None) -> tuple[PipPin, ...]:
    exe, exact = interpreter(request.python)
    if not exact:
        print(f"warning: no Python {request.python} here; pip evaluates markers for {sys.version_info[0]}.{sys.version_info[1]}")
    with tempfile.TemporaryDirectory(prefix="buildtool-lock-") as tmp:
        work = Path(tmp)
        (work / "constraints.txt").write_text("".join(c + "\n" for c in request.constraints), encoding="utf-8")
        cmd = pip_command(exe, request, work / "report.json", work / "target", work / "constraints.txt", index)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, env=env)
        except subprocess.TimeoutExpired:
            raise ResolveError(f"pip took longer than {PIP_TIMEOUT_S} s") from None
        if done.returncode != 0:
            tail = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()][-6:]
            raise ResolveError("\n    ".join(tail) or f"pip exited {done.returncode}")
        try:
            pins = pins_from_report(json.loads((work / "report.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a pip whose report we cannot read
            raise ResolveError(f"unreadable pip report: {exc!r}") from None
    return new_pins(pins, request.constraints)


