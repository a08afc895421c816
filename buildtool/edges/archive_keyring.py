"""Ubuntu's archive keyring obtained through Debian's trust chain (signed_archive.py verifies each link), and debootstrap's script for it.

No image registry is reachable from the build hosts, so bases are bootstrapped with debootstrap. Debian 12 ships no
`ubuntu-keyring`, and `--no-check-gpg` is not acceptable; trixie's `ubuntu-keyring` .deb, reached through trixie's
InRelease (checked against the host's debian-archive-keyring) and its Packages index (size and sha256 from that
Release), gives a keyring that debootstrap can check Ubuntu's archive with.

Only the standard library plus `dpkg-deb` (and signed_archive's `gpgv`, `dpkg --compare-versions`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from .signed_archive import KeyringError, ReleaseFile, check_digest, fetch, fetch_verified_index, fetch_verified_release, find_package

DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
DEBOOTSTRAP_SCRIPTS = Path("/usr/share/debootstrap/scripts")
UBUNTU_KEYRING_MEMBER = "usr/share/keyrings/ubuntu-archive-keyring.gpg"
UBUNTU_KEYRING_NAME = "ubuntu-archive-keyring.gpg"

# Ubuntu series, oldest first; debootstrap_script falls back only for these (a typo must not bootstrap as Ubuntu).
UBUNTU_CODENAMES = frozenset(
    "warty hoary breezy dapper edgy feisty gutsy hardy intrepid jaunty karmic lucid maverick natty oneiric precise quantal raring saucy trusty "
    "utopic vivid wily xenial yakkety zesty artful bionic cosmic disco eoan focal groovy hirsute impish jammy kinetic lunar mantic noble "
    "oracular plucky questing resolute".split()
)
UBUNTU_FALLBACK_SCRIPT = "gutsy"  # every Ubuntu script since gutsy is a symlink to it


# -- ubuntu-keyring -------------------------------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Readers (a concurrent build, debootstrap) see the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cached(keyring: Path, record: Path, deb_sha256: str | None) -> bool:
    """The cached keyring is intact (its recorded sha256) and, given deb_sha256, came from that very .deb."""
    try:
        meta = json.loads(record.read_text(encoding="utf-8"))
        data = keyring.read_bytes()
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict) or meta.get("keyring_sha256") != hashlib.sha256(data).hexdigest():
        return False
    return deb_sha256 is None or meta.get("deb_sha256") == deb_sha256


@functools.cache
def host_arch() -> str:
    proc = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "amd64"


def _first_index(mirror: str, release: ReleaseFile, component: str, archs: tuple[str, ...]) -> str:
    """The first of the archs' indexes that verifies; all failures in the message when none does."""
    failures: list[str] = []
    for arch in dict.fromkeys(archs):
        try:
            return fetch_verified_index(mirror, release, component, arch)
        except KeyringError as exc:
            failures.append(str(exc))
    raise KeyringError("; ".join(failures))


def ubuntu_keyring(
    cache_dir: Path,
    debian_mirror: str = DEBIAN_MIRROR,
    suite: str = "trixie",
    debian_keyring: Path = DEBIAN_KEYRING,
    *,
    archs: tuple[str, ...] | None = None,
    check_upstream: bool = True,
) -> Path:
    """Ubuntu's archive keyring, from Debian `suite`'s ubuntu-keyring .deb reached through a verified chain; cached.

    archs: the Packages indexes to try in turn (default: the host's architecture, then 'all'; Debian lists
    Architecture: all packages in both). The next is tried when one fails its hash check: a caching gateway was seen
    serving a binary-all/Packages.xz older than the InRelease it served. With check_upstream=False an intact cached
    keyring is used without touching the network (offline rebuilds); otherwise the cache is reused only when it came
    from the very .deb the current index lists.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    keyring, record = cache_dir / UBUNTU_KEYRING_NAME, cache_dir / (UBUNTU_KEYRING_NAME + ".json")
    if not check_upstream and _cached(keyring, record, None):
        return keyring
    release = fetch_verified_release(debian_mirror, suite, debian_keyring)
    stanza = find_package(_first_index(debian_mirror, release, "main", archs or (host_arch(), "all")), "ubuntu-keyring")
    if _cached(keyring, record, stanza.sha256):
        return keyring
    url = f"{debian_mirror.rstrip('/')}/{stanza.filename}"
    deb = fetch(url, max_bytes=stanza.size)
    check_digest(url, deb, stanza.size, stanza.sha256)
    with tempfile.TemporaryDirectory(prefix="buildtool-ubuntu-keyring-") as tmp:
        deb_path, root = Path(tmp, "ubuntu-keyring.deb"), Path(tmp, "root")
        deb_path.write_bytes(deb)
        proc = subprocess.run(["dpkg-deb", "-x", str(deb_path), str(root)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise KeyringError(f"{url}: dpkg-deb -x failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        member = root / UBUNTU_KEYRING_MEMBER
        if not member.is_file() or member.is_symlink() or member.stat().st_size == 0:
            raise KeyringError(f"{url}: has no {UBUNTU_KEYRING_MEMBER}")
        data = member.read_bytes()
    _atomic_write(keyring, data)
    meta = {
        "package": stanza.name,
        "version": stanza.version,
        "deb_url": url,
        "deb_sha256": stanza.sha256,
        "keyring_sha256": hashlib.sha256(data).hexdigest(),
        "release": release.url,
        "release_date": release.date,
        "signers": list(release.signers),
    }
    _atomic_write(record, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())  # written last: it vouches for the keyring
    return keyring


# -- debootstrap ----------------------------------------------------------------------------------------------------


def debootstrap_script(suite: str, scripts_dir: Path = DEBOOTSTRAP_SCRIPTS) -> str | None:
    """None when debootstrap knows `suite`; for an Ubuntu series it doesn't know (noble on bookworm), the gutsy script's path.

    Raises KeyringError for a suite that is neither, rather than bootstrap an unknown distribution with Ubuntu's rules.
    """
    if (scripts_dir / suite).is_file():
        return None
    if suite.split("-")[0] not in UBUNTU_CODENAMES:
        raise KeyringError(f"debootstrap has no script for suite {suite!r} in {scripts_dir}, and it is not an Ubuntu series")
    fallback = scripts_dir / UBUNTU_FALLBACK_SCRIPT
    if not fallback.is_file():
        raise KeyringError(f"debootstrap has no script for {suite!r} and no {UBUNTU_FALLBACK_SCRIPT} script to fall back on in {scripts_dir}")
    return str(fallback)
