"""Which archives and pockets a base's .debs come from, and where a locked .deb is fetched. Pure.

A base reads three pockets of its suite: the release, `-updates` and `-security` (newest version
across them wins, as apt does). A locked .deb is fetched by its pool path from the archive it was
resolved from, or, where the site overlay names a snapshot archive, from that archive at the
lock's timestamp: pool files outlive the index, and snapshots keep them for good.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config.model import Base, Site
from .format import BaseApt, DebPin

# Each family's archives by the names snapshot.debian.org / snapshot.ubuntu.com use for them.
POCKETS = ("", "-updates", "-security")
DISTRIBUTION_ARCHIVES = frozenset({"debian", "debian-security", "ubuntu"})


@dataclass(frozen=True)
class AptSource:
    archive: str  # archive id: debian, debian-security, ubuntu
    url: str
    suite: str
    components: tuple[str, ...]

    def line(self, signed_by: str = "") -> str:
        options = f" [signed-by={signed_by}]" if signed_by else ""
        return f"deb{options} {self.url} {self.suite} {' '.join(self.components)}"


def archive_ids(base: Base) -> tuple[str, str]:
    """(main archive id, security archive id)."""
    return ("debian", "debian-security") if base.family == "debian" else ("ubuntu", "ubuntu")


def apt_sources(base: Base, site: Site) -> tuple[AptSource, ...]:
    """The release, -updates and -security pockets of a bootstrapped base (a site mirror replaces the main archive)."""
    boot = base.bootstrap
    if boot is None:
        raise ValueError(f"base {base.key} has no bootstrap recipe")
    main_id, security_id = archive_ids(base)
    main_url = (site.apt_mirror or boot.mirror).rstrip("/")
    security_url = boot.security_url.rstrip("/") if boot.security_mirror else main_url
    out = []
    for pocket in POCKETS:
        archive, url = (security_id, security_url) if pocket == "-security" else (main_id, main_url)
        out.append(AptSource(archive, url, boot.suite + pocket, tuple(boot.components)))
    return tuple(out)


def archive_urls(sources: tuple[AptSource, ...]) -> dict[str, str]:
    return {s.archive: s.url for s in sources}


def snapshot_url(template: str, archive: str, timestamp: str) -> str:
    """`https://snapshot.debian.org/archive/{archive}/{timestamp}` filled in (no trailing slash)."""
    return template.format(archive=archive, timestamp=timestamp).rstrip("/")


def fetch_roots(locked: BaseApt, site: Site) -> dict[str, str]:
    """archive id -> the URL its locked files are fetched from on this site."""
    if site.apt_snapshot:  # snapshots are of the distribution's archives; a third-party repository (extras) is fetched as locked
        return {a: snapshot_url(site.apt_snapshot, a, locked.resolved_at) if a in DISTRIBUTION_ARCHIVES else u
                for a, u in locked.archives.items()}
    roots = dict(locked.archives)
    if site.apt_mirror:
        main = "debian" if "debian" in roots else "ubuntu"
        roots[main] = site.apt_mirror.rstrip("/")
    return roots


def pin_url(pin: DebPin, roots: dict[str, str]) -> str:
    return f"{roots[pin.archive]}/{pin.filename}"
