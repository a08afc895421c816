"""`buildtool lock`: resolve images.yaml's apt names and pip requirements into images.lock.

The one stage that touches the network besides build/publish; generate only reads its output.

apt, Debian bases (those with a `bootstrap` recipe): a name is pinned to the version that
`apt-get install` picks in the bootstrapped base, i.e. the highest version (dpkg ordering) in
`{mirror}/dists/{suite}/{component}/binary-amd64/Packages.xz` for the recipe's components
(default: main). Only the plain `{suite}` is read, never `{suite}-updates` or
`{suite}-security`: debootstrap's sources.list lists `{suite}` alone, so a version from
another pocket would be one that apt in the image cannot find.

apt, Ubuntu bases (no recipe; their archive is unreachable from the build hosts): pins already
in the lock are kept; missing ones come from SEED below, and the base's source says so.

pip: each DAG node whose flavor has requirements is resolved by pip (dry run, binary wheels
only, PyPI) for the node's Python line, constrained to what its ancestors already pinned, so
a child never moves a parent's package. Parents resolve before children, level by level.

Nothing is written unless everything resolved: a half-resolved lock never lands.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .components import SYSTEM, flavor
from .expand import expand
from .lock import Lock, PipPin, PipSet, dump_lock, load_lock
from .model import Base, Config
from .plan import Dag, Node, build_dag
from .render import ancestor_pins, pip_set_id, python_line
from .writer import write_file_atomically

HTTP_TIMEOUT_S = 120
PIP_TIMEOUT_S = 900
PYPI = "https://pypi.org/simple"

# Wheels must run on the oldest glibc among the bases (bullseye and focal: 2.31). One wheel
# then serves every base, and at build time pip's hash filter picks exactly that wheel.
GLIBC_MAX_MINOR = 31
PLATFORMS = tuple(f"manylinux_2_{m}_x86_64" for m in range(GLIBC_MAX_MINOR, 4, -1)) + (
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64")

# Ubuntu pins used when the lock has none: best knowledge of each release's newest version
# (release, -updates or -security pocket, as an Ubuntu image's default sources list all three).
# Not verified from these hosts; re-resolve where archive.ubuntu.com is reachable.
SEED: dict[str, dict[str, str]] = {
    "focal": {
        "ca-certificates": "20240203~20.04.1",
        "curl": "7.68.0-1ubuntu2.25",
        "fuse3": "3.9.0-2",
        "libfuse3-3": "3.9.0-2",
        "libfuse2": "2.9.9-3",
        "python3": "3.8.2-0ubuntu2",
        "python3-venv": "3.8.2-0ubuntu2",
        "openmpi-bin": "4.0.3-0ubuntu1",
        "libopenmpi-dev": "4.0.3-0ubuntu1",
        "mpich": "3.3.2-2build1",
        "libmpich-dev": "3.3.2-2build1",
    },
    "jammy": {
        "ca-certificates": "20240203~22.04.1",
        "curl": "7.81.0-1ubuntu1.20",
        "fuse3": "3.10.5-1build1",
        "libfuse3-3": "3.10.5-1build1",
        "libfuse2": "2.9.9-5ubuntu3",
        "python3": "3.10.6-1~22.04.1",
        "python3-venv": "3.10.6-1~22.04.1",
        "openmpi-bin": "4.1.2-2ubuntu1",
        "libopenmpi-dev": "4.1.2-2ubuntu1",
        "mpich": "4.0-3",
        "libmpich-dev": "4.0-3",
    },
    "noble": {
        "ca-certificates": "20240203",
        "curl": "8.5.0-2ubuntu10.6",
        "fuse3": "3.14.0-5build1",
        "libfuse3-3": "3.14.0-5build1",
        "libfuse2t64": "2.9.9-8.1build1",
        "python3": "3.12.3-0ubuntu2",
        "python3-venv": "3.12.3-0ubuntu2",
        "openmpi-bin": "4.1.6-7ubuntu2",
        "libopenmpi-dev": "4.1.6-7ubuntu2",
        "mpich": "4.2.0-5build3",
        "libmpich-dev": "4.2.0-5build3",
    },
}


class ResolveError(Exception):
    """One resolution failed; the message is printed as is."""


# --- Debian version ordering (dpkg's verrevcmp) -------------------------------------------


def _order(c: str) -> int:
    """dpkg's character weight: '~' sorts before everything, even the end of the string."""
    if c.isdigit():
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        start_i, start_j = i, j
        while i < len(a) and a[i].isdigit():
            i += 1
        while j < len(b) and b[j].isdigit():
            j += 1
        na, nb = int(a[start_i:i] or "0"), int(b[start_j:j] or "0")
        if na != nb:
            return -1 if na < nb else 1
    return 0


