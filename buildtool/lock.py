"""images.lock: what was resolved (apt versions per base, pip sets with hashes, base digests).

Written as JSON (which is YAML, so a lock written or edited as YAML reads the same).

images.yaml says what is wanted; the lock says what that resolved to. `generate`
reads both and never touches the network; `buildtool lock` (lock_resolve.py)
writes the lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Location, UserError
from .jsonfmt import to_json
from .schema import Dict, List, Map, Sha256, Str, Version, fail
from .source import Said, SourceDoc, load_json_or_yaml

LOCK_VERSION = 1

PIP_PIN = Map({"name": Str(), "version": Version(), "sha256": Sha256()}, required=("name", "version", "sha256"), what="a pip pin")
PIP_SET = Map(
    {"python": Version(), "requires": List(Str()), "constraints": List(Str()), "pins": List(PIP_PIN)},
    required=("python", "requires", "pins"),
    defaults={"constraints": []},
    what="a resolved pip set",
)
LOCK = Map(
    {
        "lock": Map({"version": Str(), "note": Str()}, required=("version",), what="lock metadata"),
        "apt": Dict(Dict(Str(what="an exact Debian version"), key=Str(what="a package name")), what="base -> package -> version"),
        "pip": Dict(PIP_SET, key=Str(what="a pip set id"), what="pip set id -> resolved pins"),
        "sources": Dict(Str(), key=Str(what="a base key"), what="base -> where its apt pins came from"),
    },
    required=("lock",),
    defaults={"apt": {}, "pip": {}, "sources": {}},
    what="images.lock",
)


@dataclass(frozen=True)
class PipPin:
    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class PipSet:
    python: str
    requires: tuple[str, ...]
    constraints: tuple[str, ...]
    pins: tuple[PipPin, ...]


@dataclass
class Lock:
    path: str
    apt: dict[str, dict[str, str]] = field(default_factory=dict)
    pip: dict[str, PipSet] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    doc: SourceDoc | None = None

    def apt_pin(self, base: str, package: str) -> str:
        try:
            return self.apt[base][package]
        except KeyError:
            raise UserError(
                f"no apt pin for {package!r} on base {base!r}",
                where=self.doc.where(("apt", base)) if self.doc else Location(self.path),
                key=f"apt.{base}.{package}",
                expected="an exact version resolved by `buildtool lock`",
                found=None if self.doc else Said("no lock file"),
                hint="run `buildtool lock` (needs the network) and commit images.lock",
            ) from None

    def pip_set(self, set_id: str, python: str, requires: tuple[str, ...], constraints: tuple[str, ...]) -> PipSet:
        found = self.pip.get(set_id)
        where = self.doc.where(("pip", set_id)) if self.doc else Location(self.path)
        if found is None:
            raise UserError(f"no resolved pip set {set_id!r}", where=where, key=f"pip.{set_id}",
                            expected=f"pins for {', '.join(requires)} on Python {python}",
                            found=None if self.doc else Said("no lock file"), hint="run `buildtool lock` and commit images.lock")
        if found.requires != requires or found.python != python or found.constraints != constraints:
            differ = [name for name, want, have in (("python", python, found.python), ("requires", requires, found.requires),
                                                      ("constraints", constraints, found.constraints)) if want != have]
            show = lambda value: value if isinstance(value, str) else ", ".join(value) or "(none)"  # noqa: E731
            wanted = {"python": python, "requires": requires, "constraints": constraints}
            locked = {"python": found.python, "requires": found.requires, "constraints": found.constraints}
            where = self.doc.where(("pip", set_id, differ[0])) if self.doc else Location(self.path)
            raise UserError(f"pip set {set_id!r} is stale: images.yaml asks for other {' and '.join(differ)}", where=where,
                            key=f"pip.{set_id}.{differ[0]}",
                            expected="; ".join(f"{n} {show(wanted[n])}" for n in differ),
                            found=Said("; ".join(f"{n} {show(locked[n])}" for n in differ)),
                            hint="run `buildtool lock` and commit images.lock")
        return found


def load_lock(path: Path) -> Lock:
    if not path.exists():
        return Lock(path=str(path))
    doc = load_json_or_yaml(path)  # buildtool writes JSON; a lock written or edited as YAML loads too
    raw = LOCK.check(doc, (), doc.data if doc.data is not None else {})
    if str(raw["lock"]["version"]) != str(LOCK_VERSION):
        raise fail(doc, ("lock", "version"), "unsupported lock version", str(LOCK_VERSION), raw["lock"]["version"])
    pip = {
        k: PipSet(v["python"], tuple(v["requires"]), tuple(v["constraints"]), tuple(PipPin(p["name"], p["version"], p["sha256"]) for p in v["pins"]))
        for k, v in raw["pip"].items()
    }
    return Lock(path=str(path), apt=raw["apt"], pip=pip, sources=raw["sources"], doc=doc)


def dump_lock(lock: Lock) -> str:
    data: dict[str, Any] = {
        "lock": {"version": str(LOCK_VERSION), "note": "written by `buildtool lock`; do not edit by hand"},
        "sources": dict(sorted(lock.sources.items())),
        "apt": {b: dict(sorted(p.items())) for b, p in sorted(lock.apt.items())},
        "pip": {
            k: {"python": s.python, "requires": list(s.requires), "constraints": list(s.constraints),
                "pins": [{"name": p.name, "version": p.version, "sha256": p.sha256} for p in s.pins]}
            for k, s in sorted(lock.pip.items())
        },
    }
    # JSON (also valid YAML): loads ~50x faster than YAML at thousands of pip sets, and with one
    # line per apt pin, per requirement and per pip pin a lock refresh is a readable diff.
    return to_json(data, pretty_depth=4)
