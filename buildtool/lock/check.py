"""`buildtool lock --check`: which pins can no longer be fetched, which have security or point-release updates.

Writes nothing. The current Packages index of every pocket says what the archive has now: a pin
with a newer version in `-security` or `-updates` is listed under `security`, one with a newer
version only in the release pocket (a point release) under `outdated`. A pin whose exact version
an index still lists is fetchable (the archive keeps every file its indexes name); every other pin
is asked for (HEAD) at the URL the build fetches it from: one that does not answer 200 is `stale`.
Where the site reads a snapshot archive, every pin is asked for there (the snapshot is what the
build reads; its indexes say nothing about today).
"""

from __future__ import annotations

import functools
import lzma
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace

from ..config.model import Site
from .apt_sources import fetch_roots, pin_url
from .debversion import candidates, compare_debian_versions, iter_packages
from .format import BaseApt, Lock

HTTP_TIMEOUT_S = 30
PARALLEL = 16


@dataclass(frozen=True)
class PinReport:
    base: str
    package: str
    locked: str
    available: str  # the newest version the archive lists now ("" when no index lists the package)
    pocket: str = ""  # where `available` is
    url: str = ""


@dataclass(frozen=True)
class CheckReport:
    stale: tuple[PinReport, ...]
    security: tuple[PinReport, ...]
    outdated: tuple[PinReport, ...]
    checked: int  # .debs asked for
    unreadable: tuple[str, ...]  # indexes that could not be read (the report is partial there)
    probed: int = 0  # .debs asked for by URL (those no index lists any more, or all of them on a snapshot site)

    def as_json(self) -> dict:
        return {"stale": [asdict(p) for p in self.stale], "security": [asdict(p) for p in self.security],
                "outdated": [asdict(p) for p in self.outdated], "checked": self.checked, "probed": self.probed,
                "unreadable": list(self.unreadable)}

    def stale_bases(self) -> list[str]:
        return sorted({p.base for p in self.stale})


def url_exists(url: str) -> bool:
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


@functools.lru_cache(maxsize=64)
def fetch_index(url: str) -> str:
    """One index, read once per run (bases of one release share their pockets)."""
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
        return lzma.decompress(response.read()).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class PocketIndex:
    suite: str
    newest: dict[str, str]  # package -> newest version listed
    listed: frozenset[tuple[str, str]]  # every (package, version) listed


def pocket_versions(locked: BaseApt, roots: dict[str, str], fetch: Callable[[str], str]) -> tuple[dict[str, PocketIndex], list[str]]:
    """pocket (suite) -> what today's Packages.xz of each locked index lists (read in parallel)."""
    urls = [(index.suite, f"{roots[index.archive]}/dists/{index.suite}/{component}/binary-amd64/Packages.xz")
            for index in locked.indexes for component in locked.components]

    def read(url: str) -> list[tuple[str, str]] | None:
        try:
            return list(iter_packages(fetch(url)))
        except (urllib.error.URLError, OSError, lzma.LZMAError, ValueError):
            return None

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        results = list(pool.map(read, [u for _, u in urls]))
    pairs: dict[str, list[tuple[str, str]]] = {index.suite: [] for index in locked.indexes}
    unreadable = []
    for (suite, url), found in zip(urls, results):
        if found is None:
            unreadable.append(url)
        else:
            pairs[suite].extend(found)
    return {suite: PocketIndex(suite, candidates(p), frozenset(p)) for suite, p in pairs.items()}, unreadable


def classify(base: str, locked: BaseApt, pockets: dict[str, PocketIndex], gone: set[str], roots: dict[str, str]) -> tuple[list, list, list]:
    """(stale, security, outdated) reports of one base. Pure."""
    stale, security, outdated = [], [], []
    for name, pin in sorted(locked.packages.items()):
        newest, where = "", ""
        for suite, index in sorted(pockets.items()):
            have = index.newest.get(name)
            if have and (not newest or compare_debian_versions(have, newest) > 0):
                newest, where = have, suite
        url = pin_url(pin, roots)
        if name in gone:
            stale.append(PinReport(base, name, pin.version, newest, where, url))
        if newest and compare_debian_versions(newest, pin.version) > 0:
            report = PinReport(base, name, pin.version, newest, where)
            (security if where.endswith(("-security", "-updates")) else outdated).append(report)
    return stale, security, outdated


def check_lock(lock: Lock, site: Site, bases: Iterable[str] | None = None, exists: Callable[[str], bool] = url_exists,
               fetch: Callable[[str], str] = fetch_index, read_indexes: bool = True) -> CheckReport:
    """`read_indexes=False`: only whether every locked file can be fetched (the build's preflight)."""
    keys = sorted(bases) if bases is not None else sorted(lock.bases)
    stale: list[PinReport] = []
    security: list[PinReport] = []
    outdated: list[PinReport] = []
    unreadable: list[str] = []
    checked = probed = 0
    for key in keys:
        locked = lock.bases[key]
        roots = fetch_roots(locked, site)
        live = fetch_roots(locked, replace(site, apt_snapshot=None))
        pockets, bad = pocket_versions(locked, live, fetch) if read_indexes or not site.apt_snapshot else ({}, [])
        unreadable += bad
        listed = set().union(*(p.listed for p in pockets.values())) if pockets and not bad else set()
        probe = {name: pin_url(pin, roots) for name, pin in locked.packages.items()
                 if site.apt_snapshot or (name, pin.version) not in listed}
        with ThreadPoolExecutor(max_workers=PARALLEL * 2) as pool:
            answers = dict(zip(probe, pool.map(exists, probe.values())))
        checked += len(locked.packages)
        probed += len(probe)
        gone = {name for name, ok in answers.items() if not ok}
        s, sec, out = classify(key, locked, pockets if read_indexes else {}, gone, roots)
        stale += s
        security += sec
        outdated += out
    return CheckReport(tuple(stale), tuple(security), tuple(outdated), checked, tuple(unreadable), probed)


def render_report(report: CheckReport) -> str:
    lines = [f"checked {report.checked} locked .debs ({report.probed} asked for by URL): {len(report.stale)} stale, {len(report.security)} with security/updates, "
             f"{len(report.outdated)} behind a point release"]
    for title, items in (("stale (cannot be fetched)", report.stale), ("security / updates", report.security),
                         ("point release", report.outdated)):
        if items:
            lines.append(f"{title}:")
            lines += [f"  {p.base:<22} {p.package:<28} {p.locked} -> {p.available or '(in no index)'}"
                      + (f" ({p.pocket})" if p.pocket else "") for p in items]
    for url in report.unreadable:
        lines.append(f"warning: could not read {url}")
    if report.stale:
        lines.append("refresh exactly these bases: buildtool lock --refresh-stale   (or: buildtool lock --only apt "
                     + " ".join(f"--base {b}" for b in report.stale_bases()) + ")")
    elif report.security or report.outdated:
        lines.append("move to the newer versions: buildtool lock --only apt [--base KEY], then buildtool generate")
    return "\n".join(lines)