def _split_version(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch), upstream, revision


def compare_debian_versions(a: str, b: str) -> int:
    """<0, 0, >0 as a sorts before, with, after b in dpkg's ordering."""
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


# --- apt: Packages indices ----------------------------------------------------------------


def iter_packages(text: str) -> Iterator[tuple[str, str]]:
    """(Package, Version) of each stanza of a Packages index; other fields are skipped."""
    name = version = ""
    for line in text.splitlines() + [""]:
        if not line.strip():
            if name and version:
                yield name, version
            name = version = ""
        elif line.startswith("Package:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("Version:"):
            version = line.split(":", 1)[1].strip()


def candidates(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Package -> its highest version, as apt's candidate among sources of equal priority."""
    best: dict[str, str] = {}
    for name, version in pairs:
        if name not in best or compare_debian_versions(version, best[name]) > 0:
            best[name] = version
    return best


def choose_versions(wanted: Iterable[str], available: dict[str, str], where: str) -> dict[str, str]:
    missing = sorted(n for n in wanted if n not in available)
    if missing:
        raise ResolveError(f"{where}: no package named {', '.join(missing)}")
    return {n: available[n] for n in sorted(set(wanted))}


def _fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise ResolveError(f"could not download {url}: {getattr(exc, 'reason', exc)}") from None


def apt_names(config: Config, base: Base) -> tuple[str, ...]:
    """Every apt name a layer on this base can ask for: the system layer and every flavor."""
    names = set(SYSTEM.apt_packages(None, base))  # type: ignore[arg-type]
    for entries in config.components.values():
        for component in entries.values():
            names.update(flavor(component.flavor).apt_packages(component, base))
    return tuple(sorted(names))


def resolve_debian(config: Config, base: Base) -> tuple[dict[str, str], str]:
    boot = base.bootstrap
    assert boot is not None
    mirror = (config.site.apt_mirror or boot.mirror).rstrip("/")  # a site mirror is a faithful copy
    pairs: list[tuple[str, str]] = []
    digests = []
    for component in boot.components:
        raw = _fetch(f"{mirror}/dists/{boot.suite}/{component}/binary-amd64/Packages.xz")
        prefix = f"{component} " if len(boot.components) > 1 else ""
        digests.append(f"{prefix}Packages.xz sha256 {hashlib.sha256(raw).hexdigest()[:12]}")
        pairs.extend(iter_packages(lzma.decompress(raw).decode("utf-8", errors="replace")))
    pins = choose_versions(apt_names(config, base), candidates(pairs), f"{base.key} ({boot.suite})")
    return pins, f"{boot.mirror} {boot.suite} {' '.join(boot.components)} ({'; '.join(digests)})"


def resolve_seeded(config: Config, base: Base, old: Lock) -> tuple[dict[str, str], str]:
    kept = old.apt.get(base.key, {})
    seed = SEED.get(base.codename, {})
    pins: dict[str, str] = {}
    for name in apt_names(config, base):
        version = kept.get(name) or seed.get(name)
        if version is None:
            raise ResolveError(f"{base.key}: no pin for {name!r} in images.lock or the seed table for {base.codename}")
        pins[name] = version
    seeded = any(name not in kept for name in pins)
    source = old.sources.get(base.key) if not seeded and base.key in old.sources else \
        f"seed: {base.codename} archive unreachable from build hosts; versions not verified here"
    return pins, source


def resolve_apt(config: Config, old: Lock) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    apt: dict[str, dict[str, str]] = {}
    sources: dict[str, str] = {}
    for key, base in config.bases.items():
        if base.bootstrap is not None:
            apt[key], sources[key] = resolve_debian(config, base)
        else:
            apt[key], sources[key] = resolve_seeded(config, base, old)
            if sources[key].startswith("seed:"):
                print(f"warning: {key}: apt pins seeded for {base.codename} (archive unreachable here); verify them where it is reachable")
    return apt, sources


# --- pip ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipRequest:
    python: str
    requires: tuple[str, ...]
    constraints: tuple[str, ...]


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


def new_pins(pins: tuple[PipPin, ...], constraints: tuple[str, ...]) -> tuple[PipPin, ...]:
    """Drop what an ancestor already installs at the same version: the node must not reinstall it."""
    inherited = {tuple(c.split("==", 1)) for c in constraints}
    return tuple(p for p in pins if (p.name, p.version) not in inherited)


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


def run_pip(request: PipRequest, index: str) -> tuple[PipPin, ...]:
    exe, exact = interpreter(request.python)
    if not exact:
        print(f"warning: no Python {request.python} here; pip evaluates markers for {sys.version_info[0]}.{sys.version_info[1]}")
    with tempfile.TemporaryDirectory(prefix="buildtool-lock-") as tmp:
        work = Path(tmp)
        (work / "constraints.txt").write_text("".join(c + "\n" for c in request.constraints), encoding="utf-8")
        cmd = pip_command(exe, request, work / "report.json", work / "target", work / "constraints.txt", index)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
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


def pip_levels(dag: Dag) -> list[list[Node]]:
    """Nodes with pip requirements, grouped by depth: a level only depends on earlier ones."""
    by_depth: dict[int, list[Node]] = {}
    for node in dag.nodes.values():
        if node.component is not None and flavor(node.component.flavor).pip_requirements(node.component, node.facts):
            by_depth.setdefault(node.depth, []).append(node)
    return [by_depth[d] for d in sorted(by_depth)]


class PipResolver:
    """Resolves the DAG's pip sets into `lock.pip`; identical requests resolve once."""

    def __init__(self, dag: Dag, lock: Lock, index: str, jobs: int) -> None:
        self.dag, self.lock, self.index, self.jobs = dag, lock, index, max(1, jobs)
        self.cache: dict[PipRequest, tuple[PipPin, ...] | ResolveError] = {}
        self.failed: set[str] = set()
        self.requests = 0

    def request(self, node: Node) -> PipRequest:
        requires = tuple(flavor(node.component.flavor).pip_requirements(node.component, node.facts))  # type: ignore[union-attr]
        return PipRequest(python_line(node.facts), requires, ancestor_pins(self.dag, node, self.lock))

    def resolve(self) -> bool:
        for level in pip_levels(self.dag):
            # A node below a failed one would be resolved against incomplete constraints.
            todo = [n for n in level if not any(a.id in self.failed for a in self.dag.chain(n.id)[:-1])]
            self.failed.update(n.id for n in level if n not in todo)
            wanted = {n.id: self.request(n) for n in todo}
            fresh = sorted({r for r in wanted.values() if r not in self.cache}, key=repr)
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                self.cache.update(zip(fresh, pool.map(self._attempt, fresh)))
            self.requests += len(fresh)
            for node in todo:
                self._record(node, wanted[node.id])
        return not self.failed

    def _attempt(self, request: PipRequest) -> tuple[PipPin, ...] | ResolveError:
        try:
            return run_pip(request, self.index)
        except ResolveError as exc:
            return exc

    def _record(self, node: Node, request: PipRequest) -> None:
        result = self.cache[request]
        if isinstance(result, ResolveError):
            self.failed.add(node.id)
            print(f"error: pip set {node.id} (Python {request.python}: {' '.join(request.requires)}) did not resolve:\n    {result}",
                  file=sys.stderr)
            return
        self.lock.pip[pip_set_id(node)] = PipSet(request.python, request.requires, request.constraints, result)


def resolve_pip(config: Config, lock: Lock, jobs: int) -> tuple[bool, int]:
    dag = build_dag(config, expand(config, lock).variants)
    resolver = PipResolver(dag, lock, config.site.pypi_index or PYPI, jobs)
    return resolver.resolve(), resolver.requests


# --- the command --------------------------------------------------------------------------


def resolve_lock(config: Config, lock_path: Path, only: str | None, jobs: int) -> bool:
    """Resolve apt and/or pip pins and write images.lock; False (and nothing written) on any failure."""
    started = time.monotonic()
    old = load_lock(lock_path)
    lock = Lock(path=str(lock_path))
    try:
        if only in (None, "apt"):
            lock.apt, lock.sources = resolve_apt(config, old)
        else:
            lock.apt = {k: v for k, v in old.apt.items() if k in config.bases}
            lock.sources = {k: v for k, v in old.sources.items() if k in config.bases}
    except ResolveError as exc:
        print(f"error: apt: {exc}; {lock_path} not written", file=sys.stderr)
        return False
    sets = 0
    if only in (None, "pip"):
        ok, sets = resolve_pip(config, lock, jobs)
        if not ok:
            print(f"error: some pip sets did not resolve; {lock_path} not written", file=sys.stderr)
            return False
    else:
        lock.pip = dict(old.pip)
    write_file_atomically(lock_path, dump_lock(lock))
    print(f"wrote {lock_path}: {len(lock.apt)} bases, {len(lock.pip)} pip sets ({sets} pip resolutions) "
          f"in {time.monotonic() - started:.0f} s")
    return True
