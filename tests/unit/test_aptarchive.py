"""tests/aptarchive.py against the host's real apt: signed updates, pockets, print-uris hashes, index drops, pool removals, snapshots."""

from __future__ import annotations

import contextlib
import lzma
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/aptarchive.py, whatever pytest's rootdir

import aptarchive  # noqa: E402
from aptarchive import AptArchive, GpgSigner, PrivateApt, make_deb, private_apt, sha256_file  # noqa: E402

if shutil.which("apt-get") is None or shutil.which("apt-cache") is None:
    pytest.skip("needs a Debian-like host with apt-get", allow_module_level=True)
try:
    aptarchive.ensure_tools()
except aptarchive.ToolMissing as missing:
    pytest.skip(str(missing), allow_module_level=True)

SUITES = ("bookworm", "bookworm-updates", "bookworm-security")
DAY1 = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAY2 = datetime(2024, 1, 2, tzinfo=timezone.utc)
HELLO_DEPENDS = ("bt-lib (>= 1.0)",)


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    out = tmp_path_factory.mktemp("debs")
    return {
        ("bt-lib", "1.0"): make_deb("bt-lib", "1.0", out_dir=out),
        ("bt-lib", "1.0+deb12u1"): make_deb("bt-lib", "1.0+deb12u1", out_dir=out),
        ("bt-hello", "1.0"): make_deb("bt-hello", "1.0", HELLO_DEPENDS, out_dir=out),
        ("bt-hello", "1.1"): make_deb("bt-hello", "1.1", HELLO_DEPENDS, {"/usr/share/bt-hello/greeting": "hello 1.1\n"}, out_dir=out),
    }


@contextlib.contextmanager
def built_archive(debs: dict[tuple[str, str], Path]) -> Iterator[AptArchive]:
    """bookworm: bt-lib 1.0, bt-hello 1.0; -updates: bt-hello 1.1; -security: bt-lib 1.0+deb12u1; published on DAY1."""
    with AptArchive() as built:
        built.add("bookworm", debs["bt-lib", "1.0"])
        built.add("bookworm", debs["bt-hello", "1.0"])
        built.add("bookworm-updates", debs["bt-hello", "1.1"])
        built.add("bookworm-security", debs["bt-lib", "1.0+deb12u1"])
        built.publish(date=DAY1)
        yield built


def sources(base_url: str, suites: tuple[str, ...] = SUITES) -> list[str]:
    return [f"deb [signed-by={{keyring}}] {base_url} {suite} main" for suite in suites]


@pytest.fixture(scope="module")
def shared(debs: dict[tuple[str, str], Path]) -> Iterator[tuple[AptArchive, str, PrivateApt]]:
    """One archive, served, and a private apt updated from it: for the tests that change nothing."""
    with built_archive(debs) as built, built.serve() as url, private_apt(sources(url), built.keyring_path) as client:
        client.update()
        yield built, url, client


@pytest.fixture
def archive(debs: dict[tuple[str, str], Path]) -> Iterator[AptArchive]:
    """A fresh archive of its own, for the tests that change it."""
    with built_archive(debs) as built:
        yield built


@pytest.fixture
def served(archive: AptArchive) -> Iterator[str]:
    with archive.serve() as url:
        yield url


@pytest.fixture
def apt(archive: AptArchive, served: str) -> Iterator[PrivateApt]:
    with private_apt(sources(served), archive.keyring_path) as client:
        client.update()
        yield client


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# --------------------------------------------------------------------------- packages and layout


def test_make_deb_is_a_real_reproducible_package(debs: dict[tuple[str, str], Path], tmp_path: Path) -> None:
    deb = debs["bt-hello", "1.0"]
    assert deb.name == "bt-hello_1.0_all.deb"
    fields = subprocess.run(["dpkg-deb", "--field", deb, "Package", "Version", "Architecture", "Depends"], capture_output=True, text=True, check=True).stdout
    assert fields.splitlines() == ["Package: bt-hello", "Version: 1.0", "Architecture: all", "Depends: bt-lib (>= 1.0)"]
    listing = subprocess.run(["dpkg-deb", "--contents", deb], capture_output=True, text=True, check=True).stdout
    assert "./usr/share/bt-hello/VERSION" in listing and "root/root" in listing
    control_members = subprocess.run(["dpkg-deb", "--ctrl-tarfile", deb], capture_output=True, check=True).stdout
    assert b"postinst" not in control_members and b"preinst" not in control_members
    again = make_deb("bt-hello", "1.0", HELLO_DEPENDS, out_dir=tmp_path)
    assert sha256_file(again) == sha256_file(deb)


