"""What the lock says an image is made of, layer by layer (pure): the expectation its SBOM is held to.

An image is a chain of DAG nodes (base -> system -> python -> ...). Per node: the .debs it installs
(the lock's closure of its chain minus its parent's), the pip set it installs, and every other
download its component's fields pin with a sha256 (an installer, a keyring). The base is either
pulled by digest or bootstrapped from a recipe; its own packages are the lock's base manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..lock.format import DebPin, Lock, PipPin
from ..render.extras import node_debs
from ..render.pins import node_pip_set_id


@dataclass(frozen=True)
class Download:
    """A file a layer fetches, named by its component's fields with its sha256."""

    key: str  # the field path, e.g. installer
    url: str
    sha256: str


@dataclass(frozen=True)
class Layer:
    node: str
    stage: str
    content_hash: str  # "" for the base
    tag: str  # buildtool/<node>:h-... (the base's local ref for the base)
    component: str  # "<axis> <key> (<flavor>)", or the stage for base/system
    debs: tuple[DebPin, ...] = ()
    pip: tuple[PipPin, ...] = ()
    downloads: tuple[Download, ...] = ()


@dataclass(frozen=True)
class BaseFacts:
    key: str
    family: str
    version: str
    codename: str
    image: str  # registry reference pinned by digest ("" when only bootstrapped)
    bootstrap: dict[str, str]  # tool, suite, mirror, variant, components ({} for a pulled base)
    resolved_at: str  # the lock's snapshot time (YYYYMMDDTHHMMSSZ)
    indexes: tuple[tuple[str, str, str], ...]  # (suite, Release Date, InRelease sha256)
    archives: dict[str, str]
    security_archives: frozenset[str]  # archive ids that only hold -security pockets
    manifest: tuple[tuple[str, str, str], ...]  # (name, version, arch) the base itself has
    content: str  # sha256 of the manifest (part of the base's tag)


@dataclass(frozen=True)
class ImageFacts:
    image: str
    node: str
    tag: str
    content_hash: str
    base: BaseFacts
    layers: tuple[Layer, ...]  # base first

    @property
    def locked_debs(self) -> dict[str, DebPin]:
        return {d.name: d for layer in self.layers for d in layer.debs}

    @property
    def locked_pip(self) -> dict[str, PipPin]:
        return {normalize(p.name): p for layer in self.layers for p in layer.pip}


def normalize(name: str) -> str:
    from .inventory import normalize as norm

    return norm(name)


def downloads_of(fields: Any, prefix: str = "") -> list[Download]:
    """Every {url, sha256} map and every X / X_sha256 pair in a component's fields (any flavor's shape)."""
    out: list[Download] = []
    if isinstance(fields, dict):
        if isinstance(fields.get("url"), str) and isinstance(fields.get("sha256"), str):
            out.append(Download(prefix.rstrip(".") or "url", fields["url"], fields["sha256"]))
        for k, v in fields.items():
            if isinstance(v, str) and isinstance(fields.get(f"{k}_sha256"), str) and v.startswith(("http://", "https://")):
                out.append(Download(prefix + k, v, fields[f"{k}_sha256"]))
            elif isinstance(v, (dict, list)):
                out += downloads_of(v, f"{prefix}{k}.")
    elif isinstance(fields, list):
        for i, v in enumerate(fields):
            out += downloads_of(v, f"{prefix}{i}.")
    return out


def base_facts(config: Any, lock: Lock, base: Any) -> BaseFacts:
    from ..lock.apt_sources import archive_ids

    locked = lock.bases.get(base.key)
    boot = base.bootstrap
    recipe = {"tool": boot.tool, "suite": boot.suite, "mirror": boot.mirror, "variant": boot.variant,
              "components": " ".join(boot.components)} if boot is not None else {}
    main_id, security_id = archive_ids(base)
    manifest = tuple(tuple(line.split(" ", 2)) for line in (locked.manifest if locked else ()))
    return BaseFacts(key=base.key, family=base.family, version=base.version, codename=base.codename, image=base.image or "", bootstrap=recipe,
                     resolved_at=locked.resolved_at if locked else "",
                     indexes=tuple((i.suite, i.date, i.sha256) for i in locked.indexes) if locked else (),
                     archives=dict(locked.archives) if locked else {},
                     security_archives=frozenset({security_id} - {main_id}),
                     manifest=manifest, content=locked.content if locked and locked.manifest else "")  # type: ignore[arg-type]


def image_facts(config: Any, g: Any, lock: Lock, image: str) -> ImageFacts:
    """The lock's view of `image` (a name from images.yaml)."""
    node_id = g.dag.variant_node[image]
    chain = g.dag.chain(node_id)
    base_node = chain[0]
    layers = [Layer(base_node.id, "base", "", base_node.base.local_ref, f"base {base_node.base.key}")]
    for node in chain[1:]:
        rendered = g.rendered[node.id]
        debs = node_debs(lock, g.dag, node)  # the flavor's .debs and the layer's extras
        set_id = node_pip_set_id(g.dag, node)
        pip_set = lock.pip.get(set_id) if set_id is not None else None
        comp = node.component
        label = f"{comp.axis} {comp.key} ({comp.flavor})" if comp is not None else node.stage
        downloads = tuple(downloads_of(comp.fields)) if comp is not None else ()
        if node.stage == "python":
            downloads += _uv_downloads(node.facts)
        layers.append(Layer(node.id, node.stage, rendered.hash, rendered.tag, label, tuple(debs), pip_set.pins if pip_set else (), downloads))
    leaf = g.rendered[node_id]
    return ImageFacts(image, node_id, leaf.tag, leaf.hash, base_facts(config, lock, base_node.base), tuple(layers))


def _uv_downloads(facts: dict[str, Any]) -> tuple[Download, ...]:
    """The python layer's uv wheels (tools.uv: one sha256 per platform wheel)."""
    version = str(facts.get("system.uv") or "")
    return tuple(Download("tools.uv", f"pkg:pypi/uv@{version}" if version else "pkg:pypi/uv", h)
                 for h in str(facts.get("system.uv_sha256") or "").split())
