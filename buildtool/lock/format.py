"""images.lock: what was resolved (every .deb per base, pip sets with hashes, base manifests).

Written as JSON (which is YAML, so a lock written or edited as YAML reads the same).

images.yaml says what is wanted; the lock says what that resolved to. `generate`
reads both and never touches the network; `buildtool lock` (apt_resolve.py for the
.debs, pip.py for pip) writes the lock.

Per base the apt part names the archives and pockets it was resolved from (each index's
Date and InRelease digest), the base's own package manifest (what debootstrap installed:
its digest is part of the base's tag), every .deb any layer installs (version, architecture,
pool filename, sha256, size) and, per cumulative set of requested names, the closure apt
chose for it. A layer installs exactly closure(its chain) - closure(its parent's chain).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config.model import DEFAULT_PLATFORM, PLATFORMS, Config
from ..config.schema import DebPackage, DebVersion, Dict, Int, List, Map, Sha256, Str, Version, fail
from ..config.source import Said, SourceDoc, load_json_or_yaml
from ..errors import Location, NotLocked, UserError
from ..hashing import short_hash
from ..jsonfmt import to_json

LOCK_VERSION = 2

# Package names and versions use the grammar types of config/schema.py (Debian policy 5.6.1, 5.6.12).
DEB_ARCH = re.compile(r"^[a-z0-9][a-z0-9-]*$")
POOL_FILE = re.compile(r"^pool/[A-Za-z0-9+._~/-]+\.deb$")
SUITE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
ARCHIVE_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
TIMESTAMP = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")


DEB_PIN = Map(
    {"version": DebVersion(), "arch": Str(pattern=DEB_ARCH, what="a Debian architecture"), "archive": Str(pattern=ARCHIVE_ID, what="an archive id"),
     "filename": Str(pattern=POOL_FILE, what="a pool path such as pool/main/c/curl/curl_7.88.1-10_amd64.deb"), "sha256": Sha256(),
     "size": Int(minimum=1), "pocket": Str(pattern=SUITE, what="the pocket apt took the version from, e.g. bookworm-security")},
    required=("version", "arch", "archive", "filename", "sha256", "size"), what="a locked .deb")
APT_INDEX = Map(
    {"suite": Str(pattern=SUITE, what="a suite name"), "archive": Str(pattern=ARCHIVE_ID, what="an archive id"), "date": Str(),
     "sha256": Sha256()},
    required=("suite", "archive", "date", "sha256"), what="an index the pins were read from")
BASE_APT = Map(
    {
        "archives": Dict(Str(pattern=re.compile(r"^https?://[^\s'\"\\$;]+$"), what="an http(s) URL"),
                         key=Str(pattern=ARCHIVE_ID, what="an archive id"), what="archive id -> URL"),
        "components": List(Str(pattern=SUITE, what="an archive component"), min_items=1),
        "indexes": List(APT_INDEX),
        "resolved_at": Str(pattern=TIMESTAMP, what="a UTC time YYYYMMDDTHHMMSSZ"),
        "manifest": List(Str(pattern=re.compile(r"^[a-z0-9][a-z0-9+.-]+ [0-9][A-Za-z0-9.+~:-]* [a-z0-9-]+$"), what="'name version arch'")),
        "packages": Dict(DEB_PIN, key=DebPackage(), what="package -> locked .deb"),
        "installs": Dict(List(DebPackage()), key=Str(what="the requested names of a layer chain"), what="requested names -> closure"),
        "refreshed": List(Str()),
    },
    required=("archives", "components", "indexes", "resolved_at", "manifest", "packages", "installs"),
    defaults={"refreshed": []},
    what="the apt lock of one base",
)
PIP_PIN = Map({"name": Str(), "version": Version(), "sha256": Sha256()}, required=("name", "version", "sha256"), what="a pip pin")
PIP_SET = Map(
    {"python": Version(), "requires": List(Str()), "constraints": List(Str()), "pins": List(PIP_PIN), "nodes": List(Str())},
    required=("python", "requires", "pins"),
    defaults={"constraints": [], "nodes": []},
    what="a resolved pip set",
)
PLATFORM_LOCK = Map(
    {
        "apt": Dict(BASE_APT, key=Str(what="a base key"), what="base -> its apt lock"),
        "pip": Dict(PIP_SET, key=Str(what="a pip set id"), what="pip set id -> resolved pins"),
    },
    defaults={"apt": {}, "pip": {}},
    what="the pins of one platform besides linux/amd64",
)
LOCK = Map(
    {
        "lock": Map({"version": Str(), "note": Str()}, required=("version",), what="lock metadata"),
        "apt": Dict(BASE_APT, key=Str(what="a base key"), what="base -> its apt lock"),
        "pip": Dict(PIP_SET, key=Str(what="a pip set id"), what="pip set id -> resolved pins"),
        # linux/amd64's pins are the top level (as before platforms existed); every other platform's are here.
        "platforms": Dict(PLATFORM_LOCK, key=Str(choices=PLATFORMS[1:]), what="platform -> its pins"),
    },
    required=("lock",),
    defaults={"apt": {}, "pip": {}, "platforms": {}},
    what="images.lock",
)


@dataclass(frozen=True)
class DebPin:
    """One .deb exactly: fetched by `archive URL + filename`, checked by sha256 and size."""

    name: str
    version: str
    arch: str
    archive: str
    filename: str
    sha256: str
    size: int
    pocket: str = ""  # the suite apt named for the version (a -security pocket marks a security fix); "" in older locks

    def record(self) -> dict[str, Any]:
        out = {"version": self.version, "arch": self.arch, "archive": self.archive, "filename": self.filename, "sha256": self.sha256, "size": self.size}
        return {**out, "pocket": self.pocket} if self.pocket else out


@dataclass(frozen=True)
class AptIndex:
    suite: str  # e.g. bookworm-security
    archive: str
    date: str  # the index's Release Date
    sha256: str  # of its InRelease


@dataclass(frozen=True)
class BaseApt:
    """The apt half of the lock for one base."""

    archives: dict[str, str]  # archive id -> URL (debian, debian-security, ubuntu)
    components: tuple[str, ...]
    indexes: tuple[AptIndex, ...]
    resolved_at: str  # YYYYMMDDTHHMMSSZ: the snapshot timestamp a snapshot site reads
    manifest: tuple[str, ...]  # "name version arch" of every package the base itself has
    packages: dict[str, DebPin]
    installs: dict[str, tuple[str, ...]]  # install_key(chain) -> closure names
    refreshed: tuple[str, ...] = ()  # what an automatic refresh moved (shown in labels until the next `buildtool lock`)

    @property
    def content(self) -> str:
        """What the base is: a digest of its package manifest (part of its tag and of every node hash above it)."""
        return manifest_digest(self.manifest)

    def versions(self) -> dict[str, str]:
        return {name: pin.version for name, pin in self.packages.items()}


def manifest_digest(manifest: tuple[str, ...] | list[str]) -> str:
    return hashlib.sha256("".join(line + "\n" for line in sorted(manifest)).encode()).hexdigest()


def install_key(chain: list[tuple[str, ...]]) -> str:
    """The key of a chain of layers' requested names: each layer's names sorted, layers joined by ' | '."""
    return " | ".join(" ".join(sorted(names)) for names in chain if names)


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
    nodes: tuple[str, ...] = ()  # the nodes that install it when it was locked (for people, and a changed set's previous pins)

    @property
    def request(self) -> PipRequest:
        return PipRequest(self.python, self.requires, self.constraints)


def pip_set_id(python: str, chain: tuple[tuple[str, ...], ...]) -> str:
    """A pip set's key in images.lock follows what it asks for: its Python line and the requirements of its own
    layer and of every pip-installing layer below it (`chain`, bottom first), never component keys. So renaming a
    key moves no pin, two nodes that ask alike share one set, and a pin moving below leaves the key as it is (the set's
    constraints say what it was resolved against). `py<line>-<first requirement>-<12 hex of sha256>`."""
    own = chain[-1]
    first = re.split(r"[<>=!~;\[ @]", own[0].strip(), maxsplit=1)[0] if own else "set"
    name = re.sub(r"[-_.]+", "-", first).lower()
    text = "\n".join([python] + [" ".join(layer) for layer in chain])
    return f"py{python}-{name}-{short_hash(text, 12)}"


@dataclass(frozen=True)
class PipRequest:
    """What a pip set asks for: its Python line, its requirements and its ancestors' pins (the resolver's constraints)."""

    python: str
    requires: tuple[str, ...]
    constraints: tuple[str, ...]
    machine: str = "x86_64"  # the wheels' machine (resolve/uv.py MACHINES): a platform's sets are resolved for its wheels



@dataclass
class Lock:
    path: str
    bases: dict[str, BaseApt] = field(default_factory=dict)
    pip: dict[str, PipSet] = field(default_factory=dict)
    doc: SourceDoc | None = None
    platforms: dict[str, Lock] = field(default_factory=dict)  # the pins of each platform besides linux/amd64
    platform: str = DEFAULT_PLATFORM  # the platform these pins are for
    _versions: dict[str, tuple[BaseApt, dict[str, str]]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def apt(self) -> dict[str, dict[str, str]]:
        """base -> package -> locked version (what flavors read their facts from)."""
        out = {}
        for key, entry in self.bases.items():
            cached = self._versions.get(key)
            if cached is None or cached[0] is not entry:  # an entry replaced since (a refresh) is read again
                cached = self._versions[key] = (entry, entry.versions())
            out[key] = cached[1]
        return out

    def _missing(self, base: str, what: str, key: str) -> UserError:
        return UserError(
            what,
            where=self.doc.where(("apt", base)) if self.doc else Location(self.path),
            key=key,
            expected="the base's .debs resolved by `buildtool lock`",
            found=None if self.doc else Said("no lock file"),
            hint=f"run `buildtool lock --only apt --base {base}` (needs the network and the engine) and commit images.lock",
        )

    def base_apt(self, base: str) -> BaseApt:
        found = self.bases.get(base)
        if found is None:
            raise self._missing(base, f"no apt lock for base {base!r}", f"apt.{base}")
        return found

    def layer_debs(self, base: str, chain: list[tuple[str, ...]]) -> tuple[DebPin, ...]:
        """The .debs the last layer of `chain` installs: its chain's closure minus its parent chain's."""
        locked = self.base_apt(base)
        if not chain or not chain[-1]:
            return ()
        mine, parent = install_key(chain), install_key(chain[:-1])
        if mine not in locked.installs:
            raise self._missing(base, f"base {base!r} has no resolved closure for {mine!r} (images.yaml asks for packages the lock has not seen)",
                                f"apt.{base}.installs")
        have = set(locked.installs.get(parent, ())) if parent else set()
        names = [n for n in locked.installs[mine] if n not in have]
        return tuple(locked.packages[n] for n in sorted(names))

    def pip_set(self, set_id: str, request: PipRequest, node_id: str, asked_at: Location, asked_by: str) -> PipSet:
        """The locked set for `request`, else an error at the images.yaml entry that asks for it (`asked_at`, key `asked_by`),
        or at the lock's entry when it was resolved against other pins or for other requirements (stale)."""
        found = self.pip.get(set_id)
        if found is not None and found.request == request:
            return found
        if found is not None:
            differ = [n for n in ("python", "requires", "constraints") if getattr(found.request, n) != getattr(request, n)]
            show = lambda value: value if isinstance(value, str) else ", ".join(value) or "(none)"  # noqa: E731
            where = self.doc.where(("pip", set_id, differ[0])) if self.doc else Location(self.path)
            raise UserError(f"pip set {set_id!r} is stale: images.yaml asks for other {' and '.join(differ)}", where=where,
                            key=f"pip.{set_id}.{differ[0]}",
                            expected="; ".join(f"{n} {show(getattr(request, n))}" for n in differ),
                            found=Said("; ".join(f"{n} {show(getattr(found.request, n))}" for n in differ)),
                            hint="run `buildtool lock` and commit images.lock")
        before = next((s for s in self.pip.values() if node_id in s.nodes), None)
        changed = ""
        if before is not None:
            differ = [n for n in ("python", "requires", "constraints") if getattr(before.request, n) != getattr(request, n)]
            changed = f" (images.lock has node {node_id}'s earlier set, with other {' and '.join(differ)})"
        raise NotLocked(f"node {node_id} needs pip pins images.lock does not have{changed}", where=asked_at, key=asked_by,
                        expected=f"pins for {', '.join(request.requires)} on Python {request.python}"
                                 + (f" under {len(request.constraints)} ancestor pins" if request.constraints else ""),
                        found=Said(f"no pip set {set_id} in {Path(self.path).name}" if self.doc else "no lock file"),
                        hint="run `buildtool lock` and commit images.lock")


