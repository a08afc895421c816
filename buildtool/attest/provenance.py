"""An image's provenance: an in-toto Statement v1 with a SLSA Provenance v1 predicate.

Built as plain data and checked with the in-toto-attestation package's own types: the predicate
is parsed into its `Provenance` protobuf (unknown or mistyped fields are errors), the statement
into `Statement` and validated with the package's `Statement.validate()` and
`ResourceDescriptor.validate()`; on top, what SLSA v1 requires (buildType, builder.id, digests).

buildType names buildtool and its version. externalParameters: the images.yaml and images.lock
digests, the git revision, the image, its node id and content hash. resolvedDependencies: the
base (pull digest, or the bootstrap recipe with the lock's manifest digest and snapshot time),
every parent layer image (its config digest on the build engine), every .deb, pip wheel and
other download the layers fetch, each with its sha256. builder.id: the site overlay's
`builder_id` ($BUILDTOOL_BUILDER_ID), else the CI workflow (GitHub Actions), else this host.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import OperationError
from .layers import ImageFacts

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = f"https://buildtool.invalid/build-types/layer-dag/v1?buildtool={__version__}"
MEDIA_TYPE = "application/vnd.in-toto+json"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Inputs:
    """What the build read, beyond the lock's view of the image."""

    config_sha256: str
    lock_sha256: str
    revision: str
    parent_ids: dict[str, str]  # node id -> image id (sha256:...) on the build engine
    builder_id: str
    invocation: str = ""  # e.g. the release tag
    started: str = ""  # RFC 3339
    finished: str = ""


def file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise OperationError(f"cannot read {path} for the provenance: {exc.strerror}") from None


def builder_id(site_value: str | None, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if site_value:
        return site_value
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_WORKFLOW_REF"):
        return f"{env.get('GITHUB_SERVER_URL', 'https://github.com').rstrip('/')}/{env['GITHUB_WORKFLOW_REF']}"
    return f"urn:buildtool:host:{socket.gethostname()}"


def build(facts: ImageFacts, inputs: Inputs, *, repository: str, digest: str) -> dict[str, Any]:
    """The statement as a dict (serialize with `dumps`)."""
    b = facts.base
    deps: list[dict[str, Any]] = []
    base_node = facts.layers[0].node
    if b.image and "@sha256:" in b.image:
        deps.append({"name": f"base {b.key}", "uri": f"docker://{b.image}", "digest": {"sha256": b.image.rsplit("@sha256:", 1)[1]}})
    if b.bootstrap:
        recipe = {k: v for k, v in b.bootstrap.items() if v}
        deps.append({"name": f"base {b.key} (bootstrap)", "uri": b.bootstrap.get("mirror", ""), "digest": {"sha256": b.content} if b.content else {},
                     "annotations": {**recipe, "snapshot": b.resolved_at,
                                     "indexes": {suite: {"date": date, "sha256": sha} for suite, date, sha in b.indexes}}})
    for node, image_id in sorted(inputs.parent_ids.items()):
        if node != facts.node and node != base_node:
            layer = next((x for x in facts.layers if x.node == node), None)
            deps.append({"name": f"layer {node}", "uri": layer.tag if layer else node, "digest": {"sha256": image_id.removeprefix("sha256:")}})
    for layer in facts.layers:
        for d in layer.debs:
            root = b.archives.get(d.archive, d.archive).rstrip("/")
            deps.append({"name": f"{d.name}_{d.version}_{d.arch}.deb", "uri": f"{root}/{d.filename}", "digest": {"sha256": d.sha256},
                         "annotations": {"layer": layer.node, "archive": d.archive}})
        for p in layer.pip:
            deps.append({"name": f"{p.name}=={p.version}", "uri": f"pkg:pypi/{p.name.lower()}@{p.version}", "digest": {"sha256": p.sha256},
                         "annotations": {"layer": layer.node}})
        for dl in layer.downloads:
            deps.append({"name": dl.key, "uri": dl.url, "digest": {"sha256": dl.sha256}, "annotations": {"layer": layer.node}})
    for dep in deps:
        if not dep.get("digest"):
            dep.pop("digest", None)
    predicate: dict[str, Any] = {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "images.yaml": {"sha256": inputs.config_sha256},
                "images.lock": {"sha256": inputs.lock_sha256},
                "revision": inputs.revision,
                "image": facts.image,
                "node": facts.node,
                "contentHash": facts.content_hash,
            },
            "internalParameters": {"buildtool": __version__, "tag": facts.tag},
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {"id": inputs.builder_id, "version": {"buildtool": __version__}},
            "metadata": {k: v for k, v in (("invocationId", inputs.invocation), ("startedOn", inputs.started),
                                           ("finishedOn", inputs.finished)) if v},
        },
    }
    return {"_type": STATEMENT_TYPE, "subject": [{"name": repository, "digest": {"sha256": digest.removeprefix("sha256:")}}],
            "predicateType": PREDICATE_TYPE, "predicate": predicate}


def dumps(statement: dict[str, Any]) -> str:
    return json.dumps(statement, indent=2, sort_keys=True) + "\n"


def validate(text: str) -> str | None:
    """None when `text` is an in-toto Statement v1 with a valid SLSA Provenance v1 predicate, else why not."""
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement
    from in_toto_attestation.v1.statement_pb2 import Statement as StatementPb

    try:
        data = json.loads(text)
        stmt = Statement.copy_from_pb(json_format.ParseDict(data, StatementPb()))
        stmt.validate()
        if stmt.pb.predicate_type != PREDICATE_TYPE:
            return f"predicateType is {stmt.pb.predicate_type!r}, not {PREDICATE_TYPE}"
        prov = json_format.ParseDict(data["predicate"], provenance_pb2.Provenance())
    except (ValueError, KeyError, TypeError, json_format.ParseError) as exc:
        return str(exc)[:500]
    for s in stmt.pb.subject:
        if not all(HEX64.match(v) for k, v in s.digest.items() if k == "sha256"):
            return f"subject {s.name}: a sha256 digest that is not 64 hex digits"
    if not prov.build_definition.build_type:
        return "buildDefinition.buildType is empty"
    if not prov.build_definition.external_parameters:
        return "buildDefinition.externalParameters is empty"
    if not prov.run_details.builder.id:
        return "runDetails.builder.id is empty"
    for i, dep in enumerate(prov.build_definition.resolved_dependencies):
        try:
            ResourceDescriptor.copy_from_pb(dep).validate()
        except ValueError as exc:
            return f"resolvedDependencies[{i}]: {exc}"
        if "sha256" in dep.digest and not HEX64.match(dep.digest["sha256"]):
            return f"resolvedDependencies[{i}] ({dep.name}): a sha256 that is not 64 hex digits"
    return None
