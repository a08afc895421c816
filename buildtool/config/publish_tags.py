"""tags.repository and tags.publish: where each image is published, checked where the text is known.

An image's full reference is `<registry>/<namespace>/<repository>:<tag>`; the site overlay gives the
registry and namespace, images.yaml the rest:

    tags.repository   the repository template of every image (default "{image}": its name)
    tags.moving       the moving tags of every image that no `publish` entry gives moving tags
    tags.publish      entries, each with `on` (a matrix selector) and/or `group`, applied in order to
                      the images they match: `repository` and `release` of the last match win, the
                      `moving` lists of every match add up (and replace tags.moving for that image)

Templates name facts ({os.tag}, {onnxruntime.version}, ...) and {image}; an entry's `release` must
name {release} (the release tag of tags.release, e.g. 20261201.v1) so that every release gets its
own immutable tag. Facts are known only after expansion: plan/references.py fills and checks them.
"""

from __future__ import annotations

from typing import Any

from .model import PublishRule, Selector
from .schema import fail
from .source import KeyPath, SourceDoc
from .templating import parse

TAG_LITERAL = "letters, digits, '_', '.', '-'"
REPO_LITERAL = "lowercase letters, digits, '.', '_', '-', '/'"


def _literals_ok(template: str, allowed: str) -> bool:
    return all(all(c in allowed for c in literal) for literal, _ in parse(template))


_TAG_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
_REPO_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_.-/"


def check_repository_template(doc: SourceDoc, path: KeyPath, template: str) -> None:
    if not _literals_ok(template, _REPO_CHARS):
        raise fail(doc, path, f"repository template {template!r} has text that cannot be in an image repository",
                   f"literal text of {REPO_LITERAL} and {{fact}} placeholders", template)


def check_tag_template(doc: SourceDoc, path: KeyPath, template: str, *, release: bool = False) -> None:
    if not _literals_ok(template, _TAG_CHARS):
        raise fail(doc, path, f"tag template {template!r} has text that cannot be in an image tag",
                   f"literal text of {TAG_LITERAL} and {{fact}} placeholders", template)
    names = [n for _, n in parse(template) if n is not None]
    if release and "release" not in names:
        raise fail(doc, path, "a release tag template must name {release} (else two releases would share one immutable tag)",
                   "a template such as '{onnxruntime.version}-cuda-{release}'", template)
    if not release and "release" in names:
        raise fail(doc, path, "a moving tag cannot name {release} (a release's own tag is immutable: use `release`)",
                   "a template of facts, e.g. 'latest-cuda' or '{onnxruntime.version}-cuda'", template)


def publish_rules(doc: SourceDoc, tags: dict[str, Any], selector, groups: set[str]) -> tuple[PublishRule, ...]:
    """tags.publish as typed rules; `selector(path, raw)` makes a Selector (the loader's, with its axes and properties)."""
    check_repository_template(doc, ("tags", "repository"), tags["repository"])
    out = []
    for i, entry in enumerate(tags.get("publish", [])):
        path = ("tags", "publish", i)
        if "repository" in entry:
            check_repository_template(doc, path + ("repository",), entry["repository"])
        if "release" in entry:
            check_tag_template(doc, path + ("release",), entry["release"], release=True)
        for j, template in enumerate(entry.get("moving", [])):
            check_tag_template(doc, path + ("moving", j), template)
        group = entry.get("group", "")
        if group and group not in groups:
            raise fail(doc, path + ("group",), f"unknown group {group!r}", "one of " + ", ".join(sorted(groups)), group)
        if not any(k in entry for k in ("repository", "release", "moving")):
            raise fail(doc, path, "a publish entry sets nothing", "at least one of repository, release, moving", entry)
        on: Selector | None = selector(path + ("on",), entry["on"]) if "on" in entry else None
        out.append(PublishRule(index=i, on=on, group=group, repository=entry.get("repository"), release=entry.get("release"),
                               moving=tuple(entry["moving"]) if "moving" in entry else None, line=doc.where(path).line or 0,
                               lines={k: doc.where(path + (k,)).line or 0 for k in ("repository", "release", "moving") if k in entry}))
    return tuple(out)
