"""The apt lock against a real archive on 127.0.0.1, through a point release, on a real engine.

A signed local archive (tests/aptarchive.py: apt-ftparchive + gpg) holds real .debs: the ones
the shipped lock says Debian 12's system and Python layers install, downloaded from Debian's
pool and checked against that lock. A one-image project on a copy of the debian12 base is then
locked (apt in a container of the base), built, checked and taken through a point release:

1. lock, then the archive publishes a point release (fuse3 gets a newer version in -security,
   the locked one leaves the index but its pool file stays): `lock --check` reports it under
   `security`, not `stale`, and the first build still installs the locked fuse3 by pool path;
2. the pool file goes too: `lock --check` says `stale` (exit 1), `build` stops before any engine
   work naming the package, and `lock --refresh-stale` re-locks just that base, announces what
   moved, records it in the lock and the image's label, and the build passes again;
3. the same archive laid out as a snapshot at the lock's time: with the site overlay's
   `apt_snapshot`, a build whose locked file has left the live archive reads the snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for aptarchive

from aptarchive import AptArchive, ensure_tools, one_base_matrix  # noqa: E402

from buildtool.config.loader import load_config  # noqa: E402
from buildtool.engine import client as engine  # noqa: E402
from buildtool.lock.format import bind_bases, load_lock  # noqa: E402

pytestmark = [pytest.mark.engine, pytest.mark.network]

REPO = Path(__file__).resolve().parents[2]
SYSTEM = "ca-certificates fuse3 libfuse2 libfuse3-3"
CHAIN = f"{SYSTEM} | python3 python3-venv"


def project_yaml(key: str, url: str) -> str:
    return f"""schema: 1
