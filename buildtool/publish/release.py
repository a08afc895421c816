"""Release records and release notes: pure functions over plain data, plus the file edge.

Layout under the releases folder (committed), one set per registry + namespace, so the same
images.yaml published to two registries keeps two histories:

    releases/<registry>_<namespace>.json              the release record (newest release last)
    releases/<registry>_<namespace>/manifests/<image>.json   the image's package manifest at its
                                                      latest release (apt + pip; the next notes diff against it)
    releases/<registry>_<namespace>/notes/<release>.md       release notes

A release in the record: {"release", "date", "revision", "images": {image: {"repository",
"digest", "tags", "moving", "node", "content_hash", "components", "packages"}}}.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.templating import EXPECTED, TemplateSyntaxError, parse
from ..errors import Location, UserError
from ..render.writer import write_file_atomically
from .security import security_fixes

RECORD_VERSION = 1


# Tags ------------------------------------------------------------------------------------------


def render_template(template: str, values: dict[str, Any], *, key: str, config_path: str = "images.yaml", line: int | None = None) -> str:
    """str.format-like, but field names are looked up whole ("os.tag" is one key, not an attribute)."""
    out = []
    try:
        parsed = parse(template)
    except TemplateSyntaxError as exc:
        raise UserError(f"{key} template: {exc}", where=Location(config_path, line), key=key, expected=EXPECTED, found=template) from None
    for literal, name in parsed:
        out.append(literal)
        if name is None:
            continue
        if name not in values:
            raise UserError(f"{key} template names an unknown value {{{name}}}", where=Location(config_path, line), key=key,
                            expected=", ".join("{" + k + "}" for k in sorted(values)), found=template)
        out.append(str(values[name]))
    return "".join(out)


def release_pattern(template: str, date: str) -> re.Pattern[str]:
    """A regex matching the release tags of `date` made by `template`; group 'n' is the counter."""
    parts = []
    try:
        parsed = parse(template)
    except TemplateSyntaxError as exc:
        raise UserError(f"tags.release template: {exc}", key="tags.release", expected=EXPECTED, found=template) from None
    for literal, name in parsed:
        parts.append(re.escape(literal))
        if name is None:
            continue
        if name == "date":
            parts.append(re.escape(date))
        elif name == "n":
            parts.append(r"(?P<n>[0-9]+)")
        else:
            raise UserError(f"tags.release may only use {{date}} and {{n}}, found {{{name}}}", key="tags.release",
                            expected="a template such as {date}.v{n}", found=template)
    if "(?P<n>" not in "".join(parts):
        raise UserError("tags.release must contain {n} (the counter of releases on one date)", key="tags.release",
                        expected="a template such as {date}.v{n}", found=template)
    return re.compile("^" + "".join(parts) + "$")


def next_release_number(template: str, date: str, existing_tags: set[str]) -> int:
    """1 + the highest N among `existing_tags` that are release tags of `date` (1 when none)."""
    # A tag may carry the release inside it (an image's tags.publish `release`, e.g. 1.24.4-cuda-20261201.v2).
    inner = release_pattern(template, date).pattern.removeprefix("^").removesuffix("$")
    pattern = re.compile(rf"(?:^|(?<=[-_.])){inner}$")
    numbers = [int(m.group("n")) for t in existing_tags if (m := pattern.search(t))]
    return max(numbers, default=0) + 1


def release_tag(template: str, date: str, n: int) -> str:
    return render_template(template, {"date": date, "n": n}, key="tags.release")


# The record -----------------------------------------------------------------------------------------


def safe_name(registry: str, namespace: str) -> str:
    raw = f"{registry}_{namespace}".replace("/", "_").replace(":", "_")
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw)


@dataclass
class ReleaseFiles:
    root: Path
    registry: str
    namespace: str

    @property
    def name(self) -> str:
        return safe_name(self.registry, self.namespace)

    @property
    def record(self) -> Path:
        return self.root / f"{self.name}.json"

    def manifest(self, image: str) -> Path:
        return self.root / self.name / "manifests" / f"{image}.json"

    def notes(self, release: str) -> Path:
        return self.root / self.name / "notes" / f"{release}.md"

    def load(self) -> dict[str, Any]:
        return load_record(self.record, self.registry, self.namespace)


def empty_record(registry: str, namespace: str) -> dict[str, Any]:
    return {"version": RECORD_VERSION, "registry": registry, "namespace": namespace, "releases": []}


def load_record(path: Path, registry: str, namespace: str) -> dict[str, Any]:
    if not path.exists():
        return empty_record(registry, namespace)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"the release record is not readable JSON: {exc}", where=Location(str(path)), key="(file)",
                        expected="a release record written by buildtool publish") from None
    if not isinstance(data, dict) or not isinstance(data.get("releases"), list):
        raise UserError("the release record has no releases list", where=Location(str(path)), key="releases",
                        expected="a release record written by buildtool publish")
    return data


def record_tags(record: dict[str, Any]) -> set[str]:
    return {r["release"] for r in record["releases"]}


def previous_entry(record: dict[str, Any], image: str) -> tuple[str, dict[str, Any]] | None:
    """(release tag, image entry) of the newest release that has `image`."""
    for rel in reversed(record["releases"]):
        if image in rel.get("images", {}):
            return rel["release"], rel["images"][image]
    return None


def add_release(record: dict[str, Any], release: dict[str, Any]) -> dict[str, Any]:
    """A new record with `release` appended (a release of the same tag is replaced: a completed rerun)."""
    releases = [r for r in record["releases"] if r["release"] != release["release"]]
    return {**record, "version": RECORD_VERSION, "releases": [*releases, release]}


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def components_from_labels(labels: dict[str, str]) -> dict[str, str]:
    """Component versions as the image states them: io.buildtool.os, *.flavor and *.version labels."""
    out = {}
    for key, value in (labels or {}).items():
        if not key.startswith("io.buildtool."):
            continue
        short = key[len("io.buildtool."):]
        if short == "os" or short.endswith(".version") or short.endswith(".flavor"):
            out[short] = value
    return dict(sorted(out.items()))


# Package manifests ----------------------------------------------------------------------------------

MANIFEST_SCRIPT = r"""
dpkg-query -W -f '${Package}\t${Version}\n' 2>/dev/null
echo '@@pip'
for py in "$BT_PYTHON" python3 python; do
  if [ -n "$py" ] && command -v "$py" >/dev/null 2>&1; then
    "$py" -m pip list --format json --disable-pip-version-check --no-color 2>/dev/null && break
  fi