def _base_apt(raw: dict[str, Any]) -> BaseApt:
    return BaseApt(
        archives=dict(raw["archives"]),
        components=tuple(raw["components"]),
        indexes=tuple(AptIndex(i["suite"], i["archive"], i["date"], i["sha256"]) for i in raw["indexes"]),
        resolved_at=raw["resolved_at"],
        manifest=tuple(raw["manifest"]),
        packages={n: DebPin(n, p["version"], p["arch"], p["archive"], p["filename"], p["sha256"], p["size"], p.get("pocket", ""))
                  for n, p in raw["packages"].items()},
        installs={k: tuple(v) for k, v in raw["installs"].items()},
        refreshed=tuple(raw["refreshed"]),
    )


def load_lock(path: Path, upgrading: bool = False) -> Lock:
    """The lock at `path` (empty when there is none). `upgrading`: a lock of version 1 yields its pip sets only,
    so `buildtool lock` can re-resolve the apt half without moving a pip pin."""
    if not path.exists():
        return Lock(path=str(path))
    doc = load_json_or_yaml(path)  # buildtool writes JSON; a lock written or edited as YAML loads too
    raw = doc.data if doc.data is not None else {}
    if upgrading and isinstance(raw, dict) and isinstance(raw.get("lock"), dict) and str(raw["lock"].get("version")) == "1":
        raw = {"lock": {"version": str(LOCK_VERSION)}, "pip": raw.get("pip", {})}
    if isinstance(raw, dict) and isinstance(raw.get("lock"), dict) and str(raw["lock"].get("version")) != str(LOCK_VERSION):
        raise fail(doc, ("lock", "version"), "unsupported lock version", f"{LOCK_VERSION} (a lock from an older buildtool: run `buildtool lock`)",
                   raw["lock"].get("version"))
    raw = LOCK.check(doc, (), raw)
    lock = _pins(path, doc, raw, ())
    lock.platforms = {p: replace(_pins(path, doc, sub, ("platforms", p)), platform=p) for p, sub in raw["platforms"].items()}
    return lock


