"""One `uv pip compile` of a pip set: its argv and environment (credentials never in argv), and the pins read from its pylock.toml."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from ..lock.format import PipPin, PipRequest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

UV_TIMEOUT_S = 900
UV_KEEP = frozenset({"UV_CACHE_DIR", "UV_SYSTEM_CERTS", "UV_NATIVE_TLS", "UV_HTTP_TIMEOUT", "UV_CONCURRENT_DOWNLOADS"})

# Wheels must run on the oldest glibc among the bases (bullseye and focal: 2.31). One wheel
# then serves every base, and at build time the installer's hash filter picks exactly that wheel.
GLIBC_MAX_MINOR = 31
UV_PLATFORM = f"x86_64-manylinux_2_{GLIBC_MAX_MINOR}"  # uv accepts manylinux_2_31 down to manylinux1 for it
# Each platform's wheel machine: a pip set is resolved per platform (the lock keeps one wheel's sha256 per pin,
# and a platform may need other dependencies), the other platforms preferring linux/amd64's versions.
MACHINES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


def uv_platform(machine: str) -> str:
    return f"{machine}-manylinux_2_{GLIBC_MAX_MINOR}"


def wheel_platforms(machine: str) -> tuple[str, ...]:
    """The platforms as wheel tags, best first: which of uv's acceptable wheels installs (supported_tags())."""
    legacy = ("manylinux2014", "manylinux2010", "manylinux1") if machine == "x86_64" else ("manylinux2014",)
    return tuple(f"manylinux_2_{m}_{machine}" for m in range(GLIBC_MAX_MINOR, 4, -1)) + tuple(f"{t}_{machine}" for t in legacy) + (
        f"linux_{machine}",)


PLATFORMS = wheel_platforms("x86_64")


class ResolveError(Exception):
    """One resolution failed; the message is printed as is."""


@dataclass(frozen=True)
class UvJob:
    """One `uv pip compile`: the request, the set's previous pins as preferences (kept where they still fit)
    and the packages that are to move even so (`--upgrade-package`)."""

    request: PipRequest
    preferences: tuple[str, ...] = ()  # name==version
    upgrade_packages: tuple[str, ...] = ()


def new_pins(pins: tuple[PipPin, ...], constraints: tuple[str, ...]) -> tuple[PipPin, ...]:
    """Drop what an ancestor already installs at the same version: the node must not reinstall it."""
    inherited = {tuple(c.split("==", 1)) for c in constraints}
    return tuple(p for p in pins if (p.name, p.version) not in inherited)


@functools.cache
def supported_tags(line: str, machine: str = "x86_64") -> dict[Tag, int]:
    """Wheel tags a CPython of `line` on glibc 2.31 x86_64 accepts, best first (the order pip ranks them in)."""
    version = tuple(int(x) for x in line.split("."))
    platforms = wheel_platforms(machine)
    tags = list(cpython_tags(version, platforms=platforms)) + list(compatible_tags(version, f"cp{version[0]}{version[1]}", platforms))
    return {tag: rank for rank, tag in reversed(list(enumerate(tags)))}


def best_wheel(name: str, wheels: list[dict[str, Any]], line: str, machine: str = "x86_64") -> dict[str, Any]:
    """The wheel pip (or uv) installs for cp<line> on manylinux_2_31 x86_64: its best-ranked tag wins."""
    ranks = supported_tags(line, machine)
    best: tuple[int, dict[str, Any]] | None = None
    for wheel in wheels:
        filename = str(wheel.get("name") or unquote(str(wheel.get("url") or wheel.get("path") or "").rsplit("/", 1)[-1]))
        try:
            _, _, _, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            continue
        rank = min((ranks[t] for t in tags if t in ranks), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, wheel)
    if best is None:
        raise ResolveError(f"uv locked {name} but none of its wheels runs on CPython {line}, manylinux_2_{GLIBC_MAX_MINOR} {machine}")
    return best[1]