done
echo
"""


@dataclass
class Manifest:
    apt: dict[str, str] = field(default_factory=dict)
    pip: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"apt": dict(sorted(self.apt.items())), "pip": dict(sorted(self.pip.items()))}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(dict(data.get("apt") or {}), dict(data.get("pip") or {}))


def parse_manifest_output(text: str) -> Manifest:
    """Parse MANIFEST_SCRIPT's output: `name<TAB>version` lines, '@@pip', then pip's JSON."""
    apt_part, _, pip_part = text.partition("@@pip")
    apt = {}
    for line in apt_part.splitlines():
        name, sep, version = line.strip().partition("\t")
        if sep and name and version:
            apt[name] = version
    pip = {}
    pip_part = pip_part.strip()
    if pip_part:
        start = pip_part.find("[")
        try:
            rows = json.loads(pip_part[start:]) if start >= 0 else []
        except ValueError:
            rows = []
        for row in rows:
            if isinstance(row, dict) and row.get("name"):
                pip[_pip_name(row["name"])] = str(row.get("version", ""))
    return Manifest(apt, pip)


def _pip_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Diff:
    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def summary(self) -> str:
        return f"{len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed"


def diff_packages(old: dict[str, str], new: dict[str, str]) -> Diff:
    return Diff(
        added={k: new[k] for k in sorted(set(new) - set(old))},
        removed={k: old[k] for k in sorted(set(old) - set(new))},
        changed={k: (old[k], new[k]) for k in sorted(set(old) & set(new)) if old[k] != new[k]},
    )


# Release notes -----------------------------------------------------------------------------------------


@dataclass
class ImageNotes:
    image: str
    repository: str
    digest: str
    tags: list[str]
    components: dict[str, str]
    manifest: Manifest
    previous_release: str | None = None
    previous_digest: str | None = None
    previous_components: dict[str, str] | None = None
    previous_manifest: Manifest | None = None
    security_pins: dict[str, tuple[str, str]] = field(default_factory=dict)  # apt package -> (version, -security pocket), from the lock


def render_notes(release: str, registry: str, namespace: str, revision: str, images: list[ImageNotes]) -> str:
    out = [f"# Release {release}", ""]
    out.append(f"Registry `{registry}`, namespace `{namespace}`; {len(images)} images; source revision `{revision}`. "
               "Each image is compared with its previous release (apt packages from `dpkg-query -W`, pip packages from `pip list`).")
    out += ["", "| Image | Digest | Previous release | Changes |", "|---|---|---|---|"]
    for n in images:
        out.append(f"| {n.image} | `{n.digest[:19]}` | {n.previous_release or '—'} | {_change_summary(n)} |")
    for n in images:
        out += ["", f"## {n.image}", ""]
        out.append(f"- Pull: `{n.repository}@{n.digest}`")
        out.append(f"- Tags: {', '.join(f'`{t}`' for t in n.tags)}")
        out.append("- Components: " + ", ".join(f"{k} {v}" for k, v in n.components.items()))
        if n.previous_release is None:
            out.append(f"- First release of this image: {len(n.manifest.apt)} apt packages, {len(n.manifest.pip)} pip packages.")
            continue
        if n.previous_digest == n.digest:
            out.append(f"- Unchanged since {n.previous_release} (same digest).")
            continue
        comp = diff_packages(n.previous_components or {}, n.components)
        if not comp.empty:
            out += ["", "### Components", ""] + _diff_lines(comp)
        if n.previous_manifest is None:
            out.append(f"- No package manifest was recorded for {n.previous_release}; package changes not listed.")
            continue
        fixes = security_fixes(n.previous_manifest.apt, n.manifest.apt, n.security_pins)
        out += ["", f"### Security fixes: {len(fixes)} apt packages from a -security pocket"]
        if fixes:
            out += ["", "| Package | Before | After | Pocket |", "|---|---|---|---|"]
            out += [f"| {f.name} | {f.before or '—'} | {f.after} | {f.pocket} |" for f in fixes]
        for kind in ("apt", "pip"):
            d = diff_packages(getattr(n.previous_manifest, kind), getattr(n.manifest, kind))
            out += ["", f"### {kind} packages: {d.summary()}"]
            if not d.empty:
                out += [""] + _diff_lines(d)
    return "\n".join(out) + "\n"


def _change_summary(n: ImageNotes) -> str:
    if n.previous_release is None:
        return "new image"
    if n.previous_digest == n.digest:
        return "unchanged"
    if n.previous_manifest is None:
        return "changed (no previous manifest)"
    parts = []
    for kind in ("apt", "pip"):
        d = diff_packages(getattr(n.previous_manifest, kind), getattr(n.manifest, kind))
        if not d.empty:
            parts.append(f"{kind}: {d.summary()}")
    fixes = security_fixes(n.previous_manifest.apt, n.manifest.apt, n.security_pins)
    if fixes:
        parts.insert(0, f"{len(fixes)} security fixes")
    comp = diff_packages(n.previous_components or {}, n.components)
    if not comp.empty:
        parts.insert(0, "components: " + ", ".join(sorted({*comp.added, *comp.removed, *comp.changed})))
    return "; ".join(parts) or "rebuilt, same packages"


def _diff_lines(d: Diff) -> list[str]:
    lines = ["| Package | Before | After |", "|---|---|---|"]
    lines += [f"| {k} | — | {v} |" for k, v in d.added.items()]
    lines += [f"| {k} | {v} | — |" for k, v in d.removed.items()]
    lines += [f"| {k} | {a} | {b} |" for k, (a, b) in d.changed.items()]
    return lines


# The file edge --------------------------------------------------------------------------------------------


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomically(path, dumps(data))


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomically(path, text)


def read_manifest(path: Path) -> tuple[Manifest, str | None] | None:
    """(manifest, content hash it was taken from) or None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Manifest.from_json(data), data.get("content_hash")
