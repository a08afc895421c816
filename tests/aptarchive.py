"""A real, local, signed Debian-style apt archive for tests (no Docker, no network).

Everything is built by Debian's own tools: ``dpkg-deb`` makes the packages,
``apt-ftparchive`` writes the indexes and the ``Release`` file, ``gpg`` signs it
with a throwaway key. The host's ``apt-get``/``apt-cache`` can then use it
through :func:`private_apt`, with a configuration that reads nothing of the
host's own apt setup.

Layout under ``AptArchive.root`` (the folder :meth:`AptArchive.serve` serves)::

    dists/<suite>/Release                       apt-ftparchive release, plus
                                                No-Support-for-Architecture-all
    dists/<suite>/InRelease                     Release, clearsigned
    dists/<suite>/Release.gpg                   Release, detached armoured signature
    dists/<suite>/main/binary-amd64/Packages    every package of the suite (arch amd64 and all)
    dists/<suite>/main/binary-amd64/Packages.xz
    dists/<suite>/main/binary-all/Packages      the Architecture: all ones only (apt skips these,
    dists/<suite>/main/binary-all/Packages.xz   as with Debian's archive, because of the field above)
    pool/main/<b or libb>/<source>/<name>_<version without epoch>_<arch>.deb
    snapshot/archive/<archive name>/<YYYYMMDDTHHMMSSZ>/{dists,pool}/...
                                                frozen copies (hard links), in the URL layout of
                                                snapshot.debian.org's /archive/<archive>/<timestamp>/

Suites are pockets of one archive (``bookworm``, ``bookworm-updates``,
``bookworm-security``); they share the pool. A change (``add``,
``drop_from_index``) is only visible after :meth:`AptArchive.publish`, which
rewrites every suite's ``dists/`` files as new files (never in place), so a
snapshot's hard links keep the old bytes.

The signing key lives in a private ``GNUPGHOME`` outside the served root;
:attr:`AptArchive.keyring_path` is its public key as a binary keyring (``.gpg``),
fit for ``deb [signed-by=...]``.

Typical use::

    with AptArchive() as archive:
        archive.add("bookworm", make_deb("bt-lib", "1.0", out_dir=tmp_path))
        archive.add("bookworm-updates", make_deb("bt-hello", "1.1", ["bt-lib (>= 1.0)"], out_dir=tmp_path))
        archive.publish(date=datetime(2024, 1, 1, tzinfo=timezone.utc))
        archive.snapshot("20240101T000000Z")
        with archive.serve() as url, private_apt([f"deb [signed-by={{keyring}}] {url} {suite} main" for suite in archive.suites], archive.keyring_path) as apt:
            apt.update()
            apt.print_uris("bt-hello")  # [(url, file name, size, "SHA256:..."), ...]
            archive.requests  # ["/dists/bookworm/InRelease", ...]
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime
from functools import partial
from pathlib import Path

__all__ = [
    "AptArchive",
    "GpgSigner",
    "PrivateApt",
    "ToolMissing",
    "ensure_tools",
    "make_deb",
    "pool_dir",
    "private_apt",
    "serve_directory",
    "sha256_file",
]

COMPONENT = "main"
ARCH = "amd64"
#: The tools this module runs, and the Debian package that brings each.
TOOLS: Mapping[str, str] = {"apt-ftparchive": "apt-utils", "dpkg-deb": "dpkg", "gpg": "gpg", "gpg-agent": "gpg-agent", "gpgconf": "gpgconf"}
#: Debian's indexes carry MD5sum and SHA256 only; so do these.
_DEBIAN_HASHES = ("-oAPT::FTPArchive::SHA1=false", "-oAPT::FTPArchive::SHA512=false")
_SNAPSHOT_STAMP = re.compile(r"^\d{8}T\d{6}Z$")
_DEFAULT_DATE = datetime(2024, 1, 1, tzinfo=timezone.utc)
_DEB_EPOCH = "1704067200"  # 2024-01-01T00:00:00Z: the mtimes inside every .deb, so their bytes (and hashes) are stable


class ToolMissing(RuntimeError):
    """A Debian tool this module needs is absent and could not be installed."""


# --------------------------------------------------------------------------- tools


def _run(args: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run a command, return its stdout; on failure raise with its stderr in the message."""
    done = subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True, env=None if env is None else {**os.environ, **env}, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stderr.strip()}")
    return done.stdout


