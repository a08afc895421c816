"""`buildtool lock`: resolve images.yaml's apt names and pip requirements into images.lock.

The one stage that touches the network besides build/publish; generate only reads its output.

apt (apt.py, apt_resolve.py): apt itself resolves every layer's .debs in a throwaway
container of the base, from the release, -updates and -security pockets; the lock records every
.deb of the closure with its pool filename, sha256 and size, and the base's own manifest.

pip (this module; uv.py runs one compile): each DAG node whose flavor has requirements is resolved by `uv pip compile` (binary wheels
only, the site's index or PyPI, CPython of the node's line on manylinux_2_31 x86_64), constrained
to what its ancestors already pinned, so a child never moves a parent's package. Parents resolve
before children, level by level. uv writes a pylock.toml (every acceptable wheel with url and
sha256); the lock keeps the sha256 of the wheel pip/uv would install there (best-ranked tag).

apt: nothing is written unless every base resolved. pip: the sets that resolved are written even
when another failed (which is reported, and the command exits 1).
"""

from __future__ import annotations

import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from packaging.utils import canonicalize_name

from ..components import flavor
from ..config.model import Config
from ..lock.format import Lock, PipPin, PipRequest, PipSet
from ..plan.dag import Dag, Node, build_dag
from ..plan.expand import expand
from ..render.cuda_pins import check_cuda_pins, locked_problems
from ..render.pins import node_pip_set_id, pip_request
from .uv import ResolveError, UvJob, culprits, run_uv

PYPI = "https://pypi.org/simple"


# --- pip (uv) -----------------------------------------------------------------------------



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
                 upgrade_packages: tuple[str, ...] = (), ca_bundle: str | None = None, config: Config | None = None,
                 machine: str = "x86_64", prefer: dict[str, PipSet] | None = None) -> None:
        self.dag, self.lock, self.index, self.jobs, self.upgrade = dag, lock, index, max(1, jobs), upgrade
        self.config = config  # to name the images.yaml entry a failed set comes from
        self.upgrade_packages = frozenset(str(canonicalize_name(n)) for n in upgrade_packages)
        self.ca_bundle = ca_bundle
        self.machine = machine
        self.prefer = prefer or {}  # linux/amd64's sets (same keys): a platform's new set prefers their versions
        self.cache: dict[UvJob, tuple[PipPin, ...] | ResolveError] = {}
        self.failed: set[str] = set()
        self.requests = 0
        self.resolved: list[str] = []  # set ids re-resolved this run

    def request(self, node: Node) -> PipRequest:
        request = pip_request(self.dag, node, self.lock)
        assert request is not None  # pip_levels holds only nodes with requirements
        return request if self.machine == request.machine else replace(request, machine=self.machine)

    def set_id(self, node: Node) -> str:
        found = node_pip_set_id(self.dag, node)
        assert found is not None
        return found

    def earlier(self, node: Node) -> tuple[str, PipSet] | None:
        """The set this node installed when the lock was written: by its `nodes`, else (a lock from before set ids
        followed content) the set keyed by the node id."""
        for key, found in self.lock.pip.items():
            if node.id in found.nodes:
                return key, found
        found = self.lock.pip.get(node.id)
        return (node.id, found) if found is not None else None

    def resolve(self) -> bool:
        for level in pip_levels(self.dag):
            # A node below a failed one would be resolved against incomplete constraints.
            todo = [n for n in level if not any(a.id in self.failed for a in self.dag.chain(n.id)[:-1])]
            for node in level:
                if node not in todo:
                    self.failed.add(node.id)
                    above = next(a.id for a in self.dag.chain(node.id)[:-1] if a.id in self.failed)
                    print(f"error: the pip set of {node.id} not resolved: the set of {above} above it did not resolve", file=sys.stderr)
            requests = {n.id: self.request(n) for n in todo}
            found = {n.id: self.lock.pip.get(self.set_id(n)) or (self.earlier(n) or (None, None))[1] for n in todo}
            planned = {n.id: self._preferring(n, plan_job(found[n.id], requests[n.id], self.upgrade, self.upgrade_packages)) for n in todo}
            for node in todo:
                if planned[node.id] is None:  # kept byte-identical (under its content id: a lock keyed by node ids is re-keyed)
                    self.lock.pip.setdefault(self.set_id(node), found[node.id])  # type: ignore[arg-type]
            todo = [n for n in todo if planned[n.id] is not None]
            fresh = sorted({planned[n.id] for n in todo if planned[n.id] not in self.cache}, key=repr)  # type: ignore[misc]
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                self.cache.update(zip(fresh, pool.map(self._attempt, fresh)))
            self.requests += len(fresh)
            for node in todo:
                self._record(node, planned[node.id])  # type: ignore[arg-type]
        self.lock.pip = self.final_sets()
        return not self.failed

    def final_sets(self) -> dict[str, PipSet]:
        """Every set a node installs, with the nodes that install it; a failed node keeps its earlier set (its
        previous pins stay the preferences of the next run). Sets no node asks for any more go."""
        users: dict[str, list[str]] = {}
        for level in pip_levels(self.dag):
            for node in level:
                if node.id not in self.failed:
                    users.setdefault(self.set_id(node), []).append(node.id)
        out = {sid: replace(self.lock.pip[sid], nodes=tuple(sorted(ids))) for sid, ids in users.items() if sid in self.lock.pip}
        for node in (self.dag.nodes[nid] for nid in sorted(self.failed)):
            earlier = self.earlier(node)
            if earlier is not None:
                out.setdefault(*earlier)
        return out

    def _preferring(self, node: Node, job: UvJob | None) -> UvJob | None:
        """A fresh set of another platform prefers linux/amd64's versions of it (one image, the same versions)."""
        other = self.prefer.get(self.set_id(node))
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
            entry = ""
            if self.config is not None:
                from ..render.unlocked import wanted_by

                key, where = wanted_by(self.config, node)
                entry = f"{where}: {key}: "
            print(f"error: {entry}the pip set of {node.id} (Python {request.python}) did not resolve: requirement "
                  f"{', '.join(culprits(request.requires, str(result)))}; uv says:\n    {result}", file=sys.stderr)
            return
        self.lock.pip[self.set_id(node)] = PipSet(request.python, request.requires, request.constraints, result)
        self.resolved.append(self.set_id(node))


