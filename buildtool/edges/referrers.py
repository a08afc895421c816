"""The registry's edge, continued: OCI artifacts that refer to an image (SBOM, provenance), with the
OCI distribution spec's referrers API or, where a registry has none (distribution 2.8), its
referrers tag schema fallback.

An artifact is an OCI image manifest with `artifactType`, the empty config
(application/vnd.oci.empty.v1+json, `{}`), one layer (the document) and `subject` = the image's
descriptor; it is pushed by digest (untagged). Then, per the spec's "Unavailable Referrers API":
when GET /v2/<name>/referrers/<digest> answers 404, the client maintains an image index tagged
`<alg>-<encoded>` (the subject digest's algorithm truncated to 32 characters, `-`, its encoded part
truncated to 64) listing the descriptors of every referrer, each with its artifactType and
annotations; earlier buildtool entries of the same kind are replaced, other tools' entries kept.

Built on RegistryClient's request and auth primitives (buildtool/edges/registry.py): the same
credential policy, the same masking; an upload URL the registry answers with is followed only on
the registry's own origin.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .registry import RegistryClient

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
EMPTY_BYTES = b"{}"
KIND_ANNOTATION = "io.buildtool.attestation"  # sbom | provenance: which buildtool entry an index entry is
TITLE = "org.opencontainers.image.title"
CREATED = "org.opencontainers.image.created"
_TAG_BAD = re.compile(r"[^a-zA-Z0-9_.-]")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Descriptor:
        return cls(str(d.get("mediaType", "")), str(d.get("digest", "")), int(d.get("size", 0)), str(d.get("artifactType", "")),
                   dict(d.get("annotations") or {}))


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def referrers_tag(digest: str) -> str:
    """The referrers tag schema: <alg truncated to 32>-<encoded truncated to 64>, characters a tag cannot hold replaced by '-'."""
    alg, _, encoded = digest.partition(":")
    return _TAG_BAD.sub("-", f"{alg[:32]}-{encoded[:64]}")


def artifact_manifest(subject: Descriptor, artifact_type: str, payload: bytes, annotations: dict[str, str], title: str) -> bytes:
    """The artifact's image manifest (bytes as pushed: its digest is what the index and the release file name)."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_CONFIG, "digest": sha256_digest(EMPTY_BYTES), "size": len(EMPTY_BYTES), "data": "e30="},
        "layers": [{"mediaType": artifact_type, "digest": sha256_digest(payload), "size": len(payload), "annotations": {TITLE: title}}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": dict(sorted(annotations.items())),
    }
    return json.dumps(manifest, indent=2, sort_keys=True).encode()


def merged_index(existing: dict[str, Any] | None, entry: Descriptor) -> bytes:
    """The referrers index with `entry` added: an entry of the same digest, or a buildtool entry of the same kind, is replaced."""
    kind = entry.annotations.get(KIND_ANNOTATION)
    kept = []
    for d in (existing or {}).get("manifests", []) or []:
        if not isinstance(d, dict):
            continue
        same_kind = kind is not None and (d.get("annotations") or {}).get(KIND_ANNOTATION) == kind
        if d.get("digest") != entry.digest and not same_kind:
            kept.append(d)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*kept, entry.to_json()]}
    return json.dumps(index, indent=2, sort_keys=True).encode()


