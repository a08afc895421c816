"""`buildtool lock`: resolve images.yaml's apt names and pip requirements into images.lock.

The one stage that touches the network besides build/publish; generate only reads its output.

apt (lock_apt.py, apt_resolve.py): apt itself resolves every layer's .debs in a throwaway
container of the base, from the release, -updates and -security pockets; the lock records every
.deb of the closure with its pool filename, sha256 and size, and the base's own manifest.

pip: each DAG node whose flavor has requirements is resolved by `uv pip compile` (binary wheels
only, the site's index or PyPI, CPython of the node's line on manylinux_2_31 x86_64), constrained
to what its ancestors already pinned, so a child never moves a parent's package. Parents resolve
before children, level by level. uv writes a pylock.toml (every acceptable wheel with url and
sha256); the lock keeps the sha256 of the wheel pip/uv would install there (best-ranked tag).

apt: nothing is written unless every base resolved. pip: the sets that resolved are written even
when another failed (which is reported, and the command exits 1).
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from ..components import SYSTEM, flavor
from ..config.model import Base, Config
from ..plan.dag import Dag, Node, build_dag
from ..plan.expand import expand
from ..render.render import ancestor_pins, pip_set_id, python_line
from ..render.writer import write_file_atomically
from .apt_resolve import utc_timestamp
from .format import Lock, PipPin, PipSet, bind_bases, dump_lock, load_lock

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

UV_TIMEOUT_S = 900
PYPI = "https://pypi.org/simple"
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


def apt_names(config: Config, base: Base) -> tuple[str, ...]:
    """Every apt name a layer on this base can ask for: the system layer and every flavor."""
    names = set(SYSTEM.apt_packages(None, base))  # type: ignore[arg-type]
    for entries in config.components.values():
        for component in entries.values():
            names.update(flavor(component.flavor).apt_packages(component, base))
    return tuple(sorted(names))


# --- pip (uv) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PipRequest:
    """What a set asks for: its Python line, its requirements and its ancestors' pins (uv's constraints)."""

    python: str
    requires: tuple[str, ...]
    constraints: tuple[str, ...]
    machine: str = "x86_64"  # the wheels' machine (MACHINES)


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
    """Wheel tags a CPython of `line` on glibc 2.31 of `machine` accepts, best first (the order pip ranks them in)."""
    version = tuple(int(x) for x in line.split("."))
    platforms = wheel_platforms(machine)
    tags = list(cpython_tags(version, platforms=platforms)) + list(compatible_tags(version, f"cp{version[0]}{version[1]}", platforms))
    return {tag: rank for rank, tag in reversed(list(enumerate(tags)))}


def best_wheel(name: str, wheels: list[dict[str, Any]], line: str, machine: str = "x86_64") -> dict[str, Any]:
    """The wheel pip (or uv) installs for cp<line> on manylinux_2_31 `machine`: its best-ranked tag wins."""
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


def plan_job(found: PipSet | None, request: PipRequest, upgrade: bool, upgrade_packages: frozenset[str]) -> UvJob | None:
    """What to do with one set: None keeps its pins byte-identical; else the uv run that re-resolves it.

    - missing: resolved fresh;
    - its request changed (images.yaml, or an ancestor's pins moved): re-resolved, its previous pins as preferences;
    - `upgrade`: re-resolved from scratch;
    - it requires or pins a package of `upgrade_packages`: re-resolved with just those unpinned, the rest preferred."""
    if found is None:
        return UvJob(request)
    if upgrade:
        return UvJob(request)
    previous = tuple(f"{p.name}=={p.version}" for p in found.pins)
    mine = {p.name for p in found.pins} | {requirement_name(r) for r in request.requires}
    moving = tuple(sorted(upgrade_packages & mine))
    if moving:
        return UvJob(request, previous, moving)
    if (found.python, found.requires, found.constraints) != (request.python, request.requires, request.constraints):
        return UvJob(request, previous)
    return None


def requirement_name(requirement: str) -> str:
    return str(canonicalize_name(re.split(r"[<>=!~;\[ @]", requirement.strip(), maxsplit=1)[0]))


def pip_levels(dag: Dag) -> list[list[Node]]:
    """Nodes with pip requirements, grouped by depth: a level only depends on earlier ones."""
    by_depth: dict[int, list[Node]] = {}
    for node in dag.nodes.values():
        if node.component is not None and flavor(node.component.flavor).pip_requirements(node.component, node.facts):
            by_depth.setdefault(node.depth, []).append(node)
    return [by_depth[d] for d in sorted(by_depth)]


class PipResolver:
    """Resolves the DAG's pip sets into `lock.pip` with uv; identical jobs resolve once.

    A set is resolved when it is missing, when its request changed, for every set with `upgrade`, and
    for the sets that require or pin one of `upgrade_packages`; every other set keeps its pins byte-identical."""

    def __init__(self, dag: Dag, lock: Lock, index: str, jobs: int, upgrade: bool = False,
                 upgrade_packages: tuple[str, ...] = (), ca_bundle: str | None = None, machine: str = "x86_64",
                 prefer: dict[str, PipSet] | None = None) -> None:
        self.dag, self.lock, self.index, self.jobs, self.upgrade = dag, lock, index, max(1, jobs), upgrade
        self.upgrade_packages = frozenset(str(canonicalize_name(n)) for n in upgrade_packages)
        self.ca_bundle = ca_bundle
        self.machine = machine
        self.prefer = prefer or {}  # another platform's sets: a missing set prefers their versions
        self.cache: dict[UvJob, tuple[PipPin, ...] | ResolveError] = {}
        self.failed: set[str] = set()
        self.requests = 0
        self.resolved: list[str] = []  # set ids re-resolved this run

    def request(self, node: Node) -> PipRequest:
        requires = tuple(flavor(node.component.flavor).pip_requirements(node.component, node.facts))  # type: ignore[union-attr]
        return PipRequest(python_line(node.facts), requires, ancestor_pins(self.dag, node, self.lock), self.machine)

    def resolve(self) -> bool:
        for level in pip_levels(self.dag):
            # A node below a failed one would be resolved against incomplete constraints.
            todo = [n for n in level if not any(a.id in self.failed for a in self.dag.chain(n.id)[:-1])]
            for node in level:
                if node not in todo:
                    self.failed.add(node.id)
                    above = next(a.id for a in self.dag.chain(node.id)[:-1] if a.id in self.failed)
                    print(f"error: pip set {pip_set_id(node)} not resolved: the set of {above} above it did not resolve", file=sys.stderr)
            planned = {n.id: self._preferring(n, plan_job(self.lock.pip.get(pip_set_id(n)), self.request(n), self.upgrade, self.upgrade_packages))
                       for n in todo}
            todo = [n for n in todo if planned[n.id] is not None]  # the others keep their pins byte-identical
            fresh = sorted({planned[n.id] for n in todo if planned[n.id] not in self.cache}, key=repr)  # type: ignore[misc]
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                self.cache.update(zip(fresh, pool.map(self._attempt, fresh)))
            self.requests += len(fresh)
            for node in todo:
                self._record(node, planned[node.id])  # type: ignore[arg-type]
        return not self.failed

    def _preferring(self, node: Node, job: UvJob | None) -> UvJob | None:
        """A fresh set of another platform prefers linux/amd64's versions of it (one image, the same versions)."""
        other = self.prefer.get(pip_set_id(node))
        if job is None or job.preferences or other is None or self.upgrade:
            return job
        return replace(job, preferences=tuple(f"{p.name}=={p.version}" for p in other.pins))

    def _attempt(self, job: UvJob) -> tuple[PipPin, ...] | ResolveError:
        try:
            return run_uv(job, self.index, self.ca_bundle)
        except ResolveError as exc:
            return exc

    def _record(self, node: Node, job: UvJob) -> None:
        result, request = self.cache[job], job.request
        if isinstance(result, ResolveError):
            self.failed.add(node.id)
            print(f"error: pip set {pip_set_id(node)} (Python {request.python}) did not resolve: requirement "
                  f"{', '.join(culprits(request.requires, str(result)))}; uv says:\n    {result}", file=sys.stderr)
            return
        self.lock.pip[pip_set_id(node)] = PipSet(request.python, request.requires, request.constraints, result)
        self.resolved.append(pip_set_id(node))


def resolve_pip(config: Config, lock: Lock, jobs: int, upgrade: bool = False, upgrade_packages: tuple[str, ...] = (),
                machine: str = "x86_64", prefer: dict[str, PipSet] | None = None, variants: tuple | None = None) -> tuple[bool, int]:
    """Resolve the pip sets that are missing or whose request changed (every set with `upgrade`; with
    `upgrade_packages`, also those that contain one of them)."""
    dag = build_dag(config, expand(config, lock).variants if variants is None else variants)
    lock.pip = {k: v for k, v in lock.pip.items() if k in dag.nodes}  # sets of nodes that no longer exist go
    resolver = PipResolver(dag, lock, config.site.pypi_index or PYPI, jobs, upgrade, upgrade_packages, config.site.ca_bundle, machine, prefer)
    contained = {p.name for s in lock.pip.values() for p in s.pins} | {requirement_name(r) for s in lock.pip.values() for r in s.requires}
    for name in sorted(resolver.upgrade_packages - contained):
        print(f"warning: --upgrade-package {name}: no pip set requires or pins it", file=sys.stderr)
    ok = resolver.resolve()
    if upgrade_packages and not upgrade:
        print(f"--upgrade-package {' '.join(sorted(resolver.upgrade_packages))}: re-resolved {len(resolver.resolved)} sets"
              + (f" ({', '.join(sorted(resolver.resolved))})" if resolver.resolved else ""))
    return ok, resolver.requests


# --- the command --------------------------------------------------------------------------


def resolve_lock(config: Config, lock_path: Path, only: str | None, jobs: int, bases: tuple[str, ...] = (), upgrade: bool = False,
                 images: dict[str, str] | None = None, refreshed_because: str = "", upgrade_packages: tuple[str, ...] = ()) -> bool:
    """Resolve apt and/or pip pins and write images.lock; False (and nothing written) on any failure.

    apt: the bases in `bases` (default: all) are re-resolved against today's archive; the others keep
    their entries byte-identical."""
    from ..errors import OperationError
    from .apt import resolve_bases_apt
    from .apt_resolve import ResolveError as AptResolveError

    started = time.monotonic()
    old = load_lock(lock_path, upgrading=True)
    lock = Lock(path=str(lock_path), bases={k: v for k, v in old.bases.items() if k in config.bases}, pip=dict(old.pip),
                platforms=dict(old.platforms))
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
        ok, sets = resolve_pip(bind_bases(config, lock), lock, jobs, upgrade, upgrade_packages)
        if not ok:  # every set that did resolve is kept: one bad requirement must not throw the others' work away
            write_file_atomically(lock_path, dump_lock(lock))
            print(f"error: some pip sets did not resolve (above); {lock_path} written with the {sets} resolutions that worked",
                  file=sys.stderr)
            return False
    write_file_atomically(lock_path, dump_lock(lock))
    print(f"wrote {lock_path}: {len(lock.bases)} bases, {sum(len(b.packages) for b in lock.bases.values())} .debs, "
          f"{len(lock.pip)} pip sets ({sets} pip resolutions) in {time.monotonic() - started:.0f} s")
    if bases:  # re-locking named bases (a refresh) is linux/amd64's; another platform's: `buildtool lock --platform P --base KEY`
        return True
    from ..plan.platforms import extra_platforms
    from .platform_lock import resolve_platform_lock

    ok = True
    for platform in extra_platforms(config):  # a whole lock covers every platform the matrix makes
        ok = resolve_platform_lock(config, lock_path, platform, only, jobs, (), upgrade, upgrade_packages) and ok
    return ok
