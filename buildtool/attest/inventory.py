"""An image's inventory: the dpkg, pip and conda packages its container lists.

`buildtool verify` gathers it once per image (the session-wide probes of buildtool/checks/base.py)
and writes it into `reports/<run>/results/<image>.json`; the SBOM is made from the newest passing
verify run of the image's content-hash tag, so it states what verify saw running, not what was
intended. When no verify run recorded one (an image verified before inventories existed),
`collect()` runs the same probe commands in a container of the image (no network).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OperationError

INVENTORY_VERSION = 1


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    arch: str
    source: str  # the source package ("" when dpkg names none: then it is the package itself)
    source_version: str


@dataclass(frozen=True)
class CondaPackage:
    name: str
    version: str
    build: str
    channel: str
    platform: str


@dataclass(frozen=True)
class Inventory:
    dpkg: tuple[DebPackage, ...]
    pip: tuple[tuple[str, str], ...]  # (normalized name, version)
    conda: tuple[CondaPackage, ...]
    source: str  # where it was taken: "verify run <id>" or "container of <tag>"

    def to_json(self) -> dict[str, Any]:
        return {"version": INVENTORY_VERSION, "source": self.source,
                "dpkg": [[d.name, d.version, d.arch, d.source, d.source_version] for d in self.dpkg],
                "pip": [[n, v] for n, v in self.pip],
                "conda": [[c.name, c.version, c.build, c.channel, c.platform] for c in self.conda]}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str | None = None) -> Inventory:
        return cls(tuple(DebPackage(*row) for row in data.get("dpkg", [])), tuple((n, v) for n, v in data.get("pip", [])),
                   tuple(CondaPackage(*row) for row in data.get("conda", [])), source or str(data.get("source", "")))

    @property
    def pip_versions(self) -> dict[str, str]:
        return dict(self.pip)

    @property
    def dpkg_versions(self) -> dict[str, str]:
        return {d.name: d.version for d in self.dpkg}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_dpkg_rows(text: str) -> tuple[DebPackage, ...]:
    """`dpkg-query -W` lines of DPKG's format: name, version, status, arch, source, source version; installed ones only."""
    out = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or not parts[1] or (len(parts) >= 3 and not parts[2].startswith("ii")):
            continue
        parts += [""] * (6 - len(parts))
        name = parts[0].split(":")[0]
        source = parts[4].split(" ")[0] if parts[4] else ""
        out[name] = DebPackage(name, parts[1], parts[3], "" if source == name else source,
                               "" if not parts[5] or parts[5] == parts[1] else parts[5])
    return tuple(out[k] for k in sorted(out))


def parse_pip_rows(text: str) -> tuple[tuple[str, str], ...]:
    try:
        rows = json.loads(text) if text.strip() else []
    except ValueError:
        return ()
    found = {normalize(r["name"]): str(r.get("version", "")) for r in rows if isinstance(r, dict) and r.get("name")}
    return tuple(sorted(found.items()))


def parse_conda_rows(text: str) -> tuple[CondaPackage, ...]:
    try:
        rows = json.loads(text) if text.strip() else []
    except ValueError:
        return ()
    out = [CondaPackage(str(r["name"]), str(r.get("version", "")), str(r.get("build_string", "")), str(r.get("channel", "")),
                        str(r.get("platform", ""))) for r in rows if isinstance(r, dict) and r.get("name")]
    return tuple(sorted(out, key=lambda c: c.name))


def from_results(results: dict[str, Any], source: str) -> Inventory:
    """The inventory of the session-wide probe results (probe key -> (rc, stdout))."""
    def text(key: str) -> str:
        rc, out = results.get(key, (1, ""))
        return out if rc == 0 else ""

    return Inventory(parse_dpkg_rows(text("dpkg")), parse_pip_rows(text("pip-list")), parse_conda_rows(text("conda-list")), source)


# Where verify left it --------------------------------------------------------------------------------


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def from_reports(reports: Path, image: str, tag: str) -> Inventory | None:
    """The inventory of the newest verify run that passed `image` at content-hash tag `tag`, or None.

    The newest verdict on the tag wins (as for publish): a later failing run means no inventory."""
    if not reports.is_dir():
        return None
    runs = sorted(reports.glob("*/summary.json"), key=lambda p: (p.parent.name, p.stat().st_mtime), reverse=True)
    for path in runs:
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        entry = next((e for e in summary.get("images", []) if e.get("tag") == tag), None)
        if entry is None:
            continue
        if not entry.get("ok"):
            return None
        try:
            results = json.loads((path.parent / "results" / f"{_safe(entry.get('image', image))}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        data = (results.get("images", {}).get(entry.get("image", image)) or {}).get("inventory")
        if not isinstance(data, dict) or data.get("version") != INVENTORY_VERSION:
            return None  # verified before inventories were recorded
        return Inventory.from_json(data, f"verify run {summary.get('run', path.parent.name)}")
    return None


# A container of its own ----------------------------------------------------------------------------------


def collect(client: Any, tag: str) -> Inventory:
    """Run the verify probes' commands in a throwaway container of `tag` (no network)."""
    from docker.errors import APIError, ContainerError, ImageNotFound

    from ..checks.base import SESSION_PROBES

    script = "".join(f"echo '@@{p.key}'; ( {p.command} ) 2>/dev/null; echo; echo \"@@rc $?\"\n" for p in SESSION_PROBES)
    try:
        raw = client.containers.run(tag, command=["-c", script], entrypoint=["/bin/bash"], network_disabled=True,
                                    remove=True, stdout=True, stderr=False)
    except ImageNotFound:
        raise OperationError(f"image {tag} is not on the engine: run `buildtool build` first") from None
    except (APIError, ContainerError) as exc:
        raise OperationError(f"cannot list the packages of {tag}: {str(exc).splitlines()[0]}") from None
    return from_results(split_sections(raw.decode("utf-8", errors="replace")), f"container of {tag}")


def split_sections(text: str) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    key, lines = None, []
    for line in text.splitlines():
        if line.startswith("@@rc ") and key is not None:
            out[key] = (int(line[5:].strip() or 1), "\n".join(lines))
            key, lines = None, []
        elif line.startswith("@@") and not line.startswith("@@rc"):
            key, lines = line[2:].strip(), []
        elif key is not None:
            lines.append(line)
    return out
