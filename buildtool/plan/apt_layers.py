"""Which apt names each layer of a chain asks for: the key into a base's locked closures. Pure."""

from __future__ import annotations

from ..components import SYSTEM, flavor
from .dag import Dag, Node


def node_apt_names(node: Node) -> tuple[str, ...]:
    if node.stage == "base":
        return ()
    if node.component is None:
        return tuple(SYSTEM.apt_packages(None, node.base))  # type: ignore[arg-type]
    return tuple(flavor(node.component.flavor).apt_packages(node.component, node.base))


def node_extra_names(node: Node) -> tuple[str, ...]:
    """The `extras` packages this layer installs after its flavor's (sorted, once each)."""
    return tuple(sorted({name for extra in node.extras for name in extra.apt}))


def apt_chain(dag: Dag, node: Node) -> list[tuple[str, ...]]:
    """The requested apt names of every layer from the system layer down to `node` (layers without any left out);
    a layer with extras adds them as one more entry after its own, so their .debs are a closure of their own."""
    out = []
    for n in dag.chain(node.id):
        for names in (node_apt_names(n), node_extra_names(n)):
            if names:
                out.append(names)
    return out


def base_chains(dag: Dag, base_key: str) -> list[list[tuple[str, ...]]]:
    """Every distinct apt chain of the nodes on one base: what the lock must hold a closure for."""
    seen: dict[tuple[tuple[str, ...], ...], list[tuple[str, ...]]] = {}
    for node in dag.nodes.values():
        if node.base.key == base_key and node.stage != "base":
            chain = apt_chain(dag, node)
            seen.setdefault(tuple(chain), chain)
    return [seen[k] for k in sorted(seen)]


def apt_names(config, base) -> tuple[str, ...]:
    """Every apt name a layer on this base can ask for: the system layer and every flavor."""
    names = set(SYSTEM.apt_packages(None, base))  # type: ignore[arg-type]
    for entries in config.components.values():
        for component in entries.values():
            names.update(flavor(component.flavor).apt_packages(component, base))
    names.update(name for extra in config.extras for name in extra.apt)
    return tuple(sorted(names))
