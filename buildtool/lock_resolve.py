"""`buildtool lock`: resolve images.yaml's apt names and pip requirements into images.lock.

The one stage that touches the network besides build/publish; generate only reads its output.

apt (lock_apt.py, apt_resolve.py): apt itself resolves every layer's .debs in a throwaway
container of the base, from the release, -updates and -security pockets; the lock records every
.deb of the closure with its pool filename, sha256 and size, and the base's own manifest.

pip: each DAG node whose flavor has requirements is resolved by pip (dry run, binary wheels
only, PyPI) for the node's Python line, constrained to what its ancestors already pinned, so
a child never moves a parent's package. Parents resolve before children, level by level.

Nothing is written unless everything resolved: a half-resolved lock never lands.
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
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from .apt_resolve import utc_timestamp
from .components import SYSTEM, flavor
from .expand import expand
from .lock import Lock, PipPin, PipSet, bind_bases, dump_lock, load_lock
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

class ResolveError(Exception):
    """One resolution failed; the message is printed as is."""


def apt_names(config: Config, base: Base) -> tuple[str, ...]:
    """Every apt name a layer on this base can ask for: the system layer and every flavor."""
    names = set(SYSTEM.apt_packages(None, base))  # type: ignore[arg-type]
    for entries in config.components.values():
        for component in entries.values():
            names.update(flavor(component.flavor).apt_packages(component, base))
    return tuple(sorted(names))


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

    def __init__(self, dag: Dag, lock: Lock, index: str, jobs: int, upgrade: bool = False) -> None:
        self.dag, self.lock, self.index, self.jobs, self.upgrade = dag, lock, index, max(1, jobs), upgrade
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
            if not self.upgrade:  # a set whose request is unchanged keeps its pins byte-identical
                todo = [n for n in todo if not self._unchanged(n, wanted[n.id])]
            fresh = sorted({wanted[n.id] for n in todo if wanted[n.id] not in self.cache}, key=repr)
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                self.cache.update(zip(fresh, pool.map(self._attempt, fresh)))
            self.requests += len(fresh)
            for node in todo:
                self._record(node, wanted[node.id])
        return not self.failed

    def _unchanged(self, node: Node, request: PipRequest) -> bool:
        found = self.lock.pip.get(pip_set_id(node))
        return found is not None and (found.python, found.requires, found.constraints) == (request.python, request.requires, request.constraints)

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


def resolve_pip(config: Config, lock: Lock, jobs: int, upgrade: bool = False) -> tuple[bool, int]:
    """Resolve the pip sets that are missing or whose request changed (every set with `upgrade`)."""
    dag = build_dag(config, expand(config, lock).variants)
    lock.pip = {k: v for k, v in lock.pip.items() if k in dag.nodes}  # sets of nodes that no longer exist go
    resolver = PipResolver(dag, lock, config.site.pypi_index or PYPI, jobs, upgrade)
    return resolver.resolve(), resolver.requests


# --- the command --------------------------------------------------------------------------


def resolve_lock(config: Config, lock_path: Path, only: str | None, jobs: int, bases: tuple[str, ...] = (), upgrade: bool = False,
                 images: dict[str, str] | None = None, refreshed_because: str = "") -> bool:
    """Resolve apt and/or pip pins and write images.lock; False (and nothing written) on any failure.

    apt: the bases in `bases` (default: all) are re-resolved against today's archive; the others keep
    their entries byte-identical."""
    from .apt_resolve import ResolveError as AptResolveError
    from .errors import OperationError
    from .lock_apt import resolve_bases_apt

    started = time.monotonic()
    old = load_lock(lock_path, upgrading=True)
    lock = Lock(path=str(lock_path), bases={k: v for k, v in old.bases.items() if k in config.bases}, pip=dict(old.pip))
    unknown = [b for b in bases if b not in config.bases]
    if unknown:
        print(f"error: unknown base {', '.join(unknown)} (known: {', '.join(sorted(config.bases))})", file=sys.stderr)
        return False
    if only in (None, "apt"):
        keys = list(bases) or sorted(config.bases, key=lambda k: (bool(config.bases[k].resolve_on), k))
        dag = build_dag(bind_bases(config, old), expand(bind_bases(config, old), old).variants)
        try:
            fresh = resolve_bases_apt(config, dag, keys, old, log_dir=Path(config.path).resolve().parent / "logs" / "lock", images=images)
            if refreshed_because:  # an automatic refresh is recorded (and shown in labels) until the next deliberate lock
                stamp = utc_timestamp()
                fresh = {k: replace(v, refreshed=(f"{stamp} automatic refresh ({refreshed_because})"[:300],)) for k, v in fresh.items()}
            lock.bases.update(fresh)
        except (AptResolveError, OperationError) as exc:
            print(f"error: apt: {exc}; {lock_path} not written", file=sys.stderr)
            return False
    sets = 0
    if only in (None, "pip"):
        ok, sets = resolve_pip(bind_bases(config, lock), lock, jobs, upgrade)
        if not ok:  # every set that did resolve is kept: one bad requirement must not throw the others' work away
            write_file_atomically(lock_path, dump_lock(lock))
            print(f"error: some pip sets did not resolve (above); {lock_path} written with the {sets} resolutions that worked",
                  file=sys.stderr)
            return False
    write_file_atomically(lock_path, dump_lock(lock))
    print(f"wrote {lock_path}: {len(lock.bases)} bases, {sum(len(b.packages) for b in lock.bases.values())} .debs, "
          f"{len(lock.pip)} pip sets ({sets} pip resolutions) in {time.monotonic() - started:.0f} s")
    return True
