"""publish's steps for an image made for several platforms (the index itself is publish/index.py).

Kept beside push.py so the single-platform flow reads as before: push.py asks these for the extra
images to inspect and verify, hands over the push of a multi-platform image, and its moving tags.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..config.model import PLATFORMS
from ..edges.registry import Credentials, RegistryClient, RegistryError
from ..engine.registry_transfer import push_image
from ..errors import Location, UserError
from .index import descriptor, index_body, put_index
from .plan import PublishedImage

if TYPE_CHECKING:
    from .plan import ImagePlan, PublishPlan
    from .reporter import Reporter


def parse_platforms(text: str) -> tuple[str, ...] | None:
    """--platforms: 'all' (None) or a comma list of known platforms."""
    if text.strip() == "all":
        return None
    wanted = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in wanted if p not in PLATFORMS]
    if bad or not wanted:
        raise UserError(f"unknown platform {bad[0] if bad else text!r} in --platforms", where=Location("--platforms"), key="--platforms",
                        expected="all, or a comma list of " + ", ".join(PLATFORMS), found=text)
    return wanted


def inspect_platforms(client: Any, plans: list[ImagePlan]) -> list[str]:
    """Fills each platform image's id; the ones that are not built (besides linux/amd64's, which push.py inspects)."""
    from docker.errors import ImageNotFound, NotFound

    missing = []
    for p in plans:
        for x in p.platforms:
            if x.local_tag == p.local_tag:
                x.image_id = p.image_id
                continue
            try:
                x.image_id = client.api.inspect_image(x.local_tag)["Id"]
            except (ImageNotFound, NotFound):
                missing.append(f"{p.image} for {x.platform} ({x.local_tag}; buildtool build --platform {x.platform})")
    return missing


def platform_problems(plans: list[ImagePlan], records: dict[str, dict[str, Any]]) -> list[str]:
    """One phrase per platform image (besides linux/amd64's) without a passing verify record of its content hash."""
    problems = []
    for p in plans:
        for x in p.platforms:
            if x.local_tag == p.local_tag:
                continue
            rec = records.get(x.local_tag)
            x.verified = "never verified" if rec is None else (f"run {rec['run']}" if rec["ok"] else f"failed in run {rec['run']}")
            if rec is None or not rec["ok"]:
                problems.append(f"{p.image} on {x.platform} ({x.verified}: buildtool verify --platform {x.platform})")
    return problems


def push_platforms(client: Any, rc: RegistryClient, p: ImagePlan, plan: PublishPlan, creds: Credentials | None,
                   reporter: Reporter) -> PublishedImage:
    """Each platform's image under its content-hash tag, then the index under the release tag (p.immutable)."""
    t = time.monotonic()
    pushed_layers, all_layers = set(), set()
    for x in p.platforms:
        tag = x.local_tag.rsplit(":", 1)[-1]
        result = push_image(client, x.image_id, p.repository, tag, plan.registry, creds, on_event=reporter.log)
        x.digest = result.digest
        all_layers |= set(result.layers)
        pushed_layers |= {layer for layer, status in result.layers.items() if status == "Pushed"}
        reporter.say(f"    {x.platform}: {p.repository}:{tag}@{x.digest}")
    body = index_body([descriptor(rc, p.path, x.platform, x.digest) for x in p.platforms])
    digest = ""
    for tag in p.immutable:
        digest = put_index(rc, p.path, tag, body)
    return PublishedImage(p.image, p.repository, digest, list(p.immutable), [], len(pushed_layers), len(all_layers - pushed_layers),
                          time.monotonic() - t, {x.platform: x.digest for x in p.platforms})


def index_moving(rc: RegistryClient, p: ImagePlan, pub: PublishedImage, tag: str) -> None:
    """A moving tag of a multi-platform image: the same index, PUT under `tag`."""
    body = index_body([descriptor(rc, p.path, x.platform, x.digest) for x in p.platforms])
    got = put_index(rc, p.path, tag, body)
    if got != pub.digest:
        raise RegistryError(f"registry {rc.registry}: {p.repository}:{tag} got index {got}, expected {pub.digest}")
    pub.moving.append(tag)