class Referrers:
    """Push and list the artifacts of one repository's manifests."""

    def __init__(self, client: RegistryClient) -> None:
        self.rc = client

    def _scope(self, repo: str, push: bool = False) -> str:
        return f"repository:{repo}:{'pull,push' if push else 'pull'}"

    # Blobs and manifests --------------------------------------------------------------------------

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = sha256_digest(data)
        head = self.rc._get(f"/v2/{repo}/blobs/{digest}", self._scope(repo, True), method="HEAD")
        if head.status_code == 200:
            return digest
        r = self.rc._get(f"/v2/{repo}/blobs/uploads/", self._scope(repo, True), method="POST", headers={"Content-Length": "0"})
        if r.status_code != 202:
            raise self.rc._fail(f"starting a blob upload to {repo} answered {r.status_code}")
        path = self._same_origin(r.headers.get("Location", ""))
        sep = "&" if "?" in path else "?"
        r = self.rc._get(f"{path}{sep}digest={urllib.parse.quote(digest)}", self._scope(repo, True), method="PUT", data=data,
                         headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
        if r.status_code != 201:
            raise self.rc._fail(f"uploading blob {digest} to {repo} answered {r.status_code}")
        return digest

    def _same_origin(self, location: str) -> str:
        """The upload URL's path: a relative Location as is; an absolute one only on the registry's own origin."""
        if not location:
            raise self.rc._fail("a blob upload answered without a Location")
        parsed = urllib.parse.urlsplit(location)
        if parsed.scheme or parsed.netloc:
            if f"{parsed.scheme}://{parsed.netloc}" != self.rc.base:
                raise self.rc._fail(f"the blob upload points at another origin ({parsed.scheme}://{parsed.netloc}); not following it")
        return parsed.path + (f"?{parsed.query}" if parsed.query else "")

    def put_manifest(self, repo: str, reference: str, body: bytes, media_type: str) -> str:
        r = self.rc._get(f"/v2/{repo}/manifests/{reference}", self._scope(repo, True), method="PUT", data=body,
                         headers={"Content-Type": media_type})
        if r.status_code != 201:
            detail = r.text[:300].replace("\n", " ") if r.text else ""
            raise self.rc._fail(f"PUT manifest {repo}:{reference} answered {r.status_code} {detail}".rstrip())
        digest = sha256_digest(body)
        said = r.headers.get("Docker-Content-Digest")
        if said and said != digest:
            raise self.rc._fail(f"PUT manifest {repo}:{reference}: the registry says {said}, the bytes hash to {digest}")
        return digest

    def get_manifest(self, repo: str, reference: str, accept: str) -> tuple[bytes, str] | None:
        r = self.rc._get(f"/v2/{repo}/manifests/{reference}", self._scope(repo), headers={"Accept": accept})
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise self.rc._fail(f"GET manifest {repo}:{reference} answered {r.status_code}")
        if reference.startswith("sha256:") and sha256_digest(r.content) != reference:
            raise self.rc._fail(f"GET manifest {repo}@{reference}: the bytes hash to {sha256_digest(r.content)}")
        return r.content, r.headers.get("Content-Type", "")

    def subject(self, repo: str, digest: str) -> Descriptor:
        """The image's own descriptor (media type and size as the registry serves it)."""
        from .registry import MANIFEST_TYPES

        got = self.get_manifest(repo, digest, MANIFEST_TYPES)
        if got is None:
            raise self.rc._fail(f"{repo}@{digest} is not in the registry")
        raw, media = got
        return Descriptor(media.split(";")[0].strip() or json.loads(raw).get("mediaType", ""), digest, len(raw))

    # Referrers --------------------------------------------------------------------------------------

    def api(self, repo: str, digest: str) -> list[dict[str, Any]] | None:
        """The referrers API's answer, or None when the registry has no referrers API (404)."""
        r = self.rc._get(f"/v2/{repo}/referrers/{digest}", self._scope(repo), headers={"Accept": OCI_INDEX})
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise self.rc._fail(f"GET referrers of {repo}@{digest} answered {r.status_code}")
        try:
            data = r.json()
        except ValueError:
            return None
        return list(data.get("manifests") or []) if isinstance(data, dict) and data.get("mediaType", OCI_INDEX) == OCI_INDEX else None

    def tag_index(self, repo: str, digest: str) -> dict[str, Any] | None:
        got = self.get_manifest(repo, referrers_tag(digest), OCI_INDEX)
        if got is None:
            return None
        try:
            data = json.loads(got[0])
        except ValueError:
            raise self.rc._fail(f"{repo}:{referrers_tag(digest)} is not a JSON image index") from None
        if not isinstance(data, dict) or data.get("mediaType") != OCI_INDEX:
            raise self.rc._fail(f"{repo}:{referrers_tag(digest)} is not an OCI image index ({data.get('mediaType') if isinstance(data, dict) else '?'})")
        return data

    def referrers(self, repo: str, digest: str) -> tuple[list[Descriptor], str]:
        """(descriptors of the referrers of `digest`, "api" | "tag schema")."""
        found = self.api(repo, digest)
        if found is not None:
            return [Descriptor.from_json(d) for d in found], "api"
        index = self.tag_index(repo, digest)
        return [Descriptor.from_json(d) for d in (index or {}).get("manifests", []) if isinstance(d, dict)], "tag schema"

    def attach(self, repo: str, subject: Descriptor, artifact_type: str, payload: bytes, *, kind: str, title: str,
               created: str = "") -> Descriptor:
        """Push `payload` as an artifact referring to `subject`; returns the artifact manifest's descriptor."""
        self.push_blob(repo, EMPTY_BYTES)
        self.push_blob(repo, payload)
        annotations = {KIND_ANNOTATION: kind, **({CREATED: created} if created else {})}
        body = artifact_manifest(subject, artifact_type, payload, annotations, title)
        digest = self.put_manifest(repo, sha256_digest(body), body, OCI_MANIFEST)
        entry = Descriptor(OCI_MANIFEST, digest, len(body), artifact_type, annotations)
        if self.api(repo, subject.digest) is None:  # no referrers API: the tag schema fallback
            self.put_manifest(repo, referrers_tag(subject.digest), merged_index(self.tag_index(repo, subject.digest), entry), OCI_INDEX)
        return entry

    def fetch(self, repo: str, entry: Descriptor) -> tuple[dict[str, Any], bytes]:
        """(the artifact manifest, its first layer's bytes), both checked against their digests."""
        got = self.get_manifest(repo, entry.digest, f"{OCI_MANIFEST}, {OCI_INDEX}")
        if got is None:
            raise self.rc._fail(f"the referrer {entry.digest} of {repo} is listed but not in the registry")
        manifest = json.loads(got[0])
        layers = manifest.get("layers") or []
        if not layers:
            return manifest, b""
        blob_digest = layers[0].get("digest", "")
        data = self.rc.blob(repo, blob_digest)
        if sha256_digest(data) != blob_digest:
            raise self.rc._fail(f"blob {blob_digest} of {repo}: the bytes hash to {sha256_digest(data)}")
        return manifest, data
