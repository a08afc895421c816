"""publish's attestation step: per pushed image its SBOM and provenance, attached to its digest.

Runs after every image's immutable tags are in and before any moving tag moves, so `latest`
never points at an image without them. The SBOM is made from the inventory of the image's
newest passing verify run (else the same probes in a container of it), the provenance from the
lock's view of the image and the build engine's image ids; both are validated with their
libraries before they are pushed (buildtool/edges/referrers.py). Returns what the release file
records per image: {"sbom": {...}, "provenance": {...}}, each with the artifact manifest's digest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..attest import provenance, sbom
from ..attest.inventory import Inventory, collect, from_reports
from ..attest.layers import ImageFacts, image_facts
from ..edges.referrers import Referrers
from ..errors import OperationError
from ..lock.format import Lock, load_lock
from .security import security_pins


@dataclass(frozen=True)
class Attested:
    kind: str  # sbom | provenance
    digest: str  # the artifact manifest's digest
    artifact_type: str
    size: int  # of the document
    packages: int = 0

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": self.digest, "artifactType": self.artifact_type, "size": self.size}
        if self.kind == "sbom":
            out["packages"] = self.packages
        return out


def lock_for(config: Any, lock_path: Path | None) -> Lock:
    return load_lock(lock_path or Path(config.path).parent / "images.lock")


def inventory_of(client: Any, reports: Path, image: str, tag: str) -> Inventory:
    return from_reports(reports, image, tag) or collect(client, tag)


def parent_ids(client: Any, facts: ImageFacts) -> dict[str, str]:
    from docker.errors import ImageNotFound, NotFound

    out = {}
    for layer in facts.layers:
        try:
            out[layer.node] = client.api.inspect_image(layer.tag)["Id"]
        except (ImageNotFound, NotFound):
            continue  # a pulled parent that was pruned: its content hash still names it
    return out


def make_attester(config: Any, g: Any, lock_path: Path | None, reports: Path, client: Any, rc: Any, revision: str,
                  release: str) -> Callable[[Any, str], dict[str, Any]]:  # with .security_pins(image)
    """A function (image plan, pushed digest) -> the release file's attestations entry of that image."""
    lock = lock_for(config, lock_path)
    config_file = Path(config.path)
    inputs_common = dict(config_sha256=provenance.file_sha256(config_file),
                         lock_sha256=provenance.file_sha256(lock_path or config_file.parent / "images.lock"), revision=revision,
                         builder_id=provenance.builder_id(getattr(config.site, "builder_id", None)), invocation=release)
    refs = Referrers(rc)
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    class Attester:
        """attest(plan, digest) -> the release file's entry; security_pins(image) for the release notes."""

        def __call__(self, p: Any, digest: str) -> dict[str, Any]:
            return attest(p, digest)

        def security_pins(self, image: str) -> dict[str, tuple[str, str]]:
            return security_pins(image_facts(config, g, lock, image))

    def attest(p: Any, digest: str) -> dict[str, Any]:
        facts = image_facts(config, g, lock, p.image)
        if facts.tag != p.local_tag:
            raise OperationError(f"{p.image}: the lock's view names {facts.tag}, publish pushes {p.local_tag}")
        inv = inventory_of(client, reports, p.image, p.local_tag)
        subject = refs.subject(p.path, digest)
        doc = sbom.build(facts, inv, image_id=p.image_id, digest=digest, repository=p.repository)
        attrs = client.api.inspect_image(p.local_tag)
        stmt = provenance.build(facts, provenance.Inputs(parent_ids=parent_ids(client, facts), finished=str(attrs.get("Created", "")),
                                                         **inputs_common),
                                repository=p.repository, digest=digest)
        text = provenance.dumps(stmt)
        problem = provenance.validate(text)
        if problem:
            raise OperationError(f"the provenance of {p.image} is not a valid SLSA v1 statement: {problem}")
        out = {}
        for kind, media, payload, title, packages in (("sbom", sbom.MEDIA_TYPE, doc.text.encode(), "sbom.cdx.json", doc.packages),
                                                      ("provenance", provenance.MEDIA_TYPE, text.encode(), "provenance.intoto.json", 0)):
            entry = refs.attach(p.path, subject, media, payload, kind=kind, title=title, created=created)
            out[kind] = Attested(kind, entry.digest, media, len(payload), packages).record()
        out["inventory"] = inv.source
        return out

    return Attester()
