"""An APT archive's signed metadata, verified: the InRelease signature (gpgv), its Release fields, Packages indexes by size and sha256.

Trust comes from the signature, so plain http is fine; every file past the InRelease is checked against the
verified Release. Only the standard library plus `gpgv` and `dpkg --compare-versions`.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import lzma
import subprocess
import tempfile
import types
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from buildtool.errors import OperationError

_TIMEOUT_S = 60.0
_CHUNK = 1 << 20
_SIGNED_HEAD = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIG_HEAD = "-----BEGIN PGP SIGNATURE-----"
_SIG_TAIL = "-----END PGP SIGNATURE-----"


class KeyringError(OperationError):
    """A network failure, bad signature or hash mismatch on the way to a verified file; one line naming the URL."""


@dataclass(frozen=True)
class IndexEntry:
    size: int
    sha256: str


@dataclass(frozen=True)
class ReleaseFile:
    """The signed part of an InRelease, verified; fields outside the signature never reach here."""

    url: str
    dist: str  # the dists/ directory it was fetched from (what index URLs are built from)
    date: str
    suite: str
    codename: str
    sha256: Mapping[str, IndexEntry]  # path under dists/<dist>/ -> size and sha256 (read-only)
    signers: tuple[str, ...]  # fingerprints of the valid signatures
    by_hash: bool = False  # Acquire-By-Hash: indexes can be fetched by content, immune to a mirror sync mid-download
    valid_until: str | None = None


@dataclass(frozen=True)
class PackageStanza:
    name: str
    version: str
    filename: str
    sha256: str
    size: int


# -- download -------------------------------------------------------------------------------------------------------


def fetch(url: str, *, max_bytes: int | None = None) -> bytes:
    """The body of `url`; with max_bytes, stop reading past it (a larger body is a mismatch, not a memory bill)."""
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp:  # plain http by design: trust comes from the signature
            chunks: list[bytes] = []
            total = 0
            while chunk := resp.read(_CHUNK):
                chunks.append(chunk)
                total += len(chunk)
                if max_bytes is not None and total > max_bytes:
                    raise KeyringError(f"{url}: larger than the {max_bytes} bytes the verified Release lists")
            return b"".join(chunks)
    except urllib.error.HTTPError as exc:
        raise KeyringError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KeyringError(f"{url}: cannot download ({reason})") from exc


def check_digest(url: str, data: bytes, size: int, sha256: str) -> None:
    if len(data) != size:
        raise KeyringError(f"{url}: size mismatch (expected {size} bytes, got {len(data)})")
    got = hashlib.sha256(data).hexdigest()
    if got != sha256.lower():
        raise KeyringError(f"{url}: sha256 mismatch (expected {sha256}, got {got})")


# -- signature ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Signature:
    good: bool  # GOODSIG: valid, key in keyring, not expired or revoked
    bad: bool  # BADSIG: the data does not match the signature
    fingerprint: str | None  # from VALIDSIG


def _signatures(status: str) -> list[_Signature]:
    """Group gpgv's --status-fd lines per signature (NEWSIG starts one); NO_PUBKEY/ERRSIG/EXPKEYSIG leave it neither good nor bad."""
    groups: list[list[list[str]]] = []
    for line in status.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "[GNUPG:]":
            continue
        if words[1] == "NEWSIG" or not groups:
            groups.append([])
        groups[-1].append(words[1:])
    sigs = []
    for group in groups:
        kinds = {words[0] for words in group}
        fpr = next((words[1] for words in group if words[0] == "VALIDSIG" and len(words) > 1), None)
        sigs.append(_Signature(good="GOODSIG" in kinds and fpr is not None, bad="BADSIG" in kinds, fingerprint=fpr))
    return sigs