def test_layout_is_a_debian_archive(shared: tuple[AptArchive, str, PrivateApt]) -> None:
    archive = shared[0]
    root = archive.root
    assert archive.suites == sorted(SUITES)
    assert archive.pool_path("bt-hello", "1.1") == "pool/main/b/bt-hello/bt-hello_1.1_all.deb"
    assert aptarchive.pool_dir("libfoo") == "pool/main/libf/libfoo"
    for suite in SUITES:
        for name in ("Release", "InRelease", "Release.gpg", "main/binary-amd64/Packages", "main/binary-amd64/Packages.xz", "main/binary-all/Packages.xz"):
            assert (root / "dists" / suite / name).is_file(), (suite, name)
        packages = root / "dists" / suite / "main/binary-amd64/Packages"
        assert lzma.decompress(packages.with_suffix(".xz").read_bytes()) == packages.read_bytes()
    release = (root / "dists/bookworm/Release").read_text()
    for line in ("Suite: bookworm", "Codename: bookworm", "Date: Mon, 01 Jan 2024 00:00:00 UTC", "Architectures: all amd64", "Components: main"):
        assert line in release.splitlines()
    assert "No-Support-for-Architecture-all: Packages" in release
    hello = (root / "dists/bookworm/main/binary-amd64/Packages").read_text()
    assert "Filename: pool/main/b/bt-hello/bt-hello_1.0_all.deb" in hello and "bt-hello_1.1" not in hello
    assert f"SHA256: {sha256_file(root / archive.pool_path('bt-hello', '1.0'))}" in hello


def test_signatures_verify_and_release_is_reproducible(archive: AptArchive) -> None:
    suite_dir = archive.root / "dists/bookworm"
    for signed in (["InRelease"], ["Release.gpg", "Release"]):
        subprocess.run(["gpgv", "--keyring", archive.keyring_path, *signed], cwd=suite_dir, capture_output=True, check=True)
    assert archive.keyring_path.suffix == ".gpg" and not archive.keyring_path.read_bytes().startswith(b"-----")
    assert not str(archive.keyring_path).startswith(str(archive.root))  # the keyring is not part of the served tree
    before = (suite_dir / "Release").read_bytes()
    archive.publish(date=DAY1)
    assert (suite_dir / "Release").read_bytes() == before
    archive.publish(date=DAY2)
    assert b"Date: Tue, 02 Jan 2024 00:00:00 UTC" in (suite_dir / "Release").read_bytes()


# --------------------------------------------------------------------------- the host's apt


def test_update_verifies_the_signature_and_fetches_only_binary_amd64(shared: tuple[AptArchive, str, PrivateApt]) -> None:
    archive, _, client = shared
    done = client.update()
    assert "NO_PUBKEY" not in done.stdout + done.stderr
    for suite in SUITES:
        assert f"/dists/{suite}/InRelease" in archive.requests
        assert f"/dists/{suite}/main/binary-amd64/Packages.xz" in archive.requests
    assert not [path for path in archive.requests if "binary-all" in path]  # No-Support-for-Architecture-all: Packages


def test_update_fails_with_a_wrong_keyring(shared: tuple[AptArchive, str, PrivateApt], tmp_path: Path) -> None:
    served = shared[1]
    stranger = GpgSigner()
    try:
        wrong = stranger.export_keyring(tmp_path / "wrong.gpg")
    finally:
        stranger.close()
    with private_apt(sources(served, ("bookworm",)), wrong) as client:
        done = client.update(check=False)
        output = done.stdout + done.stderr
        assert done.returncode != 0
        assert "NO_PUBKEY" in output and "is not signed" in output
        assert client.versions("bt-hello") == []


def test_host_apt_config_does_not_leak(shared: tuple[AptArchive, str, PrivateApt]) -> None:
    apt = shared[2]
    settings = dict(line.rstrip(";").split(" ", 1) for line in apt.run("apt-config", "dump").stdout.splitlines() if " " in line)
    assert settings["Dir::Etc::sourcelist"] == f'"{apt.sources_list}"'
    for key in ("main", "parts", "sourceparts", "trusted", "trustedparts", "preferences", "preferencesparts", "netrc", "netrcparts"):
        value = settings[f"Dir::Etc::{key}"].strip('"')
        assert value == "/nonexistent" or value.startswith(str(apt.root)), key
    for key in ("Dir::State", "Dir::State::status", "Dir::Cache"):
        assert settings[key].strip('"').startswith(str(apt.root)), key
    assert apt.apt_cache("policy").stdout.count("http://127.0.0.1:") == len(SUITES)  # nothing but our pockets