def ensure_tools(tools: Mapping[str, str] = TOOLS) -> None:
    """Make sure every tool is on PATH; as root, apt-get install the packages of the missing ones."""
    missing = sorted({package for tool, package in tools.items() if shutil.which(tool) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        raise ToolMissing(f"missing Debian packages {', '.join(missing)}; run: sudo apt-get install -y --no-install-recommends {' '.join(missing)}")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    try:
        _run(install, env=env)
    except RuntimeError:  # a bare image has no package lists yet
        _run(["apt-get", "update"], env=env)
        _run(install, env=env)
    still = sorted(tool for tool in tools if shutil.which(tool) is None)
    if still:
        raise ToolMissing(f"installed {', '.join(missing)} but {', '.join(still)} still not on PATH")


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(partial(handle.read, 1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- packages


def make_deb(
    name: str,
    version: str,
    depends: Iterable[str] = (),
    files: Mapping[str, str] | None = None,
    *,
    out_dir: Path | None = None,
    architecture: str = "all",
) -> Path:
    """Build a tiny real .deb with ``dpkg-deb --build`` and return its path.

    ``depends`` are relation strings (``"bt-lib (>= 1.0)"``), joined into ``Depends:``.
    ``files`` maps absolute install paths to text; by default one file,
    ``/usr/share/<name>/VERSION``. No maintainer scripts. The bytes are
    reproducible (root:root, fixed mtimes), so equal inputs give equal hashes.
    """
    ensure_tools({"dpkg-deb": "dpkg"})
    out_dir = Path(tempfile.mkdtemp(prefix="bt-debs-")) if out_dir is None else out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    contents = {f"/usr/share/{name}/VERSION": f"{name} {version}\n"} if files is None else files
    with tempfile.TemporaryDirectory(prefix="bt-deb-src-") as scratch:
        tree = Path(scratch) / "tree"
        _write_tree(tree, contents)
        control = tree / "DEBIAN"
        control.mkdir(mode=0o755)
        control.chmod(0o755)
        (control / "control").write_text(_control_text(name, version, list(depends), architecture))
        target = out_dir / f"{name}_{_strip_epoch(version)}_{architecture}.deb"
        _run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", tree, target], env={"SOURCE_DATE_EPOCH": _DEB_EPOCH})
    return target


def _write_tree(tree: Path, files: Mapping[str, str]) -> None:
    tree.mkdir(mode=0o755)
    tree.chmod(0o755)
    for install_path, text in files.items():
        target = tree / install_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for path in (tree, *tree.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
        os.utime(path, (int(_DEB_EPOCH), int(_DEB_EPOCH)))


def _control_text(name: str, version: str, depends: list[str], architecture: str) -> str:
    lines = [f"Package: {name}", f"Version: {version}", f"Architecture: {architecture}", "Maintainer: buildtool tests <tests@buildtool.invalid>"]
    if depends:
        lines.append(f"Depends: {', '.join(depends)}")
    lines += ["Section: misc", "Priority: optional", f"Description: {name} test package", " Made by tests/aptarchive.py for apt tests."]
    return "\n".join(lines) + "\n"


def _strip_epoch(version: str) -> str:
    return version.split(":", 1)[1] if ":" in version else version


def pool_dir(source: str, component: str = COMPONENT) -> str:
    """Debian's pool folder for a source package: ``pool/main/b/bt-hello``, ``pool/main/libf/libfoo``."""
    prefix = source[:4] if source.startswith("lib") and len(source) > 3 else source[:1]
    return f"pool/{component}/{prefix}/{source}"


@dataclass(frozen=True)
class DebInfo:
    """The control fields of a .deb that the archive files it by."""

    name: str
    version: str
    architecture: str
    source: str

    @classmethod
    def read(cls, deb: Path) -> DebInfo:
        fields = dict(
            line.split(": ", 1) for line in _run(["dpkg-deb", "--field", deb, "Package", "Version", "Architecture", "Source"]).splitlines() if ": " in line
        )
        source = fields.get("Source", fields["Package"]).split(" ", 1)[0]  # "Source: foo (1.2)" names a different version
        return cls(fields["Package"], fields["Version"], fields["Architecture"], source)

    @property
    def pool_path(self) -> str:
        return f"{pool_dir(self.source)}/{self.name}_{_strip_epoch(self.version)}_{self.architecture}.deb"


# --------------------------------------------------------------------------- signing


class GpgSigner:
    """A throwaway ed25519 signing key in its own GNUPGHOME (no passphrase). ``close()`` stops its agent and deletes it."""

    def __init__(self, uid: str = "buildtool test archive <archive@buildtool.invalid>") -> None:
        ensure_tools()
        # Short path: gpg-agent's socket path must fit in sun_path (108 bytes).
        self.home = Path(tempfile.mkdtemp(prefix="bt-gpg-"))
        self.home.chmod(0o700)
        self._env = {"GNUPGHOME": str(self.home)}
        self._gpg("--quick-gen-key", "--passphrase", "", uid, "ed25519", "sign", "never")
        self.fingerprint = next(line.split(":")[9] for line in self._gpg("--with-colons", "--list-secret-keys").splitlines() if line.startswith("fpr:"))

    def _gpg(self, *args: str | os.PathLike[str]) -> str:
        return _run(["gpg", "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback", *args], env=self._env)

    def export_keyring(self, target: Path) -> Path:
        """Write the public key as a binary keyring (what apt's signed-by= wants for a .gpg name)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        self._gpg("--output", target, "--export", self.fingerprint)
        return target

    def export_armored(self, target: Path) -> Path:
        """Write the public key ASCII-armored (what a checked-in key file of a third-party repository is)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        self._gpg("--armor", "--output", target, "--export", self.fingerprint)
        return target

    def clearsign(self, source: Path, target: Path) -> None:
        self._gpg("--local-user", self.fingerprint, "--digest-algo", "SHA512", "--clearsign", "--output", target, source)

    def detach_sign(self, source: Path, target: Path) -> None:
        self._gpg("--local-user", self.fingerprint, "--digest-algo", "SHA512", "--armor", "--detach-sign", "--output", target, source)

    def close(self) -> None:
        if self.home.exists():
            subprocess.run(["gpgconf", "--kill", "all"], env={**os.environ, **self._env}, capture_output=True, check=False)
            shutil.rmtree(self.home, ignore_errors=True)


# --------------------------------------------------------------------------- HTTP


class _RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from ``directory``; every request's path goes to ``server.requests``; no 304s."""

    def send_head(self):  # type: ignore[no-untyped-def]
        self.server.requests.append(self.path.split("?", 1)[0])  # type: ignore[attr-defined]
        self.server.agents.append((self.path.split("?", 1)[0], self.headers.get("User-Agent", "")))  # type: ignore[attr-defined]
        # Files are rewritten within one second in tests: a 304 by mtime would hand apt stale indexes.
        del self.headers["If-Modified-Since"]
        return super().send_head()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve_directory(root: Path, requests: list[str], agents: list[tuple[str, str]] | None = None) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1 (a free port); yield ``http://127.0.0.1:PORT/``; append each path asked for to ``requests``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_RecordingHandler, directory=str(root)))
    server.daemon_threads = True
    server.requests = requests  # type: ignore[attr-defined]
    server.agents = agents if agents is not None else []  # type: ignore[attr-defined]  # (path, User-Agent): who asked
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=f"aptarchive-http-{server.server_port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- the archive


class AptArchive:
    """A signed archive with several suites sharing one pool; see the module docstring for the layout.

    Use as a context manager (or call ``close()``) to stop the signing key's gpg-agent and delete the temp folders it made.
    """

    def __init__(self, root: Path | None = None, *, name: str = "debian", origin: str = "Debian", signer: GpgSigner | None = None) -> None:
        ensure_tools()
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="bt-archive-")) if root is None else root
        self.root.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.origin = origin
        self._own_signer = signer is None
        self.signer = GpgSigner() if signer is None else signer
        self._work = Path(tempfile.mkdtemp(prefix="bt-archive-work-"))  # filelists, configs: never served
        self.keyring_path = self.signer.export_keyring(self._work / "archive-keyring.gpg")
        self.agents: list[tuple[str, str]] = []
        self._suites: dict[str, dict[tuple[str, str, str], str]] = {}  # suite -> (name, version, arch) -> pool path
        self._pool: dict[tuple[str, str], list[str]] = {}  # (name, version) -> pool paths (one per architecture)
        #: Paths asked of :meth:`serve`'s server, in order (all servers of this archive append here).
        self.requests: list[str] = []

    # -- context management

    def __enter__(self) -> AptArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_signer:
            self.signer.close()
        shutil.rmtree(self._work, ignore_errors=True)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- contents

    @property
    def suites(self) -> list[str]:
        return sorted(self._suites)

    def add_suite(self, suite: str) -> None:
        """Declare a suite, so that publish() writes it even while it has no packages."""
        self._suites.setdefault(suite, {})

    def add(self, suite: str, deb_path: Path) -> str:
        """Copy a .deb into the pool (if not there yet) and list it in ``suite``'s index; return its pool path."""
        info = DebInfo.read(deb_path)
        relative = info.pool_path
        target = self.root / relative
        if not target.exists() or sha256_file(target) != sha256_file(deb_path):
            target.parent.mkdir(parents=True, exist_ok=True)
            partial_file = target.with_name(f".{target.name}.new")
            shutil.copyfile(deb_path, partial_file)
            os.replace(partial_file, target)  # a new inode: snapshots keep the old bytes
        paths = self._pool.setdefault((info.name, info.version), [])
        if relative not in paths:
            paths.append(relative)
        self._suites.setdefault(suite, {})[(info.name, info.version, info.architecture)] = relative
        return relative

    def drop_from_index(self, suite: str, name: str, version: str) -> None:
        """Stop listing name=version in ``suite`` (after the next publish); the pool file stays."""
        index = self._suites[suite]
        keys = [key for key in index if key[:2] == (name, version)]
        if not keys:
            raise KeyError(f"{name}={version} is not in suite {suite}")
        for key in keys:
            del index[key]

    def remove_from_pool(self, name: str, version: str) -> None:
        """Delete name=version's pool file(s) now; the published indexes still list it, so apt gets a 404.

        The next :meth:`publish` leaves it out of every index (apt-ftparchive skips a file it cannot read).
        """
        for relative in self._pool.pop((name, version)):
            (self.root / relative).unlink()

    def pool_path(self, name: str, version: str) -> str:
        """``pool/main/b/bt-hello/bt-hello_1.0_all.deb`` for a package added earlier (its first architecture)."""
        return self._pool[(name, version)][0]

    # -- publishing

    def publish(self, date: datetime | None = None) -> None:
        """Rewrite every suite's Packages{,.xz}, Release, InRelease and Release.gpg.

        ``date`` is the Release ``Date`` (default 2024-01-01T00:00:00Z), so Release bytes are reproducible.
        apt wants each later publish to carry a later (or equal) date, and refuses dates in the future.
        """
        stamp = format_datetime((date or _DEFAULT_DATE).astimezone(timezone.utc), usegmt=True).replace(" GMT", " UTC")  # as Debian writes it
        for suite in self.suites:
            shutil.rmtree(self.root / "dists" / suite, ignore_errors=True)  # new files, not rewrites: snapshots share inodes
        self._write_packages()
        for suite in self.suites:
            self._write_release(suite, stamp)

    def _write_packages(self) -> None:
        sections = []
        for suite, index in sorted(self._suites.items()):
            for arch, keep in ((ARCH, {ARCH, "all"}), ("all", {"all"})):
                binary_dir = f"dists/{suite}/{COMPONENT}/binary-{arch}"
                (self.root / binary_dir).mkdir(parents=True)
                file_list = self._work / f"{suite}-{arch}.list"
                file_list.write_text("".join(f"{path}\n" for key, path in sorted(index.items()) if key[2] in keep))
                sections.append(f'BinDirectory "{binary_dir}" {{ Packages "{binary_dir}/Packages"; FileList "{file_list}"; }};')
        config = self._work / "generate.conf"
        config.write_text("\n".join([f'Dir {{ ArchiveDir "{self.root}"; }};', 'Default { Packages::Compress ". xz"; };', *sections]) + "\n")
        _run(["apt-ftparchive", "--no-contents", *_DEBIAN_HASHES, "generate", config])

    def _write_release(self, suite: str, stamp: str) -> None:
        fields = {
            "Origin": self.origin,
            "Label": self.origin,
            "Suite": suite,
            "Codename": suite,
            "Date": stamp,
            "Architectures": f"all {ARCH}",
            "Components": COMPONENT,
            "Description": f"buildtool test archive {self.name} {suite}",
        }
        options = [f"-oAPT::FTPArchive::Release::{key}={value}" for key, value in fields.items()]
        suite_dir = self.root / "dists" / suite
        text = _run(["apt-ftparchive", *_DEBIAN_HASHES, *options, "release", "."], cwd=suite_dir)
        # As in Debian's archive: binary-<arch>/Packages also lists Architecture: all, so apt need not fetch binary-all.
        text = text.replace("\nMD5Sum:", "\nNo-Support-for-Architecture-all: Packages\nMD5Sum:", 1)
        release = suite_dir / "Release"
        release.write_text(text)
        self.signer.clearsign(release, suite_dir / "InRelease")
        self.signer.detach_sign(release, suite_dir / "Release.gpg")

    # -- snapshots and serving

    def snapshot_path(self, timestamp: str) -> str:
        """``snapshot/archive/<name>/<timestamp>/``: the snapshot's folder relative to the root (and to the base URL)."""
        if not _SNAPSHOT_STAMP.match(timestamp):
            raise ValueError(f"snapshot timestamp must look like 20240101T000000Z, not {timestamp!r}")
        return f"snapshot/archive/{self.name}/{timestamp}/"

    def snapshot(self, timestamp: str) -> str:
        """Freeze the published archive (dists and pool, as hard links) under :meth:`snapshot_path`; return that path."""
        relative = self.snapshot_path(timestamp)
        target = self.root / relative
        if target.exists():
            raise FileExistsError(f"snapshot {relative} exists already")
        target.mkdir(parents=True)
        for top in ("dists", "pool"):
            if (self.root / top).is_dir():
                shutil.copytree(self.root / top, target / top, copy_function=os.link)
        return relative

    def serve(self) -> contextlib.AbstractContextManager[str]:
        """Serve the root (live archive and snapshots) on 127.0.0.1; the context value is the base URL ``http://127.0.0.1:PORT/``."""
        return serve_directory(self.root, self.requests, self.agents)


# --------------------------------------------------------------------------- the host's apt, privately


class PrivateApt:
    """The host's apt-get/apt-cache with a private state, cache, sources list and configuration.

    An ``APT_CONFIG`` file of its own turns off ``/etc/apt/apt.conf``, ``apt.conf.d/``,
    ``preferences``, ``trusted.gpg(.d)`` and ``sources.list(.d)``: only the given
    sources (signed by the given keyring) are seen. Nothing needs root but
    ``install`` proper, which tests should not run: use ``--print-uris`` or ``-s``.
    """

    def __init__(self, sources_lines: Sequence[str], keyring: Path | None = None, *, root: Path | None = None) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="bt-apt-")) if root is None else root
        self.keyring = keyring
        for sub in ("state/lists/partial", "cache/archives/partial", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()
        self.sources_list = self.root / "sources.list"
        self.set_sources(sources_lines)
        self.config = self.root / "apt.conf"
        self.config.write_text(self._config_text())
        self.env = {**os.environ, "APT_CONFIG": str(self.config), "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}

    def set_sources(self, sources_lines: Sequence[str]) -> None:
        """Replace the sources list; ``{keyring}`` in a line is replaced by the keyring's path."""
        text = "".join(line.replace("{keyring}", str(self.keyring)) + "\n" for line in sources_lines)
        self.sources_list.write_text(text)

    def _config_text(self) -> str:
        empty = self.root / "empty.d"  # the *Parts folders: an empty one, as a missing one makes apt warn
        empty.mkdir(exist_ok=True)
        settings = {
            "Dir::Etc::main": "/nonexistent",
            "Dir::Etc::Parts": str(empty),
            "Dir::Etc::SourceList": str(self.sources_list),
            "Dir::Etc::SourceParts": str(empty),
            "Dir::Etc::Trusted": "/nonexistent",
            "Dir::Etc::TrustedParts": str(empty),
            "Dir::Etc::Preferences": "/nonexistent",
            "Dir::Etc::PreferencesParts": str(empty),
            "Dir::Etc::netrc": "/nonexistent",
            "Dir::Etc::netrcparts": str(empty),
            "Dir::State": str(self.root / "state"),
            "Dir::State::status": str(self.root / "status"),
            "Dir::Cache": str(self.root / "cache"),
            "Dir::Log": str(self.root / "log"),
            "APT::Architecture": ARCH,
            "APT::Sandbox::User": "root",  # the _apt user could not read a 0700 temp folder
            "Debug::NoLocking": "true",
            "Acquire::Languages": "none",
            "Acquire::Retries": "0",
            "Acquire::http::Proxy": "DIRECT",
            "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled": "false",
        }
        lines = [f'{key} "{value}";' for key, value in settings.items()]
        lines.append(f'APT::Architectures {{ "{ARCH}"; }};')
        return "\n".join(lines) + "\n"

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``tool`` (apt-get, apt-cache, apt-config) with this configuration; raise on failure if ``check``."""
        done = subprocess.run([tool, *args], capture_output=True, text=True, env=self.env)
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def apt_get(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("apt-get", *args, check=check)

    def apt_cache(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("apt-cache", *args, check=check)

    def update(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``apt-get update``; apt exits 0 with only a warning for some failures, so a W:/E: line counts as failing too."""
        done = self.apt_get("update", check=False)
        failed = done.returncode != 0 or any(line.startswith(("E:", "W:", "Err:")) for line in (done.stdout + done.stderr).splitlines())
        if check and failed:
            raise RuntimeError(f"apt-get update failed:\n{done.stdout}\n{done.stderr}")
        return done

    def print_uris(self, *packages: str, hash_type: str = "SHA256") -> list[tuple[str, str, int, str]]:
        """``apt-get install --print-uris``: (url, file name, size, '<hash_type>:<hex>') for each package apt would fetch.

        apt 2.6 prints the MD5Sum by default (the first hash it finds); ``Acquire::ForceHash`` makes it print ``hash_type``.
        """
        out = self.apt_get("install", "--print-uris", "--no-install-recommends", "-qq", f"-oAcquire::ForceHash={hash_type}", *packages).stdout
        rows = []
        for line in out.splitlines():
            if line.startswith("'"):
                url, filename, size, digest = line.split()
                rows.append((url.strip("'"), filename, int(size), digest))
        return rows

    def policy(self, package: str) -> str:
        return self.apt_cache("policy", package).stdout

    def versions(self, package: str) -> list[str]:
        """The versions apt-cache knows of ``package``, newest first (``apt-cache madison``)."""
        out = self.apt_cache("madison", package).stdout
        return list(dict.fromkeys(line.split("|")[1].strip() for line in out.splitlines() if "|" in line))

    def __enter__(self) -> PrivateApt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)


def private_apt(sources_lines: Sequence[str], keyring: Path | None = None, *, root: Path | None = None) -> PrivateApt:
    """The host's apt with only ``sources_lines`` as sources (see :class:`PrivateApt`).

    Lines are sources.list lines, e.g. ``f"deb [signed-by={keyring}] {url} bookworm main"``;
    ``{keyring}`` in a line stands for ``keyring``.
    """
    return PrivateApt(sources_lines, keyring, root=root)


def one_base_matrix(key: str, url: str) -> str:
    """The images.yaml middle both local-archive tests use: the system section, one bootstrapped bookworm base
    `key` whose mirror and security mirror are `url`, the system-python component, and the matrix axes."""
    return f"""system: {{user: app, uid: 1000, locale: C.UTF-8, workdir: /home/app}}
bases:
  {key}:
    family: debian
    version: "12"
    codename: bookworm
    image: debian:bookworm-slim@sha256:96e378d7e6531ac9a15ad505478fcc2e69f371b10f5cdf87857c4b8188404716
    python: "3.11.2"
    tag: {key}
    bootstrap: {{tool: debootstrap, suite: bookworm, mirror: "{url}", security_mirror: "{url}", variant: minbase}}
components:
  python:
    system-python: {{flavor: system-python, pip: "25.3", tag: ""}}
  mpi:
    none: {{flavor: none, tag: ""}}
  accelerator:
    cpu: {{flavor: none, tag: ""}}
  onnxruntime:
    none: {{flavor: none, tag: ""}}
matrix:
  axes: {{os: [{key}], python: [system-python], mpi: [none], accelerator: [cpu], onnxruntime: [none]}}
"""