def _check_clearsigned_shape(url: str, text: str) -> None:
    """Exactly one clearsigned block and nothing around it: text outside the signature is how apt's parsers were fooled."""
    body = text.lstrip("\r\n")
    if not body.startswith(_SIGNED_HEAD + "\n") and not body.startswith(_SIGNED_HEAD + "\r\n"):
        raise KeyringError(f"{url}: not a clearsigned file (no '{_SIGNED_HEAD}' at the start)")
    if text.count(_SIGNED_HEAD) != 1 or text.count(_SIG_HEAD) != 1 or text.count(_SIG_TAIL) != 1:
        raise KeyringError(f"{url}: more than one signed block or signature armour; refusing to guess which part is signed")
    if not text.rstrip().endswith(_SIG_TAIL):
        raise KeyringError(f"{url}: text after the signature; refusing it")


def verify_clearsigned(url: str, data: bytes, keyring: Path) -> tuple[str, tuple[str, ...]]:
    """The signed text of a clearsigned file and its valid signers' fingerprints.

    Accepted when at least one signature is valid from `keyring` and none is BAD. gpgv's exit status alone won't do:
    Debian's InRelease carries several signatures, and gpgv exits non-zero when any key is missing from the keyring.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KeyringError(f"{url}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    _check_clearsigned_shape(url, text)
    if not keyring.is_file():
        raise KeyringError(f"{url}: keyring {keyring} does not exist")
    with tempfile.TemporaryDirectory(prefix="buildtool-gpgv-") as tmp:
        signed, plain = Path(tmp, "in"), Path(tmp, "out")
        signed.write_bytes(data)
        # gpgv --output writes exactly what it verified (dash-escaping undone); parsing that, not our copy, is the point.
        proc = subprocess.run(
            ["gpgv", "--homedir", tmp, "--status-fd", "1", "--keyring", str(keyring.resolve()), "--output", str(plain), str(signed)],
            capture_output=True,
            text=True,
            check=False,
        )
        sigs = _signatures(proc.stdout)
        if any(s.bad for s in sigs):
            raise KeyringError(f"{url}: BAD signature (the signed text was altered)")
        signers = tuple(s.fingerprint for s in sigs if s.good and s.fingerprint)
        if not signers:
            detail = (proc.stderr.strip().splitlines() or ["no signature"])[-1]
            raise KeyringError(f"{url}: no valid signature from {keyring} ({detail})")
        if not plain.is_file():
            raise KeyringError(f"{url}: gpgv reported a good signature but wrote no signed text (exit {proc.returncode})")
        return plain.read_text(encoding="utf-8"), signers


# -- Release --------------------------------------------------------------------------------------------------------


def _paragraphs(text: str) -> Iterator[dict[str, str]]:
    """deb822 paragraphs: 'Field: value' with continuation lines (leading space) kept, newline-joined."""
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t":
            if last is not None:
                fields[last] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip().lower()
            fields[last] = value.strip()
    if fields:
        yield fields


def _sha256_table(url: str, value: str) -> Mapping[str, IndexEntry]:
    table: dict[str, IndexEntry] = {}
    for line in value.splitlines():
        words = line.split()
        if not words:
            continue
        if len(words) != 3 or len(words[0]) != 64 or not words[1].isdigit():
            raise KeyringError(f"{url}: malformed SHA256 line {line!r}")
        table[words[2]] = IndexEntry(size=int(words[1]), sha256=words[0].lower())
    return types.MappingProxyType(table)


def _date(text: str) -> datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def parse_release(url: str, dist: str, signed_text: str, signers: tuple[str, ...] = (), *, now: datetime | None = None) -> ReleaseFile:
    """A ReleaseFile from already-verified text; checks it is the suite asked for and not past Valid-Until."""
    para = next(_paragraphs(signed_text), None)
    if para is None:
        raise KeyringError(f"{url}: empty Release")
    suite, codename = para.get("suite", ""), para.get("codename", "")
    # A validly signed Release of another suite (an older one, say) served under this name is a downgrade, not a mirror quirk.
    if dist.split("/")[0] not in {suite, codename}:
        raise KeyringError(f"{url}: signed for suite {suite!r} / codename {codename!r}, not {dist!r}")
    if "sha256" not in para:
        raise KeyringError(f"{url}: Release has no SHA256 table")
    valid_until = para.get("valid-until")
    if valid_until:
        until = _date(valid_until)
        if until is None:
            raise KeyringError(f"{url}: unreadable Valid-Until {valid_until!r}")
        if until < (now or datetime.now(timezone.utc)):
            raise KeyringError(f"{url}: expired (Valid-Until {valid_until}); the mirror or the gateway serves stale metadata")
    return ReleaseFile(
        url=url,
        dist=dist,
        date=para.get("date", ""),
        suite=suite,
        codename=codename,
        sha256=_sha256_table(url, para["sha256"]),
        signers=signers,
        by_hash=para.get("acquire-by-hash", "").lower() == "yes",
        valid_until=valid_until,
    )


def fetch_verified_release(mirror: str, suite: str, keyring: Path) -> ReleaseFile:
    """`{mirror}/dists/{suite}/InRelease`, signature checked against `keyring`, its signed body parsed."""
    url = f"{mirror.rstrip('/')}/dists/{suite}/InRelease"
    signed_text, signers = verify_clearsigned(url, fetch(url, max_bytes=64 << 20), keyring)
    return parse_release(url, suite, signed_text, signers)


# -- Packages -------------------------------------------------------------------------------------------------------


def index_urls(mirror: str, release: ReleaseFile, path: str) -> list[str]:
    """Where to fetch `path` (relative to dists/<dist>/): by content first when the archive offers it, then by name."""
    base = f"{mirror.rstrip('/')}/dists/{release.dist}"
    urls = [f"{base}/{path}"]
    if release.by_hash and path in release.sha256:
        folder = path.rpartition("/")[0]
        urls.insert(0, f"{base}/{folder}/by-hash/SHA256/{release.sha256[path].sha256}")
    return urls


def fetch_verified_index(mirror: str, release: ReleaseFile, component: str, arch: str) -> str:
    """`dists/<suite>/<component>/binary-<arch>/Packages.xz`, size and sha256 checked against the verified Release, decompressed."""
    path = f"{component}/binary-{arch}/Packages.xz"
    entry = release.sha256.get(path)
    if entry is None:
        raise KeyringError(f"{release.url}: lists no {path}")
    failures: list[str] = []
    for url in index_urls(mirror, release, path):
        try:
            data = fetch(url, max_bytes=entry.size)
            check_digest(url, data, entry.size, entry.sha256)
        except KeyringError as exc:
            failures.append(str(exc))
            continue
        try:
            return lzma.decompress(data).decode("utf-8")
        except (lzma.LZMAError, UnicodeDecodeError) as exc:
            raise KeyringError(f"{url}: verified but not readable xz/UTF-8 ({exc})") from exc
    raise KeyringError(failures[-1] if len(failures) == 1 else "; ".join(failures))


@functools.cache
def _dpkg_newer(a: str, b: str) -> bool:
    """dpkg's own ordering (epochs, ~, revisions): reimplementing it is where version pickers go wrong."""
    return subprocess.run(["dpkg", "--compare-versions", a, "gt", b], check=False).returncode == 0


def find_package(index_text: str, name: str) -> PackageStanza:
    """The stanza of `name` in a Packages index; the newest by dpkg ordering when several versions are listed."""
    best: PackageStanza | None = None
    for para in _paragraphs(index_text):
        if para.get("package") != name:
            continue
        try:
            stanza = PackageStanza(name=name, version=para["version"], filename=para["filename"], sha256=para["sha256"].lower(), size=int(para["size"]))
        except (KeyError, ValueError) as exc:
            raise KeyringError(f"Packages stanza of {name} {para.get('version', '?')}: missing or bad field {exc}") from exc
        if best is None or _dpkg_newer(stanza.version, best.version):
            best = stanza
    if best is None:
        raise KeyringError(f"package {name!r} is not in the index")
    return best
