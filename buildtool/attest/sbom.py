"""An image's SBOM: CycloneDX 1.6 JSON, written and validated by cyclonedx-python-lib.

Why CycloneDX (not SPDX 2.3): purls are first-class on every component, the dependency graph
(image -> layers -> the packages each layer installed) is one `dependencies` list, hashes sit on
the component, and cyclonedx-python-lib validates against the official 1.6 JSON schema in one
call (spdx-tools' model needs a relationship object per edge and a separate validator run).

Content: the image (metadata.component, type container, its content hash and node), one
component per layer (the base as an operating-system component with its pull digest or its
bootstrap recipe and the lock's snapshot time and index dates), every dpkg package verify
found (purl pkg:deb/<distro>/<name>@<version>?arch=..&distro=<distro>-<version>, its source
package, the locked .deb's sha256, archive and pool path), every pip distribution (purl pkg:pypi/..., the
locked wheel's sha256) and every conda package (pkg:conda/...). Packages hang off the layer that
installed them according to the lock; what the lock does not place hangs off the image.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..errors import OperationError
from .inventory import Inventory
from .layers import ImageFacts

FORMATS = ("cyclonedx-json",)
MEDIA_TYPE = "application/vnd.cyclonedx+json"
SPEC_VERSION = "1.6"
NS = "buildtool"  # property namespace


@dataclass(frozen=True)
class SbomDocument:
    text: str  # the JSON document
    packages: int  # components with a purl
    media_type: str = MEDIA_TYPE


def distro_of(facts: ImageFacts) -> tuple[str, str]:
    """('debian', 'debian-12') / ('ubuntu', 'ubuntu-22.04'): the purl namespace and distro qualifier."""
    return facts.base.family, f"{facts.base.family}-{facts.base.version}"


def build(facts: ImageFacts, inv: Inventory, *, image_id: str = "", digest: str = "", repository: str = "",
          timestamp: Any = None) -> SbomDocument:
    from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    def props(**kw: str) -> list[Property]:
        return [Property(name=f"{NS}:{k.replace('_', '-')}", value=str(v)) for k, v in kw.items() if v not in ("", None)]

    def sha(h: str) -> list[HashType]:
        return [HashType(alg=HashAlgorithm.SHA_256, content=h)] if h else []

    image_purl = PackageURL("oci", None, facts.image, digest, {"repository_url": repository} if repository and digest else None) if digest else None
    root = Component(name=facts.image, type=ComponentType.CONTAINER, version=facts.content_hash[:20], bom_ref=f"image:{facts.image}",
                     purl=image_purl, hashes=sha(digest.removeprefix("sha256:")) if digest else [],
                     properties=props(node=facts.node, content_hash=facts.content_hash, tag=facts.tag, image_id=image_id,
                                      inventory=inv.source))
    bom = Bom()
    bom.serial_number = uuid.uuid5(uuid.NAMESPACE_URL, f"buildtool:{facts.tag}:{digest}:{json.dumps(inv.to_json(), sort_keys=True)}")
    if timestamp is not None:
        bom.metadata.timestamp = timestamp
    bom.metadata.component = root
    bom.metadata.tools.components.add(Component(name="buildtool", version=__version__, type=ComponentType.APPLICATION))

    # Layers: the base (operating system) and one component per DAG node above it.
    b = facts.base
    layer_comp: dict[str, Any] = {}
    for layer in facts.layers:
        if layer.stage == "base":
            refs = []
            if b.image:
                refs.append(ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(b.image), comment="pulled by digest"))
            if b.bootstrap.get("mirror"):
                refs.append(ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(b.bootstrap["mirror"]),
                                              comment=f"{b.bootstrap.get('tool')} {b.bootstrap.get('suite')} --variant={b.bootstrap.get('variant')}"))
            pr = props(base=b.key, codename=b.codename, pull_digest=b.image.partition("@")[2], manifest_sha256=b.content,
                       snapshot_time=b.resolved_at, **{f"bootstrap_{k}": v for k, v in b.bootstrap.items()})
            pr += [Property(name=f"{NS}:index:{suite}", value=f"{date} InRelease sha256:{digest_}") for suite, date, digest_ in b.indexes]
            comp = Component(name=b.family, version=b.version, type=ComponentType.OPERATING_SYSTEM, bom_ref=f"layer:{layer.node}",
                             hashes=sha(b.image.partition("@sha256:")[2]), external_references=refs, properties=pr,
                             description=f"base {b.key}: {b.family} {b.version} ({b.codename})")
        else:
            comp = Component(name=layer.node, version=layer.content_hash[:20], type=ComponentType.CONTAINER, bom_ref=f"layer:{layer.node}",
                             description=f"layer {layer.stage}: {layer.component}",
                             properties=props(stage=layer.stage, content_hash=layer.content_hash, tag=layer.tag)
                             + [Property(name=f"{NS}:download:{d.key}", value=f"{d.url} sha256:{d.sha256}") for d in layer.downloads])
        layer_comp[layer.node] = comp
        bom.components.add(comp)

    # Where each package comes from according to the lock.
    deb_layer = {d.name: (layer.node, d) for layer in facts.layers for d in layer.debs}
    pip_layer = {_norm(p.name): (layer.node, p) for layer in facts.layers for p in layer.pip}
    base_names = {name for name, _v, _a in b.manifest}
    python_layer = next((layer.node for layer in facts.layers if layer.stage == "python"), None)
    children: dict[str, list[Any]] = {node: [] for node in layer_comp}
    loose: list[Any] = []
    namespace, distro = distro_of(facts)
    count = 0
    for d in inv.dpkg:
        located = deb_layer.get(d.name)
        pin = located[1] if located and located[1].version == d.version else None
        # The pool path as a property, not an externalReference: the schema's iri-reference format check costs the
        # validator ~0.4 s per URL (rfc3987 grammar), minutes for an image; the provenance carries the full URLs.
        purl = PackageURL("deb", namespace, d.name, d.version, {"arch": d.arch, "distro": distro} if d.arch else {"distro": distro})
        comp = Component(name=d.name, version=d.version, type=ComponentType.LIBRARY, purl=purl, bom_ref=purl.to_string(),
                         hashes=sha(pin.sha256) if pin else [],
                         properties=props(deb_source=d.source, deb_source_version=d.source_version, deb_archive=pin.archive if pin else "",
                                          deb_filename=pin.filename if pin else ""))
        bom.components.add(comp)
        count += 1
        owner = located[0] if located else (facts.layers[0].node if d.name in base_names else None)
        (children[owner] if owner else loose).append(comp)
    for name, version in inv.pip:
        located = pip_layer.get(name)
        pin = located[1] if located and located[1].version == version else None
        purl = PackageURL("pypi", None, name, version)
        comp = Component(name=name, version=version, type=ComponentType.LIBRARY, purl=purl, bom_ref=purl.to_string(),
                         hashes=sha(pin.sha256) if pin else [], properties=props(pip_seeded_by="" if located else "python -m venv"))
        bom.components.add(comp)
        count += 1
        owner = located[0] if located else python_layer
        (children[owner] if owner else loose).append(comp)
    for c in inv.conda:
        purl = PackageURL("conda", None, c.name, c.version, {k: v for k, v in (("build", c.build), ("channel", c.channel), ("subdir", c.platform)) if v})
        comp = Component(name=c.name, version=c.version, type=ComponentType.LIBRARY, purl=purl, bom_ref=purl.to_string())
        bom.components.add(comp)
        count += 1
        loose.append(comp)  # conda packages belong to the python provider's layer
        if python_layer:
            loose.pop()
            children[python_layer].append(comp)

    # Relationships: image -> its layers (+ what no layer claims); each layer -> its parent layer and its packages.
    bom.register_dependency(root, [*layer_comp.values(), *loose])
    previous = None
    for node, comp in layer_comp.items():
        bom.register_dependency(comp, [*([previous] if previous is not None else []), *children[node]])
        previous = comp
    for comps in (*children.values(), loose):
        for comp in comps:
            bom.register_dependency(comp, [])
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    problem = validate(text)
    if problem:
        raise OperationError(f"the SBOM of {facts.image} is not valid CycloneDX {SPEC_VERSION}: {problem}")
    return SbomDocument(text + "\n", count)


def _norm(name: str) -> str:
    from .inventory import normalize

    return normalize(name)


def validate(text: str) -> str | None:
    """None when `text` is valid CycloneDX 1.6 JSON (the library's strict schema validator), else the first error."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    return None if error is None else str(error)[:500]


def packages(text: str) -> dict[str, dict[str, str]]:
    """purl type -> {name: version} of an SBOM's components (what the smoke test compares with verify's inventory)."""
    out: dict[str, dict[str, str]] = {}
    for comp in json.loads(text).get("components", []):
        purl = comp.get("purl")
        if purl:
            kind = purl.split(":", 1)[1].split("/", 1)[0]
            out.setdefault(kind, {})[comp["name"]] = comp.get("version", "")
    return out