project: {{name: bt-archive-test, description: apt lock against a local archive, source: https://example.invalid/t, vendor: test, licenses: MIT}}
{one_base_matrix(key, url)}  exclude: []
  include: []
  rules: []
tags: {{image: "{{python.tag}}-{{os.tag}}", release: "{{date}}.v{{n}}", moving: [latest]}}
default_group: all
groups:
  all: {{select: [{{}}]}}
checks: []
"""


def _run(project: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "buildtool", *args], cwd=project, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ))


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def shipped():
    """The shipped lock's debian12 entry and the local image of its base (made by `make build` / `buildtool bases`)."""
    config = load_config(REPO / "images.yaml", None)
    lock = load_lock(REPO / "images.lock")
    base = bind_bases(config, lock).bases["debian12"]
    client = engine.docker_client()
    if not engine.image_id(client, base.local_ref):
        pytest.skip(f"the debian12 base {base.local_ref} is not on this engine (`buildtool bases --group smoke` makes it)")
    return lock.bases["debian12"], base.local_ref


@pytest.fixture(scope="module")
def real_debs(shipped, tmp_path_factory) -> dict[str, Path]:
    """name -> the real .deb the shipped lock names for debian12's system + python chain, from Debian's pool, sha256-checked."""
    entry, _ = shipped
    folder = tmp_path_factory.mktemp("debs")
    out = {}
    for name in entry.installs[CHAIN]:
        pin = entry.packages[name]
        url = f"{entry.archives[pin.archive]}/{pin.filename}"
        try:
            data = urllib.request.urlopen(url, timeout=60).read()
        except OSError as exc:
            pytest.skip(f"Debian's pool is unreachable: {url}: {exc}")
        assert hashlib.sha256(data).hexdigest() == pin.sha256, f"{url} does not match the shipped lock"
        path = folder / pin.filename.rsplit("/", 1)[1]
        path.write_bytes(data)
        out[name] = path
    return out


def _repack(deb: Path, version: str, out: Path) -> Path:
    """The same package under a new version: a point release's rebuild."""
    tree = out / f"tree-{version}"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN" / "control"
    control.write_text("".join(f"Version: {version}\n" if line.startswith("Version:") else line
                               for line in control.read_text().splitlines(keepends=True)))
    target = out / f"{deb.stem}+repack.deb"
    subprocess.run(["dpkg-deb", "-b", "--root-owner-group", str(tree), str(target)], check=True, capture_output=True)
    return target


def _project(tmp_path: Path, key: str, url: str, shipped, keyring: Path, snapshot: str | None = None) -> Path:
    """A project folder: images.yaml, a site overlay trusting the archive's key, the shipped pip set, the base tagged for it."""
    project = tmp_path / key
    project.mkdir()
    (project / "images.yaml").write_text(project_yaml(key, url))
    site = {"mirrors": {"apt_keyring": str(keyring)}}
    if snapshot:
        site["mirrors"]["apt_snapshot"] = snapshot
    (project / "site.yaml").write_text(json.dumps(site))
    shipped_lock = json.loads((REPO / "images.lock").read_text())
    # The shipped pip set of debian12's Python layer, for this project's node (sets are keyed by what they ask for).
    set_key, pip = next((k, v) for k, v in shipped_lock["pip"].items() if "debian12.sys.system-python" in v.get("nodes", []))
    (project / "images.lock").write_text(json.dumps({"lock": shipped_lock["lock"], "apt": {},
                                                     "pip": {set_key: {**pip, "nodes": [f"{key}.sys.system-python"]}}}))
    config = load_config(project / "images.yaml", project / "site.yaml")
    client = engine.docker_client()
    engine.tag(client, engine.image_id(client, shipped[1]), config.bases[key].local_ref)  # the recipe's ref before the first lock
    return project


def _check(project: Path) -> tuple[int, dict]:
    done = _run(project, "lock", "--check", "--format", "json", "--site", "site.yaml")
    return done.returncode, json.loads(done.stdout)


def _image_ref(project: Path, key: str) -> str:
    plan = json.loads((project / "generated" / "plan.json").read_text())
    return next(n["tag"] for n in plan["nodes"] if n["id"] == f"{key}.sys.system-python")


def _fresh_key(prefix: str) -> str:
    """A base key of its own per run: BuildKit's cache mounts (keyed by base) outlive a test, and a warm one
    would hide whether the build fetched anything."""
    return prefix + os.urandom(3).hex()


@pytest.fixture
def cleanup_images():
    """Every image this test tagged is removed afterwards (also on failure)."""
    prefixes: list[str] = []
    yield prefixes
    client = engine.docker_client()
    for image in client.images.list():
        for tag in image.tags:
            if any(tag.startswith(p) for p in prefixes):
                client.api.remove_image(tag, noprune=False)


def _dpkg_version(ref: str, package: str) -> str:
    done = subprocess.run([engine.docker_cli(), "run", "--rm", ref, "dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def archive(real_debs, docker_ok):
    ensure_tools()
    with AptArchive() as archive:
        for pocket in ("bookworm", "bookworm-updates", "bookworm-security"):
            archive.add_suite(pocket)
        for deb in real_debs.values():
            archive.add("bookworm", deb)
        archive.publish(date=datetime.now(timezone.utc) - timedelta(hours=2))
        yield archive


def test_point_release_pool_fetch_stale_refusal_and_refresh(archive, real_debs, shipped, tmp_path, cleanup_images) -> None:
    locked_fuse3 = shipped[0].packages["fuse3"].version
    new_fuse3 = f"{locked_fuse3}+bt1"
    key = _fresh_key("btarchive")
    cleanup_images += [f"buildtool/base-{key}:", f"buildtool/{key}."]
    with archive.serve() as url:
        url = url.rstrip("/")
        project = _project(tmp_path, key, url, shipped, archive.keyring_path)
        _ok(_run(project, "lock", "--only", "apt", "--site", "site.yaml"))
        lock = load_lock(project / "images.lock").bases[key]
        assert {i.suite for i in lock.indexes} == {"bookworm", "bookworm-updates", "bookworm-security"}
        assert set(lock.installs[CHAIN]) == set(real_debs)  # apt chose exactly the closure Debian's archive gave
        for name, path in real_debs.items():
            assert lock.packages[name].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        _ok(_run(project, "generate"))

        # A point release: fuse3 moves on in -security, the locked version leaves the index, its pool file stays.
        archive.add("bookworm-security", _repack(real_debs["fuse3"], new_fuse3, tmp_path))
        archive.drop_from_index("bookworm", "fuse3", locked_fuse3)
        archive.publish(date=datetime.now(timezone.utc) - timedelta(hours=1))
        rc, report = _check(project)
        assert rc == 0 and report["stale"] == []
        assert [(p["package"], p["locked"], p["available"]) for p in report["security"]] == [("fuse3", locked_fuse3, new_fuse3)]

        del archive.requests[:], archive.agents[:]
        _ok(_run(project, "build", "--site", "site.yaml"))
        by_apt = [unquote(path) for path, agent in archive.agents if "APT" in agent]  # the build's install-debs, not buildtool's preflight
        pool_fuse3 = "/" + lock.packages["fuse3"].filename
        assert pool_fuse3 in by_apt  # fetched by its pool path, no index involved
        assert by_apt and not any("/dists/" in r for r in by_apt)
        ref = _image_ref(project, key)
        assert _dpkg_version(ref, "fuse3") == locked_fuse3

        # The pool file goes too: stale, the build refuses before any engine work, the refresh moves just that base.
        archive.remove_from_pool("fuse3", locked_fuse3)
        rc, report = _check(project)
        assert rc == 1
        assert [(p["base"], p["package"], p["locked"], p["available"]) for p in report["stale"]] == [(key, "fuse3", locked_fuse3, new_fuse3)]
        refused = _run(project, "build", "--site", "site.yaml", "--force")
        assert refused.returncode == 1
        assert "fuse3" in refused.stderr and locked_fuse3 in refused.stderr and "buildtool lock --refresh-stale" in refused.stderr
        assert "nothing was built" in refused.stderr

        refreshed = _ok(_run(project, "lock", "--refresh-stale", "--site", "site.yaml"))
        assert f"fuse3 {locked_fuse3} -> {new_fuse3}" in refreshed.stderr
        relocked = load_lock(project / "images.lock").bases[key]
        assert relocked.packages["fuse3"].version == new_fuse3 and relocked.refreshed
        assert relocked.packages["python3"] == lock.packages["python3"]  # what did not move stays byte-identical
        _ok(_run(project, "check"))
        built = _ok(_run(project, "build", "--site", "site.yaml", "--format", "json"))
        summary = json.loads(built.stdout)
        assert summary["apt_refreshed"][key] == list(relocked.refreshed)
        ref = _image_ref(project, key)
        assert _dpkg_version(ref, "fuse3") == new_fuse3
        labels = engine.docker_client().api.inspect_image(ref)["Config"]["Labels"]
        assert "automatic refresh" in labels["io.buildtool.apt.refreshed"]


def test_snapshot_site_builds_after_the_live_archive_lost_the_file(archive, real_debs, shipped, tmp_path, cleanup_images) -> None:
    key = _fresh_key("btsnap")
    cleanup_images += [f"buildtool/base-{key}:", f"buildtool/{key}."]
    with archive.serve() as url:
        url = url.rstrip("/")
        template = f"{url}/snapshot/archive/{{archive}}/{{timestamp}}"
        live = _project(tmp_path, key, url, shipped, archive.keyring_path)
        _ok(_run(live, "lock", "--only", "apt", "--site", "site.yaml"))
        lock = load_lock(live / "images.lock").bases[key]
        # snapshot.debian.org keeps each archive under its own name: debian and debian-security are one archive here
        archive.snapshot(lock.resolved_at)
        (archive.root / "snapshot" / "archive" / "debian-security").symlink_to("debian")
        snap = live.with_name("btsnap-site")
        snap.mkdir()
        for name in ("images.yaml", "images.lock"):
            (snap / name).write_text((live / name).read_text())
        (snap / "site.yaml").write_text(json.dumps({"mirrors": {"apt_keyring": str(archive.keyring_path), "apt_snapshot": template}}))
        _ok(_run(snap, "generate"))

        gone = lock.packages["libfuse2"]
        archive.remove_from_pool("libfuse2", gone.version)
        archive.publish(date=datetime.now(timezone.utc) - timedelta(minutes=30))
        rc, report = _check(live)
        assert rc == 1 and [p["package"] for p in report["stale"]] == ["libfuse2"]
        rc, report = _check(snap)
        assert rc == 0 and report["stale"] == [] and report["probed"] == len(lock.packages)

        del archive.requests[:], archive.agents[:]
        _ok(_run(snap, "build", "--site", "site.yaml"))
        by_apt = [unquote(path) for path, agent in archive.agents if "APT" in agent]
        assert f"/snapshot/archive/debian/{lock.resolved_at}/{gone.filename}" in by_apt
        assert not any(r.startswith("/pool/") or "/dists/" in r for r in by_apt)
        assert _dpkg_version(_image_ref(snap, key), "libfuse2") == gone.version
