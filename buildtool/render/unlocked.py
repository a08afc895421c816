"""A family before (all of) its lock: which nodes lack pins, and the images.yaml entry that asks for each.

`validate` and `list` show a new family's names before the first multi-minute `buildtool lock`; `generate`
(which must write pins) says which images.yaml entry needs one instead of pointing into images.lock."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.model import Config
from ..errors import Location, NotLocked
from ..lock.format import Lock, install_key
from ..plan.apt_layers import apt_chain, node_apt_names, node_extra_names
from ..plan.dag import Dag, Node
from .pins import node_pip_set_id, pip_requires, python_line

HINT = "run `buildtool lock` (apt: network and the engine; `--only pip` needs just the network) and commit images.lock"


__all__ = ["NotLocked", "Unlocked", "node_unlocked", "not_locked_error", "summary", "unlocked_nodes", "wanted_by"]


@dataclass(frozen=True)
class Unlocked:
    node: str
    kind: str  # "apt" or "pip"
    entry: str  # the images.yaml key that asks for the pins: components.<axis>.<key>, or bases.<key> for the system layer
    where: Location
    wanted: str  # what it asks for


def wanted_by(config: Config, node: Node) -> tuple[str, Location]:
    """The images.yaml entry a node's pins come from, and its line."""
    path: tuple[str, ...] = ("components", node.component.axis, node.component.key) if node.component is not None else ("bases", node.base.key)
    return ".".join(path), config.doc.where(path)


def node_unlocked(config: Config, lock: Lock, dag: Dag, node: Node, pip: bool = True) -> tuple[Unlocked, ...]:
    """What the node needs that the lock has not resolved at all (a set present but stale is not this); `pip=False`:
    the apt half only (render leaves a missing pip set to Lock.pip_set, whose message says more)."""
    out = []
    entry, where = wanted_by(config, node)
    if node_apt_names(node) or node_extra_names(node):
        locked = lock.bases.get(node.base.key)
        key = install_key(apt_chain(dag, node))
        if locked is None or key not in locked.installs:
            names = node_apt_names(node) + node_extra_names(node)
            out.append(Unlocked(node.id, "apt", entry, where, f".debs for {' '.join(names)} on base {node.base.key}"))
    if pip:
        set_id = node_pip_set_id(dag, node)
        if set_id is not None and set_id not in lock.pip:  # a set is keyed by what it asks for: a changed request is one not locked yet
            out.append(Unlocked(node.id, "pip", entry, where, f"pins for {', '.join(pip_requires(node))} on Python {python_line(node.facts)}"))
    return tuple(out)


def unlocked_nodes(config: Config, lock: Lock, dag: Dag) -> tuple[Unlocked, ...]:
    return tuple(u for node in dag.nodes.values() if node.stage != "base" for u in node_unlocked(config, lock, dag, node))


def not_locked_error(u: Unlocked) -> NotLocked:
    return NotLocked(f"{u.entry} needs {u.kind} pins images.lock does not have (node {u.node})", where=u.where, key=u.entry,
                     expected=u.wanted, hint=HINT)


def summary(unlocked: tuple[Unlocked, ...]) -> list[str]:
    """One line per images.yaml entry: how many nodes lack which pins."""
    by_entry: dict[tuple[int, str, str], list[Unlocked]] = {}
    for u in unlocked:
        by_entry.setdefault((u.where.line or 0, str(u.where), u.entry), []).append(u)
    lines = []
    for (_, where, entry), items in sorted(by_entry.items()):
        kinds = sorted({u.kind for u in items})
        lines.append(f"not locked: {where}: {entry}: {' and '.join(kinds)} pins of {len(items)} layer node(s)")
    return lines
