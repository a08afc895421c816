"""archive_keyring without the network: a throwaway gpg key signs a Release for a file:// mirror built in tmp_path."""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import shutil
import subprocess
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from buildtool.edges import archive_keyring as ak
from buildtool.edges import signed_archive as sa

pytestmark = pytest.mark.skipif(not (shutil.which("gpg") and shutil.which("gpgv") and shutil.which("dpkg-deb")), reason="needs gpg, gpgv and dpkg-deb")

SUITE = "testsuite"


class Gpg:
    """A GNUPGHOME of its own, so the developer's keys and agent are never touched."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(mode=0o700)
        self.env = {**os.environ, "GNUPGHOME": str(home)}

    def run(self, *args: str, input: bytes | None = None) -> bytes:
        return subprocess.run(
            ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "", *args], env=self.env, input=input, capture_output=True, check=True
        ).stdout

    def new_key(self, uid: str) -> str:
        self.run("--quick-gen-key", uid, "ed25519", "sign", "never")
        out = self.run("--with-colons", "--list-keys", uid).decode()
        return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))

    def export(self, path: Path, *fprs: str) -> Path:
        path.write_bytes(self.run("--export", *fprs))
        return path

    def clearsign(self, text: str, *fprs: str) -> bytes:
        users = [arg for fpr in fprs for arg in ("--local-user", fpr)]
        return self.run("--digest-algo", "SHA256", *users, "--clearsign", input=text.encode())

    def close(self) -> None:
        subprocess.run(["gpgconf", "--kill", "all"], env=self.env, check=False, capture_output=True)


@pytest.fixture(scope="module")
def gpg(tmp_path_factory: pytest.TempPathFactory):
    g = Gpg(tmp_path_factory.mktemp("gpg") / "home")
    g.fprs = (g.new_key("Archive One <one@example.invalid>"), g.new_key("Archive Two <two@example.invalid>"), g.new_key("Stranger <x@example.invalid>"))
    yield g
    g.close()


@pytest.fixture(scope="module")
def keyrings(gpg, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keyrings")
    one, two, stranger = gpg.fprs
    return {"one": gpg.export(d / "one.gpg", one), "both": gpg.export(d / "both.gpg", one, two), "stranger": gpg.export(d / "stranger.gpg", stranger)}


def release_text(files: dict[str, bytes], *, suite: str = SUITE, extra: str = "") -> str:
    table = "".join(f" {hashlib.sha256(data).hexdigest()} {len(data):>8} {path}\n" for path, data in files.items())
    return (
        f"Origin: Test\nSuite: {suite}\nCodename: {suite}\nDate: Tue, 01 Dec 2026 10:00:00 UTC\n{extra}Architectures: amd64\nComponents: main\nSHA256:\n{table}"
    )


def packages_text(*stanzas: tuple[str, str, str, bytes]) -> str:
    return "\n".join(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nFilename: {filename}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
        f"Description: test\n continuation line\n"
        for name, version, filename, data in stanzas
    )


def make_mirror(root: Path, gpg: Gpg, signers: tuple[str, ...], files: dict[str, bytes], *, extra: str = "", pool: dict[str, bytes] | None = None) -> str:
    dists = root / "dists" / SUITE
    for rel, data in {**files}.items():
        (dists / rel).parent.mkdir(parents=True, exist_ok=True)
        (dists / rel).write_bytes(data)
    for rel, data in (pool or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    dists.mkdir(parents=True, exist_ok=True)
    (dists / "InRelease").write_bytes(gpg.clearsign(release_text(files, extra=extra), *signers))
    return root.as_uri()


# -- signatures -----------------------------------------------------------------------------------------------------


def test_good_signature_is_accepted_and_the_table_parsed(tmp_path, gpg, keyrings):
    index = lzma.compress(b"Package: x\n")
    mirror = make_mirror(tmp_path, gpg, gpg.fprs[:1], {"main/binary-amd64/Packages.xz": index, "main/binary-amd64/Release": b"r\n"})
    rel = sa.fetch_verified_release(mirror, SUITE, keyrings["one"])
    assert (rel.suite, rel.codename, rel.date, rel.dist) == (SUITE, SUITE, "Tue, 01 Dec 2026 10:00:00 UTC", SUITE)
    assert rel.signers == (gpg.fprs[0],)
    assert dict(rel.sha256) == {
        "main/binary-amd64/Packages.xz": sa.IndexEntry(len(index), hashlib.sha256(index).hexdigest()),
        "main/binary-amd64/Release": sa.IndexEntry(2, hashlib.sha256(b"r\n").hexdigest()),
    }
    with pytest.raises(FrozenInstanceError):
        rel.suite = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        rel.sha256["x"] = sa.IndexEntry(0, "")  # type: ignore[index]


def test_two_signatures_one_key_known_is_accepted(tmp_path, gpg, keyrings):
    # Like Debian's InRelease: gpgv exits non-zero (NO_PUBKEY for the other key), yet one valid signature and no bad one suffice.
    mirror = make_mirror(tmp_path, gpg, gpg.fprs[:2], {"main/x": b"x"})
    signed = tmp_path / "dists" / SUITE / "InRelease"
    proc = subprocess.run(["gpgv", "--homedir", str(tmp_path), "--keyring", str(keyrings["one"]), str(signed)], capture_output=True, check=False)
    assert proc.returncode != 0, "premise: gpgv's exit status alone would reject this file"
    assert sa.fetch_verified_release(mirror, SUITE, keyrings["one"]).signers == (gpg.fprs[0],)
    assert set(sa.fetch_verified_release(mirror, SUITE, keyrings["both"]).signers) == set(gpg.fprs[:2])


def test_tampered_body_is_rejected(tmp_path, gpg, keyrings):
    make_mirror(tmp_path, gpg, gpg.fprs[:2], {"main/x": b"x"})
    path = tmp_path / "dists" / SUITE / "InRelease"
    path.write_bytes(path.read_bytes().replace(b"Origin: Test", b"Origin: Evil"))
    with pytest.raises(sa.KeyringError, match=r"InRelease: BAD signature"):
        sa.fetch_verified_release(tmp_path.as_uri(), SUITE, keyrings["one"])


def test_wrong_keyring_is_rejected(tmp_path, gpg, keyrings):
    mirror = make_mirror(tmp_path, gpg, gpg.fprs[:2], {"main/x": b"x"})
    with pytest.raises(sa.KeyringError, match=r"InRelease: no valid signature from .*stranger\.gpg"):
        sa.fetch_verified_release(mirror, SUITE, keyrings["stranger"])


def test_text_outside_the_signed_part_is_refused(tmp_path, gpg, keyrings):
    make_mirror(tmp_path, gpg, gpg.fprs[:1], {"main/x": b"x"})
    path = tmp_path / "dists" / SUITE / "InRelease"
    good = path.read_bytes()
    for bad in (b"Suite: evil\n\n" + good, good + b"\nSHA256:\n " + b"0" * 64 + b" 1 main/evil\n", good + good):
        path.write_bytes(bad)
        with pytest.raises(sa.KeyringError, match=r"InRelease: (not a clearsigned file|text after the signature|more than one signed block)"):
            sa.fetch_verified_release(tmp_path.as_uri(), SUITE, keyrings["one"])


def test_unsigned_release_is_rejected(tmp_path, keyrings):
    (tmp_path / "dists" / SUITE).mkdir(parents=True)
    (tmp_path / "dists" / SUITE / "InRelease").write_text(release_text({"main/x": b"x"}))
    with pytest.raises(sa.KeyringError, match="not a clearsigned file"):
        sa.fetch_verified_release(tmp_path.as_uri(), SUITE, keyrings["one"])


def test_status_parsing_one_bad_signature_spoils_the_file():
    status = (
        "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG AAAA one\n[GNUPG:] VALIDSIG " + "A" * 40 + " 2026-12-01 0 4 0 22 8 01 " + "A" * 40 + "\n"
        "[GNUPG:] NEWSIG\n[GNUPG:] BADSIG BBBB two\n"
        "[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG CCCC 22 8 01 0 9\n[GNUPG:] NO_PUBKEY CCCC\n"
        "[GNUPG:] NEWSIG\n[GNUPG:] EXPKEYSIG DDDD old\n[GNUPG:] VALIDSIG " + "D" * 40 + " 2020-01-01 0 4 0 22 8 01 " + "D" * 40 + "\n"
    )
    sigs = sa._signatures(status)
    assert [(s.good, s.bad) for s in sigs] == [(True, False), (False, True), (False, False), (False, False)]
    assert sigs[0].fingerprint == "A" * 40


def test_suite_mismatch_and_expiry_are_rejected(tmp_path, gpg, keyrings):
    text = release_text({"main/x": b"x"}, suite="oldsuite")
    with pytest.raises(sa.KeyringError, match="signed for suite 'oldsuite'"):
        sa.parse_release("u", SUITE, text)
    expired = release_text({"main/x": b"x"}, extra="Valid-Until: Mon, 01 Jan 2024 00:00:00 UTC\n")
    with pytest.raises(sa.KeyringError, match="expired"):
        sa.parse_release("u", SUITE, expired)
    assert sa.parse_release("u", SUITE, release_text({"main/x": b"x"}, extra="Valid-Until: Fri, 01 Jan 2100 00:00:00 UTC\n")).valid_until


# -- indexes --------------------------------------------------------------------------------------------------------


def test_index_is_checked_against_the_release(tmp_path, gpg, keyrings):
    text = packages_text(("hello", "1.0", "pool/h/hello.deb", b"deb"))
    index = lzma.compress(text.encode())
    mirror = make_mirror(tmp_path, gpg, gpg.fprs[:1], {"main/binary-amd64/Packages.xz": index})
    rel = sa.fetch_verified_release(mirror, SUITE, keyrings["one"])
    assert sa.fetch_verified_index(mirror, rel, "main", "amd64") == text

    served = tmp_path / "dists" / SUITE / "main/binary-amd64/Packages.xz"
    served.write_bytes(index + b"\0")
    with pytest.raises(sa.KeyringError, match=r"Packages\.xz: larger than the \d+ bytes|size mismatch"):
        sa.fetch_verified_index(mirror, rel, "main", "amd64")
    served.write_bytes(index[:-1])
    with pytest.raises(sa.KeyringError, match=r"Packages\.xz: size mismatch"):
        sa.fetch_verified_index(mirror, rel, "main", "amd64")
    served.write_bytes(bytes([index[0] ^ 1]) + index[1:])
    with pytest.raises(sa.KeyringError, match=r"Packages\.xz: sha256 mismatch"):
        sa.fetch_verified_index(mirror, rel, "main", "amd64")
    with pytest.raises(sa.KeyringError, match="lists no main/binary-arm64/Packages.xz"):
        sa.fetch_verified_index(mirror, rel, "main", "arm64")


def test_index_by_hash_is_preferred_and_falls_back_to_the_name(tmp_path, gpg, keyrings):
    text = packages_text(("hello", "1.0", "pool/h/hello.deb", b"deb"))
    index = lzma.compress(text.encode())
    mirror = make_mirror(tmp_path, gpg, gpg.fprs[:1], {"main/binary-amd64/Packages.xz": index}, extra="Acquire-By-Hash: yes\n")
    rel = sa.fetch_verified_release(mirror, SUITE, keyrings["one"])
    assert rel.by_hash
    assert sa.fetch_verified_index(mirror, rel, "main", "amd64") == text  # no by-hash/ folder: the name is used
    by_hash = tmp_path / "dists" / SUITE / "main/binary-amd64/by-hash/SHA256" / hashlib.sha256(index).hexdigest()
    by_hash.parent.mkdir(parents=True)
    by_hash.write_bytes(index)
    (tmp_path / "dists" / SUITE / "main/binary-amd64/Packages.xz").write_bytes(b"a newer index mid-sync")
    assert sa.fetch_verified_index(mirror, rel, "main", "amd64") == text


def test_find_package_picks_the_newest_by_dpkg_ordering():
    text = packages_text(
        ("hello", "2.0", "pool/h/hello_2.0.deb", b"a"),
        ("other", "9:9", "pool/o/other.deb", b"b"),
        ("hello", "1:0.5-1", "pool/h/hello_1%3a0.5-1.deb", b"c"),
        ("hello", "1:0.5~rc1", "pool/h/hello_rc.deb", b"d"),
        ("hello", "10.0", "pool/h/hello_10.deb", b"e"),
    )
    found = sa.find_package(text, "hello")
    assert found == sa.PackageStanza("hello", "1:0.5-1", "pool/h/hello_1%3a0.5-1.deb", hashlib.sha256(b"c").hexdigest(), 1)
    assert sa.find_package(text, "other").version == "9:9"
    with pytest.raises(sa.KeyringError, match="'absent' is not in the index"):
        sa.find_package(text, "absent")


# -- ubuntu_keyring, end to end on a local mirror -------------------------------------------------------------------


def fake_keyring_deb(tmp: Path, payload: bytes) -> bytes:
    root = tmp / "debroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text("Package: ubuntu-keyring\nVersion: 2099.01.01\nArchitecture: all\nMaintainer: T <t@example.invalid>\nDescription: t\n")
    (root / "usr/share/keyrings").mkdir(parents=True)
    (root / ak.UBUNTU_KEYRING_MEMBER).write_bytes(payload)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "-b", str(root), str(tmp / "k.deb")], check=True, capture_output=True)
    return (tmp / "k.deb").read_bytes()


def test_ubuntu_keyring_chain_and_cache(tmp_path, gpg, keyrings):
    payload = keyrings["stranger"].read_bytes()  # any keyring will do as the "Ubuntu" one
    deb = fake_keyring_deb(tmp_path, payload)
    filename = "pool/main/u/ubuntu-keyring/ubuntu-keyring_2099.01.01_all.deb"
    index = lzma.compress(packages_text(("ubuntu-keyring", "2099.01.01", filename, deb)).encode())
    mirror = make_mirror(tmp_path / "mirror", gpg, gpg.fprs[:2], {"main/binary-all/Packages.xz": index}, pool={filename: deb})
    cache = tmp_path / "cache"

    path = ak.ubuntu_keyring(cache, mirror, SUITE, keyrings["one"], archs=("amd64", "all"))  # amd64 is not listed: 'all' is the fallback
    assert path == cache / "ubuntu-archive-keyring.gpg" and path.read_bytes() == payload
    meta = json.loads((cache / "ubuntu-archive-keyring.gpg.json").read_text())
    assert meta["deb_sha256"] == hashlib.sha256(deb).hexdigest() and meta["version"] == "2099.01.01"

    (tmp_path / "mirror" / filename).unlink()  # the cache answers while the index still lists the same .deb
    assert ak.ubuntu_keyring(cache, mirror, SUITE, keyrings["one"], archs=("all",)).read_bytes() == payload
    shutil.rmtree(tmp_path / "mirror")
    assert ak.ubuntu_keyring(cache, mirror, SUITE, keyrings["one"], check_upstream=False).read_bytes() == payload
    with pytest.raises(sa.KeyringError, match=r"dists/testsuite/InRelease: cannot download"):
        ak.ubuntu_keyring(cache, mirror, SUITE, keyrings["one"])

    path.write_bytes(b"corrupted")  # a cache that no longer matches its record is not trusted
    with pytest.raises(sa.KeyringError):
        ak.ubuntu_keyring(cache, mirror, SUITE, keyrings["one"], check_upstream=False)


def test_ubuntu_keyring_rejects_a_deb_that_does_not_match_the_index(tmp_path, gpg, keyrings):
    deb = fake_keyring_deb(tmp_path, b"keys")
    filename = "pool/k.deb"
    index = lzma.compress(packages_text(("ubuntu-keyring", "1", filename, deb)).encode())
    mirror = make_mirror(tmp_path / "mirror", gpg, gpg.fprs[:1], {"main/binary-all/Packages.xz": index}, pool={filename: deb[:-1] + b"\0"})
    with pytest.raises(sa.KeyringError, match=r"pool/k\.deb: sha256 mismatch"):
        ak.ubuntu_keyring(tmp_path / "cache", mirror, SUITE, keyrings["one"], archs=("all",))
    assert not (tmp_path / "cache" / "ubuntu-archive-keyring.gpg").exists()


# -- debootstrap scripts --------------------------------------------------------------------------------------------


def test_debootstrap_script_falls_back_only_for_ubuntu(tmp_path):
    for name in ("gutsy", "jammy", "bookworm"):
        (tmp_path / name).write_text("# script\n")
    assert ak.debootstrap_script("jammy", tmp_path) is None
    assert ak.debootstrap_script("bookworm", tmp_path) is None
    assert ak.debootstrap_script("noble", tmp_path) == str(tmp_path / "gutsy")
    with pytest.raises(sa.KeyringError, match="'forky'.*not an Ubuntu series"):
        ak.debootstrap_script("forky", tmp_path)
    (tmp_path / "gutsy").unlink()
    with pytest.raises(sa.KeyringError, match="no gutsy script"):
        ak.debootstrap_script("noble", tmp_path)