def test_policy_shows_the_newest_version_across_pockets(shared: tuple[AptArchive, str, PrivateApt]) -> None:
    _, served, apt = shared
    policy = apt.policy("bt-hello")
    assert "Candidate: 1.1" in policy
    assert f"{served.rstrip('/')} bookworm-updates/main amd64 Packages" in policy and f"{served.rstrip('/')} bookworm/main amd64 Packages" in policy
    assert apt.versions("bt-hello") == ["1.1", "1.0"]
    assert apt.versions("bt-lib") == ["1.0+deb12u1", "1.0"]
    assert "Candidate: 1.0+deb12u1" in apt.policy("bt-lib")


def test_print_uris_lists_the_closure_with_sha256_of_the_pool_files(shared: tuple[AptArchive, str, PrivateApt]) -> None:
    archive, served, apt = shared
    rows = {filename: (url, size, digest) for url, filename, size, digest in apt.print_uris("bt-hello")}
    assert sorted(rows) == ["bt-hello_1.1_all.deb", "bt-lib_1.0+deb12u1_all.deb"]
    for name, version in (("bt-hello", "1.1"), ("bt-lib", "1.0+deb12u1")):
        relative = archive.pool_path(name, version)
        url, size, digest = rows[Path(relative).name]
        assert urllib.parse.unquote(url) == served + relative  # apt writes "+" as %2b
        assert size == (archive.root / relative).stat().st_size
        assert digest == f"SHA256:{sha256_file(archive.root / relative)}"
        assert http_status(url) == 200


def test_drop_remove_and_snapshot(archive: AptArchive, apt: PrivateApt, served: str) -> None:
    frozen = archive.snapshot("20240101T000000Z")
    assert frozen == "snapshot/archive/debian/20240101T000000Z/"
    frozen_release = (archive.root / frozen / "dists/bookworm/Release").read_bytes()
    old_url = served + archive.pool_path("bt-hello", "1.0")

    archive.drop_from_index("bookworm", "bt-hello", "1.0")
    archive.publish(date=DAY2)  # a later Date: apt silently keeps its lists when a Release goes back in time
    apt.update()
    assert apt.versions("bt-hello") == ["1.1"]
    assert http_status(old_url) == 200  # still in the pool

    archive.remove_from_pool("bt-hello", "1.0")
    assert http_status(old_url) == 404
    with pytest.raises(KeyError):
        archive.pool_path("bt-hello", "1.0")

    assert (archive.root / frozen / "dists/bookworm/Release").read_bytes() == frozen_release
    with private_apt(sources(served + frozen), archive.keyring_path) as past:
        past.update()
        assert past.versions("bt-hello") == ["1.1", "1.0"]
        assert http_status(served + frozen + "pool/main/b/bt-hello/bt-hello_1.0_all.deb") == 200
    assert f"/{frozen}dists/bookworm/InRelease" in archive.requests


def test_snapshot_rejects_bad_or_reused_timestamps(archive: AptArchive) -> None:
    with pytest.raises(ValueError):
        archive.snapshot("2024-01-01")
    archive.snapshot("20240101T000000Z")
    with pytest.raises(FileExistsError):
        archive.snapshot("20240101T000000Z")
    with pytest.raises(KeyError):
        archive.drop_from_index("bookworm", "bt-hello", "9.9")


# --------------------------------------------------------------------------- the server


def test_serve_records_404s_and_shuts_down_on_exception(archive: AptArchive) -> None:
    with pytest.raises(RuntimeError, match="boom"), archive.serve() as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        assert http_status(url + "dists/nope/InRelease") == 404
        assert http_status(url + "dists/bookworm/InRelease") == 200
        raise RuntimeError("boom")
    assert archive.requests == ["/dists/nope/InRelease", "/dists/bookworm/InRelease"]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "dists/bookworm/InRelease", timeout=2)


def test_ensure_tools_explains_what_to_install_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    aptarchive.ensure_tools()  # everything present: nothing to do
    monkeypatch.setattr(aptarchive.os, "geteuid", lambda: 1000)
    with pytest.raises(aptarchive.ToolMissing, match="apt-get install -y --no-install-recommends apt-utils"):
        aptarchive.ensure_tools({"bt-no-such-tool": "apt-utils"})
