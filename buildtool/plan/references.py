"""Each image's repository and tags (tags.repository, tags.moving, tags.publish), filled and checked. Pure.

The result is what `list` shows and `publish` pushes: `<registry>/<namespace>/<repository>:<tag>`,
the site's registry and namespace in front. Every repository is checked against the OCI repository
grammar and every tag against the tag grammar; two images that would get one full reference
(repository:tag) are an error naming the images.yaml line and key that gave the second one.
Rendered text collapses empty parts like image names do ("a--b" -> "a-b", no leading/trailing '-').
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..config.model import Config, PublishRule, Variant
from ..config.schema import IMAGE_REPO, IMAGE_TAG, MAX_IMAGE_NAME
from ..config.templating import fill
from ..errors import Location, UserError

RELEASE = "release"
SAMPLE_RELEASE = {"date": "20260101", "n": 1}
TAG_EXPECTED = "a tag (OCI): a letter, digit or '_', then letters, digits, '_', '.', '-', at most 128 characters"
REPO_EXPECTED = ("an image repository (OCI): '/'-separated lowercase components of letters and digits joined by '.', '_', '__' or '-', "
                 f"at most {MAX_IMAGE_NAME} characters")


@dataclass(frozen=True)
class ImageRefs:
    repository: str  # without registry and namespace
    moving: tuple[str, ...]
    release_parts: tuple[str, str]  # the release tag is parts[0] + <release> + parts[1]

    def release_tag(self, release: str) -> str:
        return f"{self.release_parts[0]}{release}{self.release_parts[1]}"

    def release_template(self, template: str) -> str:
        """The release tag with tags.release in place of {release}, e.g. '1.24.4-cuda-{date}.v{n}'."""
        return self.release_tag(template)


@dataclass(frozen=True)
class _Source:
    key: str
    line: int


def _collapse(text: str) -> str:
    if "--" in text or text.startswith("-") or text.endswith("-") or "-/" in text or "/-" in text:
        text = "/".join(re.sub(r"-{2,}", "-", part).strip("-") for part in text.split("/"))
    return text


def _fill(config: Config, template: str, values: dict[str, Any], src: _Source) -> str:
    try:
        return _collapse(fill(template, values))
    except KeyError as exc:
        raise UserError(f"{src.key} names an unknown fact {{{exc.args[0]}}}", where=Location(config.path, src.line), key=src.key,
                        expected="{image} or facts such as {os.tag}, {mpi.tag}, {onnxruntime.version}, {accelerator.tag}",
                        found=template) from None


def _matches(rule: PublishRule, variant: Variant, groups: dict[str, set[str]]) -> bool:
    if rule.on is not None and not rule.on.matches(dict(variant.combo)):
        return False
    return not rule.group or variant.name in groups.get(rule.group, set())


def image_refs(config: Config, variant: Variant, groups: dict[str, set[str]]) -> tuple[ImageRefs, dict[str, _Source]]:
    """The image's references, and where each of its tags (and its repository) came from."""
    tags = config.tags
    repo_t, repo_src = tags.repository, _Source("tags.repository", tags.repository_line or tags.line)
    release_t, release_src = "{release}", _Source("tags.release", tags.line)
    moving: list[tuple[str, _Source]] | None = None
    for rule in tags.publish:
        if not _matches(rule, variant, groups):
            continue
        key = f"tags.publish[{rule.index}]"
        if rule.repository is not None:
            repo_t, repo_src = rule.repository, _Source(f"{key}.repository", rule.lines.get("repository", rule.line))
        if rule.release is not None:
            release_t, release_src = rule.release, _Source(f"{key}.release", rule.lines.get("release", rule.line))
        if rule.moving is not None:
            moving = (moving or []) + [(t, _Source(f"{key}.moving[{j}]", rule.lines.get("moving", rule.line))) for j, t in enumerate(rule.moving)]
    if moving is None:
        moving = [(t, _Source(f"tags.moving[{j}]", tags.moving_line or tags.line)) for j, t in enumerate(tags.moving)]
    values = {**variant.facts, "image": variant.name}
    repository = _fill(config, repo_t, values, repo_src)
    if not IMAGE_REPO.fullmatch(repository) or len(repository) > MAX_IMAGE_NAME:
        raise UserError(f"{repo_src.key} renders an invalid repository {repository!r} for image {variant.name}",
                        where=Location(config.path, repo_src.line), key=repo_src.key, expected=REPO_EXPECTED, found=repo_t)
    sources = {"repository": repo_src}
    rendered: list[str] = []
    for template, src in moving:
        tag = _fill(config, template, values, src)
        _check_tag(config, tag, template, src, variant)
        if tag not in rendered:
            rendered.append(tag)
            sources[tag] = src
    marker = "\0release\0"
    filled = _fill(config, release_t, {**values, RELEASE: marker}, release_src)
    before, _, after = filled.partition(marker)
    refs = ImageRefs(repository, tuple(rendered), (before, after))
    sample = refs.release_tag(fill(tags.release, SAMPLE_RELEASE))
    _check_tag(config, sample, release_t, release_src, variant)
    sources[sample] = release_src
    return refs, sources


def _check_tag(config: Config, tag: str, template: str, src: _Source, variant: Variant) -> None:
    if not IMAGE_TAG.fullmatch(tag):
        raise UserError(f"{src.key} renders an invalid image tag {tag!r} for image {variant.name}", where=Location(config.path, src.line),
                        key=src.key, expected=TAG_EXPECTED, found=template)


def all_refs(config: Config, variants: tuple[Variant, ...], groups: dict[str, list[str]]) -> dict[str, ImageRefs]:
    """image name -> its references; raises UserError on a bad template or two images on one repository:tag."""
    members = {g: set(names) for g, names in groups.items()}
    out: dict[str, ImageRefs] = {}
    seen: dict[str, tuple[str, _Source]] = {}
    for v in variants:
        refs, sources = image_refs(config, v, members)
        out[v.name] = refs
        for tag, src in sources.items():
            if tag == "repository":
                continue
            ref = f"{refs.repository}:{tag}"
            if ref in seen and seen[ref][0] != v.name:
                first, first_src = seen[ref]
                raise UserError(f"reference collision: images {first} and {v.name} would both be published as {ref}",
                                where=Location(config.path, src.line), key=src.key,
                                expected="a repository and tags that tell every image apart (a moving tag such as 'latest' on one image "
                                         "of a repository: narrow the entry's `on`)",
                                found=(f"{ref}, both from {src.key} (line {src.line})" if first_src == src else
                                       f"{ref} from {first_src.key} (line {first_src.line}) and from {src.key} (line {src.line})"))
            seen[ref] = (v.name, src)
    return dict(sorted(out.items()))