def _pins(path: Path, doc: SourceDoc, raw: dict[str, Any], at: tuple[str, ...]) -> Lock:
    """The apt and pip pins of one platform (`at`: where they are in the document)."""
    for base, entry in raw["apt"].items():
        for key, names in entry["installs"].items():
            unknown = [n for n in names if n not in entry["packages"]]
            if unknown:
                raise fail(doc, (*at, "apt", base, "installs", key), f"closure names packages that are not locked: {', '.join(unknown)}",
                           "names listed under packages")
    pip = {
        k: PipSet(v["python"], tuple(v["requires"]), tuple(v["constraints"]), tuple(PipPin(p["name"], p["version"], p["sha256"]) for p in v["pins"]),
                  tuple(v["nodes"]))
        for k, v in raw["pip"].items()
    }
    return Lock(path=str(path), bases={k: _base_apt(v) for k, v in raw["apt"].items()}, pip=pip, doc=doc)


def platform_lock(lock: Lock, platform: str) -> Lock:
    """The pins of one platform (linux/amd64: the lock itself; another: its section, empty before its first lock)."""
    if platform == DEFAULT_PLATFORM:
        return lock
    found = lock.platforms.get(platform)
    if found is None:
        found = lock.platforms[platform] = Lock(path=lock.path, platform=platform)
    return found