def resolve_pip(config: Config, lock: Lock, jobs: int, upgrade: bool = False, upgrade_packages: tuple[str, ...] = (),
                machine: str = "x86_64", prefer: dict[str, PipSet] | None = None, variants: tuple | None = None) -> tuple[bool, int]:
    """Resolve the pip sets that are missing or whose request changed (every set with `upgrade`; with
    `upgrade_packages`, also those that contain one of them)."""
    dag = build_dag(config, expand(config, lock).variants if variants is None else variants)
    check_cuda_pins(config, dag, None)  # a configured library off the image's CUDA line is an images.yaml error: before any uv run
    resolver = PipResolver(dag, lock, config.site.pypi_index or PYPI, jobs, upgrade, upgrade_packages, config.site.ca_bundle, config=config,
                           machine=machine, prefer=prefer)
    contained = {p.name for s in lock.pip.values() for p in s.pins} | {requirement_name(r) for s in lock.pip.values() for r in s.requires}
    for name in sorted(resolver.upgrade_packages - contained):
        print(f"warning: --upgrade-package {name}: no pip set requires or pins it", file=sys.stderr)
    ok = resolver.resolve()
    for problem in locked_problems(dag, lock):  # an unpinned dependency that moved off the line: say which images.yaml pin is missing
        print(problem.render().replace(f"{lock.path}: ", ""), file=sys.stderr)
        ok = False
    if upgrade_packages and not upgrade:
        print(f"--upgrade-package {' '.join(sorted(resolver.upgrade_packages))}: re-resolved {len(resolver.resolved)} sets"
              + (f" ({', '.join(sorted(resolver.resolved))})" if resolver.resolved else ""))
    return ok, resolver.requests
