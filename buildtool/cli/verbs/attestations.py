"""`buildtool attestations REFERENCE`: what the registry has attached to an image digest, each checked.

Found with the referrers API, else the tag schema fallback (buildtool/edges/referrers.py). Each
referrer is fetched by digest; it must refer to that digest (`subject`), its document must hash to
its layer digest, and an SBOM / provenance must validate with its library (a provenance's subject
must be the image digest too). Exit 0: an SBOM and a provenance are attached and every referrer
passed; 1: one is missing or a referrer failed, or the registry failed; 2: a bad reference.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

from ...errors import OperationError, UserError
from ..common import EXIT_FAILED, EXIT_OK

NAME = "attestations"
HELP = "fetch the SBOM and provenance attached to a published image digest and check each refers to it"
REFERENCE = re.compile(r"^(?P<host>[A-Za-z0-9.-]+(?::[0-9]+)?)/(?P<path>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
                       r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("reference", help="HOST[:PORT]/NAMESPACE/IMAGE@sha256:... (or :TAG, resolved to its digest)")
    p.add_argument("--site", type=Path, default=None, help="site overlay YAML: credentials source, CA (default: $BUILDTOOL_SITE, else none)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output for people (table) or programs (json)")


def parse_reference(ref: str) -> tuple[str, str, str | None, str | None]:
    m = REFERENCE.fullmatch(ref)
    if not m or not (m.group("tag") or m.group("digest")):
        raise UserError("not an image reference with a digest or tag", key="REFERENCE",
                        expected="HOST[:PORT]/NAMESPACE/IMAGE@sha256:<64 hex> or HOST[:PORT]/NAMESPACE/IMAGE:TAG", found=ref)
    return m.group("host"), m.group("path"), m.group("tag"), m.group("digest")


def check_referrer(kind: str, manifest: dict[str, Any], payload: bytes, digest: str) -> list[str]:
    """Why an attached artifact does not hold (empty: it holds). Pure."""
    from ...attest import provenance, sbom

    problems = []
    if (manifest.get("subject") or {}).get("digest") != digest:
        problems.append(f"its subject is {(manifest.get('subject') or {}).get('digest')}, not {digest}")
    if kind == "sbom":
        why = sbom.validate(payload.decode("utf-8", errors="replace"))
        if why:
            problems.append(f"not valid CycloneDX {sbom.SPEC_VERSION}: {why}")
    elif kind == "provenance":
        text = payload.decode("utf-8", errors="replace")
        why = provenance.validate(text)
        if why:
            problems.append(f"not a valid SLSA v1 provenance statement: {why}")
        else:
            subjects = [s.get("digest", {}).get("sha256") for s in json.loads(text).get("subject", [])]
            if digest.removeprefix("sha256:") not in subjects:
                problems.append("the statement's subject is not this digest")
    return problems


def kind_of(artifact_type: str) -> str:
    from ...attest import provenance, sbom

    return {sbom.MEDIA_TYPE: "sbom", provenance.MEDIA_TYPE: "provenance"}.get(artifact_type, "other")


def run(args: argparse.Namespace) -> int:
    from ...config.site import load_site
    from ...edges.referrers import Referrers
    from ...edges.registry import Registry, RegistryClient

    host, path, tag, digest = parse_reference(args.reference)
    site = load_site(args.site, dict(os.environ))
    rc = RegistryClient(Registry.from_site(site, host=host))
    refs = Referrers(rc)
    if digest is None:
        digest = rc.manifest_digest(path, tag or "")
        if digest is None:
            raise OperationError(f"{host}/{path}:{tag} is not in the registry")
    found, via = refs.referrers(path, digest)
    rows = []
    for entry in found:
        kind = kind_of(entry.artifact_type)
        try:
            manifest, payload = refs.fetch(path, entry)
            problems = check_referrer(kind, manifest, payload, digest)
        except OperationError as exc:
            manifest, payload, problems = {}, b"", [str(exc)]
        rows.append({"kind": kind, "digest": entry.digest, "artifactType": entry.artifact_type, "size": len(payload),
                     "ok": not problems, "problems": problems})
    missing = [k for k in ("sbom", "provenance") if not any(r["kind"] == k for r in rows)]
    ok = not missing and all(r["ok"] for r in rows)
    result = {"reference": args.reference, "repository": f"{host}/{path}", "digest": digest, "via": via, "attestations": rows,
              "missing": missing, "ok": ok}
    if args.format == "json":
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(f"{host}/{path}@{digest}: {len(rows)} referrers (via the {'referrers API' if via == 'api' else 'referrers tag schema'})")
        for r in rows:
            print(f"  {r['kind']:<11} {r['digest']}  {r['artifactType']}  {r['size']} bytes  {'ok' if r['ok'] else 'FAILED: ' + '; '.join(r['problems'])}")
        for k in missing:
            print(f"  {k:<11} MISSING")
    return EXIT_OK if ok else EXIT_FAILED