def base_apt_record(b: BaseApt) -> dict[str, Any]:
    return {
        "archives": dict(sorted(b.archives.items())),
        "components": list(b.components),
        "indexes": [{"suite": i.suite, "archive": i.archive, "date": i.date, "sha256": i.sha256} for i in b.indexes],
        "resolved_at": b.resolved_at,
        "manifest": sorted(b.manifest),
        "packages": {n: p.record() for n, p in sorted(b.packages.items())},
        "installs": {k: sorted(v) for k, v in sorted(b.installs.items())},
        "refreshed": list(b.refreshed),
    }


def _pins_record(lock: Lock) -> dict[str, Any]:
    return {
        "apt": {b: base_apt_record(entry) for b, entry in sorted(lock.bases.items())},
        "pip": {
            k: {"python": s.python, "requires": list(s.requires), "constraints": list(s.constraints),
                "pins": [{"name": p.name, "version": p.version, "sha256": p.sha256} for p in s.pins], "nodes": sorted(s.nodes)}
            for k, s in sorted(lock.pip.items())
        },
    }


def dump_lock(lock: Lock) -> str:
    data: dict[str, Any] = {
        "lock": {"version": str(LOCK_VERSION), "note": "written by `buildtool lock`; do not edit by hand"},
        **_pins_record(lock),
    }
    platforms = {p: _pins_record(sub) for p, sub in sorted(lock.platforms.items()) if sub.bases or sub.pip}
    if platforms:  # a lock without other platforms stays byte-identical to one written before they existed
        data["platforms"] = platforms
    # JSON (also valid YAML): loads ~50x faster than YAML at thousands of pip sets, and with one
    # line per .deb, per manifest entry, per requirement and per pip pin a lock refresh is a readable diff.
    return to_json(data, pretty_depth=4)


def bind_bases(config: Config, lock: Lock) -> Config:
    """The config with each bootstrapped base's content digest from the lock, so that its tag (and every
    node hash above it) covers what the base contains, not only its recipe. A base pulled by digest
    is content-addressed by that digest already."""
    bases = {}
    for key, base in config.bases.items():
        locked = lock.bases.get(key)
        content = locked.content if locked is not None and base.bootstrap is not None and locked.manifest else ""
        bases[key] = base if base.content == content else replace(base, content=content)
    return replace(config, bases=bases)
