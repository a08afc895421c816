"""One reference per multi-platform image: each platform's image pushed, then an OCI image index over them.

An image made for several platforms (plan/platforms.py) is published as: every platform's image under its
own content-hash tag (`h-<hash20>`, immutable: that node's content on that platform), then one OCI image
index naming each platform's manifest (by digest, size and media type, with its os/architecture), PUT under
the release tag and, once every image of the release is in, under the moving tags (moving tags last, as for
single-platform images). The release record keeps the index digest and each platform's digest.

The index is built here (pure: index_body) and PUT with the registry edge's authenticated request
(RegistryClient._get), which already knows Basic and Bearer challenges and masks credentials.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from ..config.model import DEFAULT_PLATFORM
from ..edges.registry import RegistryClient, RegistryError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass
class PlatformImage:
    """One platform's image of a published image: its local content-hash tag and what the engine holds."""

    platform: str
    node: str
    local_tag: str  # buildtool/<node>:h-<hash20> of this platform's render
    content_hash: str
    image_id: str = ""
    digest: str = ""  # the manifest digest the registry gave it
    verified: str = ""


@dataclass(frozen=True)
class Descriptor:
    platform: str  # os/arch
    media_type: str
    digest: str
    size: int


def index_body(descriptors: list[Descriptor]) -> bytes:
    """The OCI image index over `descriptors` (bytes as PUT: its sha256 is the index digest). Deterministic:
    platforms in the order given (linux/amd64 first), sorted keys, no whitespace."""
    if not descriptors:
        raise ValueError("an image index needs at least one manifest")
    manifests = []
    for d in descriptors:
        os_name, arch = d.platform.split("/", 1)
        manifests.append({"mediaType": d.media_type, "digest": d.digest, "size": d.size, "platform": {"architecture": arch, "os": os_name}})
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def parse_index(body: bytes) -> dict[str, str]:
    """platform (os/arch) -> manifest digest, from an image index or manifest list."""
    doc = json.loads(body)
    out = {}
    for m in doc.get("manifests") or []:
        plat = m.get("platform") or {}
        out[f"{plat.get('os', '')}/{plat.get('architecture', '')}"] = m.get("digest", "")
    return out


def descriptor(rc: RegistryClient, path: str, platform: str, digest: str) -> Descriptor:
    """The descriptor of a pushed manifest, read back from the registry (its media type and exact size)."""
    raw, media_type = rc.manifest(path, digest)
    if digest_of(raw) != digest:
        raise RegistryError(f"registry {rc.registry}: manifest {path}@{digest} read back with another digest ({digest_of(raw)})")
    return Descriptor(platform, media_type.split(";", 1)[0].strip() or json.loads(raw).get("mediaType", ""), digest, len(raw))


def put_index(rc: RegistryClient, path: str, reference: str, body: bytes) -> str:
    """PUT the index under `reference` (a tag); the digest the registry answers (checked against the body's)."""
    url = f"/v2/{path}/manifests/{urllib.parse.quote(reference, safe='')}"
    r = rc._get(url, f"repository:{path}:pull,push", method="PUT", data=body, headers={"Content-Type": OCI_INDEX})
    if r.status_code not in (200, 201):
        detail = " ".join((r.text or "").split())[:200]
        raise RegistryError(f"registry {rc.registry}: PUT index {path}:{reference} answered {r.status_code} {detail}".rstrip())
    want = digest_of(body)
    got = r.headers.get("Docker-Content-Digest") or want
    if got != want:
        raise RegistryError(f"registry {rc.registry}: index {path}:{reference} stored as {got}, expected {want}")
    return want


def platform_images(g: Any, name: str, default: tuple[str, str, str], wanted: tuple[str, ...] | None) -> list[PlatformImage]:
    """Every platform image of `name` (linux/amd64's from `default` = (node, local tag, hash)); `wanted`
    narrows the platforms (None: all the image is made for). One entry (linux/amd64 alone): no index."""
    out = []
    if wanted is None or DEFAULT_PLATFORM in wanted:
        out.append(PlatformImage(DEFAULT_PLATFORM, *default))
    for platform, other in sorted(getattr(g, "platforms", {}).items()):
        if (wanted is None or platform in wanted) and name in other.dag.variant_node:
            node = other.dag.variant_node[name]
            rendered = other.rendered[node]
            out.append(PlatformImage(platform, node, rendered.tag, rendered.hash))
    return out


def record_platforms(images: list[PlatformImage]) -> dict[str, dict[str, str]]:
    """The release record's `platforms` of one image: each platform's digest, node, content hash and tag."""
    return {p.platform: {"digest": p.digest, "node": p.node, "content_hash": p.content_hash, "tag": p.local_tag.rsplit(":", 1)[-1]}
            for p in images}


__all__ = ["OCI_INDEX", "PlatformImage", "Descriptor", "index_body", "digest_of", "parse_index", "descriptor", "put_index",
           "platform_images", "record_platforms"]
