"""The `extras` step of a layer (config/extras.py, plan/extras.py): its repositories' key, deb822 .sources and
pin, then its .debs through install-debs like every other layer's. Pure (renders templates/partials/extras.Dockerfile.j2)."""

from __future__ import annotations

from typing import Any

from ..config.model import Config
from ..errors import Location, UserError
from ..lock.format import DebPin
from ..plan.dag import Node
from .pins import debs_lock_text

EXTRA_DEBS = "extra-debs.lock"
_ARMOR_LINE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=: -\r")


def node_debs(lock: Any, dag: Any, node: Node) -> tuple[DebPin, ...]:
    """Every .deb a layer installs: its flavor's closure, then its extras' (apt_chain gives the extras their own entry last)."""
    from ..plan.apt_layers import apt_chain, node_apt_names

    chain = apt_chain(dag, node)
    extras: tuple[DebPin, ...] = ()
    if node.extras:
        extras, chain = lock.layer_debs(node.base.key, chain), chain[:-1]
    own = lock.layer_debs(node.base.key, chain) if node_apt_names(node) else ()
    return tuple(sorted((*own, *extras), key=lambda d: d.name))


def render_extras(env: Any, config: Config, node: Node, debs: tuple[DebPin, ...], files: dict[str, str], roots: str) -> str:
    """Adds the context files (key, .sources, pin, extra-debs.lock) to `files`; returns the Dockerfile step."""
    repos = []
    for key in sorted({r for extra in node.extras for r in extra.repositories}):
        repo = config.apt_repositories[key]
        if any(set(line) - _ARMOR_LINE for line in repo.key_text.splitlines()):  # the key travels as a context file: armor text only
            raise UserError(f"the key file of apt repository {key} has characters outside OpenPGP armor", where=Location(config.path, repo.line),
                            key=f"apt_repositories.{key}.key", expected="gpg --armor --export output", found=repo.key_file)
        files[f"apt-{key}.asc"] = repo.key_text
        files[f"apt-{key}.sources"] = repo.sources_text()
        files[f"apt-{key}.pref"] = repo.preferences_text()
        repos.append(repo)
    files[EXTRA_DEBS] = debs_lock_text(debs)
    context = {"repos": repos, "apt": tuple((d.name, d.version) for d in debs), "apt_roots": roots, "facts": node.facts,
               "entries": [f"extras[{e.index}]" for e in node.extras]}
    return env.get_template("partials/extras.Dockerfile.j2").render(context).strip("\n")
