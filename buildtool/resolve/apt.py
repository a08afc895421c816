"""`buildtool lock` (apt half): make each base, let apt resolve its layers' .debs in a container of it.

Only the bases asked for are resolved; every other base's entry stays byte-identical.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from ..config.model import Base, Config
from ..engine import client as engine
from ..engine.bases import run_bases
from ..errors import OperationError
from ..lock.apt_sources import apt_sources
from ..lock.format import BaseApt, Lock
from ..plan.apt_layers import base_chains
from ..plan.dag import Dag
from .apt_resolve import ResolveError, resolve_base_apt


def resolve_bases_apt(config: Config, dag: Dag, keys: list[str], old: Lock, accept_drift: bool = True,
                      log_dir: Path | None = None, images: dict[str, str] | None = None) -> dict[str, BaseApt]:
    """A fresh apt lock entry for each base in `keys` (needs the engine and the archive)."""
    out: dict[str, BaseApt] = {}
    made: dict[str, str] = dict(images or {})  # base key -> image resolved against in this run (a stand-in reuses it)
    client = engine.docker_client()
    for key in keys:
        base = config.bases[key]
        image_base = config.bases[base.resolve_on] if base.resolve_on else base
        if image_base.bootstrap is None:
            raise ResolveError(f"base {key}: its apt pins are resolved in a container of a bootstrapped base, and it has none "
                               f"(set `resolve_on: <a bootstrapped base of the same release>`)")
        image = made.get(image_base.key) or _ensure_base_image(client, config, image_base, old)
        made[image_base.key] = image
        chains = base_chains(dag, key)
        if not chains:
            continue
        _say(f"{key}: resolving {sum(len(c) for c in chains)} layer name sets with apt in a container of {image} ...")
        log = None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            log = open(log_dir / f"{key}.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
        try:
            repos = tuple(config.apt_repositories[k] for k in sorted({r for n in dag.nodes.values() if n.base.key == key
                                                                       for e in n.extras for r in e.repositories}))
            extra = {"repos": repos} if repos else {}  # third-party repositories (extras) of this base
            entry = resolve_base_apt(image, apt_sources(image_base, config.site), chains, config.site.apt_keyring, log, **extra)
        finally:
            if log is not None:
                log.close()
        if image_base is base:
            # the base image now carries the tag its recorded manifest gives it
            ref = replace(base, content=entry.content).local_ref
            engine.tag(client, engine.image_id(client, image) or image, ref)
        _say(f"{key}: {len(entry.packages)} .debs locked over {len(entry.installs)} closures "
             f"({', '.join(f'{i.suite} {i.date}' for i in entry.indexes)})")
        out[key] = entry
    return out


def _ensure_base_image(client, config: Config, base: Base, old: Lock) -> str:
    """A local image of the base: the one the lock names if present, else one made now (the archive as it is today)."""
    if engine.image_id(client, base.local_ref):
        return base.local_ref
    locked = old.bases.get(base.key)
    rc = run_bases(config, [base], accept_drift=True, locked_manifests={base.key: locked.manifest} if locked else None,
                   output_format="quiet")
    if rc != 0:
        raise OperationError(f"base {base.key} could not be made; see `buildtool bases`")
    found = _newest_with_recipe(client, base)
    if found is None:
        raise OperationError(f"base {base.key}: made, but no image carries its recipe label")
    return found


def _newest_with_recipe(client, base: Base) -> str | None:
    from ..engine.bootstrap import LABEL_KEY, LABEL_RECIPE

    images = client.images.list(filters={"label": [f"{LABEL_KEY}={base.key}", f"{LABEL_RECIPE}={base.recipe_id}"]})
    images.sort(key=lambda i: i.attrs.get("Created", ""), reverse=True)
    return images[0].id if images else None


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
