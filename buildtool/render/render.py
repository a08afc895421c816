"""DAG + lock -> each node's Dockerfile, build context and content hash. Pure (reads templates only)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import jinja2

from ..components import SYSTEM, Flavor, flavor, template_source
from ..components.support_files import TEMPLATES_DIR
from ..config.model import Config
from ..config.schema import PIP_NAME, SHA256
from ..errors import Location, UserError
from ..lock.format import DebPin, Lock, PipPin, PipRequest, pip_set_id
from ..plan.apt_layers import apt_chain, node_apt_names
from ..plan.dag import Dag, Node
from . import node_frame
from .extras import render_extras

_PIP_VERSION = re.compile(r"[A-Za-z0-9.+!_-]+")


class RenderedNode(NamedTuple):
    """One node rendered (a tuple: ten thousand of these are made per large run)."""

    id: str
    dockerfile: str
    files: tuple[tuple[str, str], ...]  # build context besides the Dockerfile: (name, text)
    hash: str  # sha256 over parent hash, Dockerfile and context files
    parent_ref: str
    executables: frozenset[str] = frozenset()  # context files written 0755 (the flavor's `executables`)

    def mode(self, name: str) -> int:
        """The file mode of a context file (the Dockerfile and all but the flavor's executables: 0644)."""
        return 0o755 if name in self.executables else 0o644

    @property
    def tag(self) -> str:
        """Content-hash tag: an unchanged node keeps it, so it is never rebuilt."""
        return f"buildtool/{self.id}:h-{self.hash[:20]}"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(TEMPLATES_DIR)), jinja2.FunctionLoader(_carried_template)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        bytecode_cache=_bytecode_cache(),
    )


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiling the templates is a third of `buildtool generate` (~0.17 s of ~0.5 s); jinja2 keeps the compiled
    code in the user's cache, keyed by each template's source checksum. No cache where that folder cannot be made."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "buildtool" / "jinja2"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


def _carried_template(name: str) -> tuple[str, None, Callable[[], bool]] | None:
    """A partial that a registered flavor carries (Flavor.template_source); up to date while that flavor stays registered."""
    source = template_source(name)
    if source is None:
        return None
    return source, None, lambda: template_source(name) == source


# What a partial may read (the context render gives each partial; docs/flavors.md lists it, a unit test keeps it true).
PARTIAL_CONTEXT: dict[str, str] = {
    "node": "the plan node (id, stage, base, component, parent, facts, depth, children, variants)",
    "component": "the component (axis, key, flavor, fields); None in the system layer",
    "fields": "the component's fields as images.yaml gives them, checked by the flavor's schema ({} in the system layer)",
    "facts": "the facts of this layer and the ones below it: os.*, system.*, then <axis>.* up to this node's stage",
    "apt": "(name, version) of every locked .deb this layer installs (debs.lock beside the Dockerfile), sorted by name",
    "apt_roots": "the archives the layer's .debs are fetched from by default, 'archive=url ...' ('' when it installs none)",
    "has_requirements": "whether the layer installs a pip set (requirements.txt beside the Dockerfile)",
    "wheel_cache": "the BuildKit cache id for the layer's wheels: <os>-<axis>-<component key> (<os>-system in the system layer)",
    "system": "images.yaml's system section and tools.uv (user, uid, locale, workdir, uv, uv_sha256)",
    "env": "the flavor's ENV lines as (name, value) pairs (the frame writes them; a partial rarely needs them)",
}


def node_flavor(node: Node) -> Flavor:
    return SYSTEM if node.component is None else flavor(node.component.flavor)


def pip_requires(node: Node) -> tuple[str, ...]:
    """The requirements of the node's own pip set (none for the system layer or a flavor that installs no pip packages)."""
    return tuple(flavor(node.component.flavor).pip_requirements(node.component, node.facts)) if node.component is not None else ()


def node_pip_set_id(dag: Dag, node: Node) -> str | None:
    """The key of the node's pip set in images.lock (lock.format.pip_set_id), None when it installs none."""
    own = pip_requires(node)
    if not own:
        return None
    chain = tuple(r for r in (pip_requires(a) for a in dag.chain(node.id)) if r)
    return pip_set_id(python_line(node.facts), chain)


def pip_request(dag: Dag, node: Node, lock: Lock) -> PipRequest | None:
    """What the node's pip set asks for (None: it installs no pip packages); the constraints are the pins its
    ancestors' sets have in `lock`."""
    requires = pip_requires(node)
    return PipRequest(python_line(node.facts), requires, ancestor_pins(dag, node, lock)) if requires else None