def pins_from_pylock(text: str, line: str, machine: str = "x86_64") -> tuple[PipPin, ...]:
    """name (canonical), version and the sha256 of the one wheel that installs, from uv's pylock.toml."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ResolveError(f"unreadable pylock.toml from uv: {exc}") from None
    pins = []
    for package in data.get("packages", []):
        name = str(canonicalize_name(package["name"]))
        wheels = package.get("wheels") or []
        if not wheels:
            raise ResolveError(f"uv locked {name} {package.get('version', '')} without a wheel (only binary wheels are allowed)")
        sha = best_wheel(name, wheels, line, machine).get("hashes", {}).get("sha256")
        if not sha:
            raise ResolveError(f"uv's lock gives no sha256 for the {name} wheel")
        pins.append(PipPin(name, str(package["version"]), sha))
    return tuple(sorted(pins, key=lambda p: p.name))


def pylock_preferences(preferences: tuple[str, ...]) -> str:
    """A minimal pylock.toml naming the previous pins: uv reads an existing output file as preferences."""
    out = ['lock-version = "1.0"', 'created-by = "buildtool"']
    for pin in preferences:
        name, version = pin.split("==", 1)
        out += ["", "[[packages]]", f"name = {json.dumps(name)}", f"version = {json.dumps(version)}"]
    return "\n".join(out) + "\n"


def uv_command(uv: str, job: UvJob, work: Path) -> list[str]:
    """`uv pip compile` of one set. No index URL in argv (it may hold credentials): see uv_environment()."""
    cmd = [uv, "pip", "compile", "--no-config", "--no-progress", "--color", "never", "--no-python-downloads",
           "--format", "pylock.toml", "-o", str(work / "pylock.toml"), "--generate-hashes", "--no-header", "--no-annotate",
           "--python", sys.executable, "--python-version", job.request.python, "--python-platform", uv_platform(job.request.machine),
           "--only-binary", ":all:", "-c", str(work / "constraints.txt")]
    for name in job.upgrade_packages:
        cmd += ["--upgrade-package", name]
    return cmd + [str(work / "requirements.in")]


SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def uv_environment(index: str, ca_bundle: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """uv's environment: the index (credentials stay out of argv and ps), the CA bundle, nothing of the host's uv config.

    `ca_bundle` is a file uv trusts instead of its built-in roots (see combined_bundle())."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("UV_") or k in UV_KEEP}
    env["UV_DEFAULT_INDEX"] = index
    if ca_bundle:
        env["SSL_CERT_FILE"] = ca_bundle
    elif not env.get("SSL_CERT_FILE"):  # a TLS-intercepting proxy's CA is in the platform store, not in uv's built-in roots
        env["UV_SYSTEM_CERTS"] = "1"
    return env


def combined_bundle(site_bundle: str | None, work: Path, base: dict[str, str] | None = None) -> str | None:
    """The site's CA bundle is an *extra* one (its mirror's or proxy's CA): uv reads SSL_CERT_FILE instead of its
    own roots, so it gets the host's bundle (SSL_CERT_FILE, else the system one) followed by the site's."""
    if not site_bundle:
        return None
    env = os.environ if base is None else base
    host = env.get("SSL_CERT_FILE") or (SYSTEM_BUNDLE if os.path.isfile(SYSTEM_BUNDLE) else "")
    parts = [Path(f).read_text(encoding="utf-8", errors="replace") for f in (host, site_bundle) if f and os.path.isfile(f)]
    out = work / "ca-bundle.pem"
    out.write_text("\n".join(part.rstrip("\n") for part in parts) + "\n", encoding="utf-8")
    return str(out)


def redact(text: str, index: str) -> str:
    """`text` without the index URL's user:password."""
    parts = urlsplit(index)
    if parts.username or parts.password:
        text = text.replace(parts.netloc.rsplit("@", 1)[0] + "@", "***@")  # user:password@ wherever it appears
        if parts.password:
            text = text.replace(parts.password, "***")
    return text


def uv_reason(output: str) -> str:
    """The lines of uv's output that say why (its error and cause lines), at most 12."""
    lines = [ln.rstrip() for ln in output.splitlines() if ln.strip() and not ln.startswith(("Resolved ", "warning: "))]
    return "\n    ".join(lines[-12:])


def culprits(requires: tuple[str, ...], reason: str) -> tuple[str, ...]:
    """The requirements uv's reason names (all of them when it names none)."""
    said = {str(canonicalize_name(w)) for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", reason)}
    named = tuple(r for r in requires if str(canonicalize_name(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0])) in said)
    return named or requires


_FIND_UV = threading.Lock()


@functools.cache
def _uv_bin() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        raise ResolveError("uv is not installed (it is a dependency of buildtool: pip install -e .)") from None
    return find_uv_bin()


def find_uv() -> str:
    """The uv binary of the `uv` package. Found once, under a lock: find_uv_bin() reads sysconfig, whose lazy
    first initialisation is not thread-safe (a second thread saw EXE=None mid-initialisation)."""
    with _FIND_UV:
        return _uv_bin()


def run_uv(job: UvJob, index: str, ca_bundle: str | None = None) -> tuple[PipPin, ...]:
    request = job.request
    with tempfile.TemporaryDirectory(prefix="buildtool-lock-") as tmp:
        work = Path(tmp)
        (work / "requirements.in").write_text("".join(r + "\n" for r in request.requires), encoding="utf-8")
        (work / "constraints.txt").write_text("".join(c + "\n" for c in request.constraints), encoding="utf-8")
        if job.preferences:
            (work / "pylock.toml").write_text(pylock_preferences(job.preferences), encoding="utf-8")
        try:
            done = subprocess.run(uv_command(find_uv(), job, work), capture_output=True, text=True, timeout=UV_TIMEOUT_S,
                                  env=uv_environment(index, combined_bundle(ca_bundle, work)))
        except subprocess.TimeoutExpired:
            raise ResolveError(f"uv took longer than {UV_TIMEOUT_S} s") from None
        if done.returncode != 0:
            raise ResolveError(redact(uv_reason(done.stderr + done.stdout), index) or f"uv exited {done.returncode}")
        pins = pins_from_pylock((work / "pylock.toml").read_text(encoding="utf-8"), request.python, request.machine)
    return new_pins(pins, request.constraints)
