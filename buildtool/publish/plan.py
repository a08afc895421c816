"""The publish plan (pure): which images go where under which tags, the release number, and the verify
records that allow an image to be published. `push.py` carries it out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config.model import Config
from ..edges.registry import split_ref
from ..errors import Location, UserError
from ..render.generate import Generated
from .index import PlatformImage
from .release import next_release_number, record_tags, release_pattern, release_tag, safe_name

# The plan -------------------------------------------------------------------------------------------------


@dataclass
class ImagePlan:
    image: str
    node: str
    local_tag: str  # buildtool/<node>:h-<hash20>
    content_hash: str
    repository: str  # <registry>/<namespace>/<image>
    path: str  # <namespace>/<image>: the repository inside the registry
    immutable: list[str]  # release tag, content-hash tag
    moving: list[str]
    image_id: str = ""
    components: dict[str, str] = field(default_factory=dict)
    verified: str = ""  # "run <id>" or why not
    python_bin: str = ""
    platforms: list[PlatformImage] = field(default_factory=list)  # >= 2: published as an OCI index (publish/index.py)
    release_parts: tuple[str, str] = ("", "")  # the image's release tag is parts[0] + <release> + parts[1]

    def release_tag(self, release: str) -> str:
        return f"{self.release_parts[0]}{release}{self.release_parts[1]}"

    @property
    def references(self) -> list[str]:
        """Every full reference this image is pushed as."""
        return [f"{self.repository}:{t}" for t in [*self.immutable, *self.moving]]


@dataclass
class PublishPlan:
    registry: str
    namespace: str
    date: str
    release: str
    release_source: str  # why this N: "new", "resuming ..."
    images: list[ImagePlan]
    registry_note: str = ""  # dry run: why the registry was not consulted


@dataclass
class PublishedImage:
    image: str
    repository: str
    digest: str
    tags: list[str]
    moving: list[str]
    layers_pushed: int = 0
    layers_existing: int = 0
    seconds: float = 0.0
    platforms: dict[str, str] = field(default_factory=dict)  # a multi-platform image: platform -> its manifest digest


@dataclass
class Options:
    dry_run: bool = False
    output_format: str = "table"
    releases: Path = Path("releases")
    reports: Path = Path("reports")
    state: Path = Path(".state")
    logs: Path = Path("logs")
    verify: bool = False
    jobs: int = 2
    date: str | None = None  # YYYYMMDD (UTC today when None)
    platforms: tuple[str, ...] | None = None  # the platforms to publish (None: every platform an image is made for)
    lock: Path | None = None  # images.lock (None: beside the config); the SBOM and provenance read it
    attest: bool = True  # attach each image's SBOM and provenance to its digest (buildtool/publish/attest.py)


# Verification records ---------------------------------------------------------------------------------------


def verify_records(reports: Path) -> dict[str, dict[str, Any]]:
    """content-hash tag -> the newest verify record of it: {"run", "ok", "image", "error"}.

    Runs are read newest first (run ids start with a UTC timestamp); the newest verdict on a
    tag wins, so a later failing run withdraws an earlier pass.
    """
    out: dict[str, dict[str, Any]] = {}
    if not reports.is_dir():
        return out
    runs = sorted((p for p in reports.glob("*/summary.json")), key=lambda p: (p.parent.name, p.stat().st_mtime), reverse=True)
    for path in runs:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for entry in data.get("images", []):
            tag = entry.get("tag")
            if tag and tag not in out:
                out[tag] = {"run": data.get("run", path.parent.name), "ok": bool(entry.get("ok")), "image": entry.get("image", ""),
                            "error": entry.get("error", "")}
    return out


def verification_problems(images: list[ImagePlan], records: dict[str, dict[str, Any]]) -> list[str]:
    """Sets ImagePlan.verified; returns one phrase per image that may not be published."""
    problems = []
    for p in images:
        rec = records.get(p.local_tag)
        if rec is None:
            p.verified = "never verified"
            problems.append(f"{p.image} (no verify record for {p.local_tag})")
        elif not rec["ok"]:
            p.verified = f"failed in run {rec['run']}"
            problems.append(f"{p.image} (checks failed in verify run {rec['run']})")
        else:
            p.verified = f"run {rec['run']}"
    return problems


# Building the plan ---------------------------------------------------------------------------------------------


MAX_FULL_NAME = 255


def repository_path(namespace: str, image: str) -> str:
    return f"{namespace.strip('/')}/{image}" if namespace.strip("/") else image


def image_plans(config: Config, g: Generated, chosen: list) -> list[ImagePlan]:
    """Per image: <registry>/<namespace>/<repository> (plan/references.py) and its tags; the release tag is added once chosen."""
    site = config.site
    out = []
    for v in chosen:
        node = g.dag.variant_node[v.name]
        rendered = g.rendered[node]
        refs = g.references[v.name]
        _repo, content_tag = split_ref(rendered.tag)
        path = repository_path(site.namespace, refs.repository)
        if len(f"{site.registry}/{path}") > MAX_FULL_NAME:
            raise UserError(f"image {v.name!r} in namespace {site.namespace!r} of {site.registry} makes a name of more than {MAX_FULL_NAME} characters",
                            where=Location(config.path, config.tags.repository_line or config.tags.line), key="tags.repository",
                            expected=f"<registry>/<namespace>/<repository> of at most {MAX_FULL_NAME} characters (OCI)", found=f"{site.registry}/{path}")
        out.append(ImagePlan(image=v.name, node=node, local_tag=rendered.tag, content_hash=rendered.hash, repository=f"{site.registry}/{path}",
                             path=path, immutable=[content_tag], moving=list(refs.moving), release_parts=refs.release_parts,
                             python_bin=str(v.facts.get("python.bin") or "")))
    return out


def utc_date() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d")


def pending_path(state: Path, registry: str, namespace: str) -> Path:
    return state / f"publish-pending-{safe_name(registry, namespace)}.json"


def choose_release(template: str, date: str, images: list[ImagePlan], record: dict[str, Any], registry_tags: set[str],
                   pending: dict[str, Any] | None) -> tuple[str, str]:
    """(release tag, why). Resume a pending release of the same date when every image it already
    touched still has the same content; else 1 + the highest N of that date in the record or registry."""
    if pending and pending.get("date") == date and release_pattern(template, date).match(str(pending.get("release", ""))):
        touched = pending.get("images", {})
        same = all(touched.get(p.image, p.content_hash) == p.content_hash for p in images)
        if same and pending["release"] not in record_tags(record):
            return pending["release"], f"resuming the unfinished release {pending['release']}"
    n = next_release_number(template, date, record_tags(record) | registry_tags)
    return release_tag(template, date, n), "new"


def plan_json(plan: PublishPlan) -> dict[str, Any]:
    return {
        "registry": plan.registry, "namespace": plan.namespace, "release": plan.release, "release_source": plan.release_source,
        "registry_note": plan.registry_note,
        "images": [{"image": p.image, "local_tag": p.local_tag, "repository": p.repository, "immutable": p.immutable, "moving": p.moving,
                    "references": p.references,
                    "verified": p.verified, "components": p.components} for p in plan.images],
    }


def render_plan(plan: PublishPlan) -> str:
    lines = [f"publish plan: release {plan.release} ({plan.release_source}) to {plan.registry}/{plan.namespace}"]
    if plan.registry_note:
        lines.append(f"  note: {plan.registry_note}")
    lines.append("  step 1, immutable tags of every image:")
    for p in plan.images:
        lines.append(f"    {p.local_tag} -> {p.repository}:{{{', '.join(p.immutable)}}}  (verified: {p.verified})")
    lines.append("  step 2, only when step 1 succeeded for every image, moving tags:")
    for p in plan.images:
        lines.append(f"    {p.repository}:{{{', '.join(p.moving)}}}")
    return "\n".join(lines) + "\n"