def ancestor_pins(dag: Dag, node: Node, lock: Lock) -> tuple[str, ...]:
    """name==version of every pip pin installed by the node's ancestors (constraints for its own set)."""
    pins: dict[str, str] = {}
    for ancestor in dag.chain(node.id)[:-1]:
        set_id = node_pip_set_id(dag, ancestor)
        resolved = lock.pip.get(set_id) if set_id is not None else None
        for pin in resolved.pins if resolved else ():
            pins[pin.name] = pin.version
    return tuple(f"{n}=={v}" for n, v in sorted(pins.items()))


def python_line(facts: dict[str, Any]) -> str:
    return ".".join(str(facts.get("python.version", "")).split(".")[:2])


DEBS_HEADER = "# Generated by buildtool from images.lock: archive, pool path, sha256, size, package, version, arch.\n"


def debs_lock_text(debs: tuple[DebPin, ...]) -> str:
    return DEBS_HEADER + "".join(f"{d.archive} {d.filename} {d.sha256} {d.size} {d.name} {d.version} {d.arch}\n" for d in debs)


REQUIREMENTS_HEADER = "# Generated by buildtool from images.lock: exact versions with hashes, installed with --no-deps.\n"


def requirements_text(pins: tuple[PipPin, ...], lock: Lock | None = None, set_id: str = "") -> str:
    for i, p in enumerate(pins):
        if not (PIP_NAME.fullmatch(p.name) and _PIP_VERSION.fullmatch(p.version) and SHA256.fullmatch(p.sha256)):
            raise UserError(f"pip pin {p.name!r} cannot be written into requirements.txt", where=_lock_where(lock, ("pip", set_id, "pins", i)),
                            key=f"pip.{set_id}.pins[{i}]",
                            expected="a PEP 508 name, an exact PEP 440 version and a sha256 (64 lowercase hex digits)",
                            found=f"{p.name}=={p.version} --hash=sha256:{p.sha256}", hint="run `buildtool lock` again")
    return REQUIREMENTS_HEADER + "".join(
        [f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n" for p in sorted(pins, key=_pin_order)])


def _pin_order(pin: PipPin) -> str:
    return pin.name.lower()


def node_labels(config: Config, node: Node, parent_ref: str, fl: Flavor) -> dict[str, str]:
    """OCI labels (title, description, base, source, vendor, licenses), the node id and the flavor's own."""
    return dict(_labels(_project_labels(config), config.project["name"], node, parent_ref, fl))


def _labels(project_labels: tuple[tuple[str, str], ...], project_name: str, node: Node, parent_ref: str,
            fl: Flavor) -> tuple[tuple[str, str], ...]:
    title = node.variants[0] if node.variants else node.id
    labels = dict(project_labels)
    if "org.opencontainers.image.description" not in labels:
        labels["org.opencontainers.image.description"] = f"{project_name} image {title}"
    labels["org.opencontainers.image.title"] = title
    labels["org.opencontainers.image.base.name"] = parent_ref
    labels["io.buildtool.node"] = node.id
    labels.update(fl.labels(node.component, node.facts))
    return tuple(sorted(labels.items()))


def _project_labels(config: Config) -> tuple[tuple[str, str], ...]:
    """The labels every node gets from images.yaml's `project` (without a description, each names its image)."""
    project = config.project
    return tuple((f"org.opencontainers.image.{key}", project[key]) for key in ("description", "source", "vendor", "licenses") if key in project)


def wheel_cache_id(node: Node) -> str:
    """The BuildKit cache mount a node's wheels are fetched into: per base and component, so that
    siblings installing the same component (with and without MPI, say) download its wheels once,
    while builds of different components never wait on each other's lock."""
    component = node.component
    return f"{node.facts['os']}-{component.axis}-{component.key}" if component is not None else f"{node.facts['os']}-system"


def describe(node: Node) -> str:
    component = node.component
    if component is None:
        return f"stage {node.stage}"
    return f"stage {node.stage}, {component.axis} {component.key}, flavor {component.flavor}"


class _Pass:
    """What one render_dag call remembers across its nodes (objects stay alive and unchanged meanwhile)."""

    def __init__(self, config: Config, lock: Lock, dag: Dag) -> None:
        self.config = config
        self.lock = lock
        self.dag = dag
        self.env = environment()
        self.roots: dict[str, str] = {}
        self.project_labels = _project_labels(config)
        self.project_name = config.project["name"]

    def apt_roots(self, base: str) -> str:
        """The archives a base's .debs are fetched from by default (a build arg: a site mirror or snapshot overrides it)."""
        found = self.roots.get(base)
        if found is None:
            found = self.roots[base] = " ".join(f"{a}={u}" for a, u in sorted(self.lock.base_apt(base).archives.items()))
        return found

    def node(self, node: Node, parent_ref: str, constraints: Callable[[], tuple[str, ...]]) -> tuple[str, dict[str, str]]:
        """The node's Dockerfile and its context files besides it."""
        lock, fl, component = self.lock, node_flavor(node), node.component
        files = dict(fl.context_files(component, node.facts))
        chain = apt_chain(self.dag, node)
        debs: tuple[DebPin, ...] = ()
        extras_body = ""
        if node.extras:  # the extras' own closure is the chain's last entry (plan/apt_layers.py)
            extras_body = render_extras(self.env, self.config, node, lock.layer_debs(node.base.key, chain), files, self.apt_roots(node.base.key))
            chain = chain[:-1]
        if node_apt_names(node):
            debs = lock.layer_debs(node.base.key, chain)
            files["debs.lock"] = debs_lock_text(debs)
        requires = fl.pip_requirements(component, node.facts) if component is not None else ()
        if requires:
            request, set_id = PipRequest(python_line(node.facts), tuple(requires), constraints()), node_pip_set_id(self.dag, node)
            pip_set = lock.pip.get(set_id)  # type: ignore[arg-type]
            if pip_set is None or pip_set.request != request:  # raises: missing at the images.yaml entry, stale at the lock's
                pip_set = lock.pip_set(set_id, request, node.id, self.config.doc.where(("components", component.axis, component.key)),  # type: ignore[arg-type,union-attr]
                                       f"components.{component.axis}.{component.key}")  # type: ignore[union-attr]
            files["requirements.txt"] = requirements_text(pip_set.pins, lock, set_id)  # type: ignore[arg-type]
        env_items = tuple(fl.env(component, node.facts).items()) if component is not None else ()
        system = self.config.system
        context = {  # what a partial may read
            "node": node,
            "component": component,
            "fields": component.fields if component is not None else {},
            "facts": node.facts,
            "apt": tuple((d.name, d.version) for d in debs),
            "apt_roots": self.apt_roots(node.base.key) if debs or node_apt_names(node) else "",
            "has_requirements": bool(requires),
            "wheel_cache": wheel_cache_id(node),
            "system": system,
            "env": env_items,
        }
        try:
            body = _tidy(self.env.get_template(fl.partial).render(context))
        except jinja2.TemplateNotFound as exc:  # a flavor without its partial is a developer error
            raise UserError(f"template not found: {exc.name}", expected=f"templates/{fl.partial}") from None
        if extras_body:
            body = f"{body.rstrip()}\n\n{extras_body}" if body.strip() else extras_body
        labels = _labels(self.project_labels, self.project_name, node, parent_ref, fl)
        text = node_frame.dockerfile(node.id, describe(node), parent_ref, env_items, body, labels, system.uid, system.workdir)
        return text, files


def _lock_where(lock: Lock | None, path: tuple[Any, ...]) -> Location | None:
    if lock is None:
        return None
    return lock.doc.where(path) if lock.doc is not None else Location(lock.path)


def _tidy(text: str) -> str:
    """Collapse runs of blank lines so partials can be written freely; end with one newline."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    return "\n".join(out).rstrip("\n") + "\n"


def content_hash(parent_hash: str, dockerfile: str, files: dict[str, str], executables: frozenset[str] = frozenset()) -> str:
    return _content_hash(parent_hash, dockerfile, tuple(sorted(files.items())), executables)


def _content_hash(parent_hash: str, dockerfile: str, files: tuple[tuple[str, str], ...], executables: frozenset[str]) -> str:
    """sha256 over the parent's hash, the Dockerfile and the context files (sorted by name) with their modes."""
    parts = [b"buildtool-node-v1\0", parent_hash.encode(), b"\0Dockerfile\0", dockerfile.encode(), b"\0"]
    for name, text in files:
        parts += [name.encode(), b"\0", b"755" if name in executables else b"644", b"\0", text.encode(), b"\0"]
    return hashlib.sha256(b"".join(parts)).hexdigest()  # one update over the concatenation: the same digest


def render_dag(config: Config, lock: Lock, dag: Dag) -> dict[str, RenderedNode]:
    """Render every non-base node in topological order; bases hash their recipe."""
    state = _Pass(config, lock, dag)
    out: dict[str, RenderedNode] = {}
    hashes: dict[str, str] = {}
    refs: dict[str, str] = {}
    for node in dag.nodes.values():
        if node.stage == "base":
            hashes[node.id] = hashlib.sha256(node.base.local_ref.encode()).hexdigest()
            refs[node.id] = node.base.local_ref
            continue
        parent_ref = refs[node.parent]  # type: ignore[index]
        dockerfile, files = state.node(node, parent_ref, lambda node=node: ancestor_pins(dag, node, lock))
        context_files = tuple(sorted(files.items()))
        executables = node_flavor(node).executables
        digest = _content_hash(hashes[node.parent], dockerfile, context_files, executables)  # type: ignore[index]
        rendered = RenderedNode(node.id, dockerfile, context_files, digest, parent_ref, executables)
        out[node.id] = rendered
        hashes[node.id] = digest
        refs[node.id] = rendered.tag
    return out
