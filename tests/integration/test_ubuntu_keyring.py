"""The real chain: Debian trixie's InRelease and Packages -> ubuntu-keyring .deb -> a keyring that verifies noble's InRelease."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest

from buildtool.edges import archive_keyring as ak
from buildtool.edges import signed_archive as sa

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(not (shutil.which("gpgv") and shutil.which("dpkg-deb")), reason="needs gpgv and dpkg-deb"),
    pytest.mark.skipif(not ak.DEBIAN_KEYRING.is_file(), reason=f"needs {ak.DEBIAN_KEYRING} (apt-get install debian-archive-keyring)"),
]

UBUNTU_MIRROR = "http://archive.ubuntu.com/ubuntu"


def _reachable(url: str) -> str | None:
    """None when url answers; otherwise why not (the skip reason)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=15):
            return None
    except OSError as exc:
        return f"{url} unreachable ({getattr(exc, 'reason', exc)})"


@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for url in (f"{ak.DEBIAN_MIRROR}/dists/trixie/InRelease", f"{UBUNTU_MIRROR}/dists/noble/InRelease"):
        if why := _reachable(url):
            pytest.skip(why)
    return ak.ubuntu_keyring(tmp_path_factory.mktemp("keyring-cache"))


def test_chain_yields_a_keyring_that_verifies_noble(keyring: Path):
    assert keyring.name == "ubuntu-archive-keyring.gpg" and keyring.stat().st_size > 0
    release = sa.fetch_verified_release(UBUNTU_MIRROR, "noble", keyring)
    assert (release.suite, release.codename) == ("noble", "noble")
    assert release.signers, "at least one valid signature"
    assert "main/binary-amd64/Packages.xz" in release.sha256


def test_cached_keyring_is_reused(keyring: Path):
    before = keyring.stat().st_mtime_ns
    assert ak.ubuntu_keyring(keyring.parent) == keyring
    assert keyring.stat().st_mtime_ns == before, "same .deb upstream: the cached keyring is kept, not rewritten"


def test_debian_keyring_does_not_verify_ubuntu():
    if why := _reachable(f"{UBUNTU_MIRROR}/dists/noble/InRelease"):
        pytest.skip(why)
    with pytest.raises(sa.KeyringError, match="no valid signature"):
        sa.fetch_verified_release(UBUNTU_MIRROR, "noble", ak.DEBIAN_KEYRING)
