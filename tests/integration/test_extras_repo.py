"""Extra packages from a signed third-party apt repository (images.yaml `apt_repositories` + `extras`), for real.

Two archives on 127.0.0.1, each signed by its own throwaway gpg key (tests/aptarchive.py):
  - the distribution: the real .debs the shipped lock gives Debian 12's system and Python layers;
  - a third-party repository `thirdparty` (suite `stable`) with two tiny real .debs made here,
    bt-hello 1.2-1 depending on bt-hello-data (>= 1.0).
A one-image project whose `extras` add bt-hello to the Python layer, with the third-party key checked in
beside images.yaml (its sha256 in images.yaml), is locked (apt in a container of the debian12 base, the
repository `signed-by` that key), built (install-debs fetches both .debs by pool path from the third-party
server) and verified (`buildtool verify`: the extras check finds both at their locked versions and the
image's deb822 .sources signed-by the key). Refused, each with a clear error: a repository whose
InRelease is unsigned, one signed by another key, and (before any engine work) a key file whose sha256
differs from images.yaml's.
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

from aptarchive import AptArchive, GpgSigner, ensure_tools, make_deb, one_base_matrix  # noqa: E402

from buildtool.config.loader import load_config  # noqa: E402
from buildtool.engine import client as engine  # noqa: E402
from buildtool.lock.format import bind_bases, load_lock  # noqa: E402

pytestmark = [pytest.mark.engine, pytest.mark.network]

REPO = Path(__file__).resolve().parents[2]
CHAIN = "ca-certificates fuse3 libfuse2 libfuse3-3 | python3 python3-venv"


def project_yaml(key: str, url: str, repo_url: str, key_sha256: str) -> str:
    return f"""schema: 1
project: {{name: bt-extras-test, description: extras from a third-party repository, source: https://example.invalid/t, vendor: test, licenses: MIT}}
{one_base_matrix(key, url)}tags: {{image: "hello-{{os.tag}}"}}
default_group: all
groups:
  all: {{select: [{{}}]}}
apt_repositories:
  thirdparty:
    url: "{repo_url}"
    suite: stable
    components: [main]
    key: keys/thirdparty.asc
    key_sha256: "{key_sha256}"
extras:
  - on: {{python: system-python}}
    apt: [bt-hello]
    repositories: [thirdparty]
"""


def _run(project: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "buildtool", *args], cwd=project, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ))


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def shipped():
    config = load_config(REPO / "images.yaml", None)
    lock = load_lock(REPO / "images.lock")
    base = bind_bases(config, lock).bases["debian12"]
    if not engine.image_id(engine.docker_client(), base.local_ref):
        pytest.skip(f"the debian12 base {base.local_ref} is not on this engine (`buildtool bases --group smoke` makes it)")
    return lock.bases["debian12"], base.local_ref


@pytest.fixture(scope="module")
def distribution(shipped, tmp_path_factory):
    """The local Debian archive: the real .debs of the shipped debian12 system + Python chain, sha256-checked."""
    ensure_tools()
    entry, _ = shipped
    folder = tmp_path_factory.mktemp("debs")
    with AptArchive() as archive:
        for pocket in ("bookworm", "bookworm-updates", "bookworm-security"):
            archive.add_suite(pocket)
        for name in entry.installs[CHAIN]:
            pin = entry.packages[name]
            url = f"{entry.archives[pin.archive]}/{pin.filename}"
            try:
                data = urllib.request.urlopen(url, timeout=60).read()
            except OSError as exc:
                pytest.skip(f"Debian's pool is unreachable: {url}: {exc}")
            assert hashlib.sha256(data).hexdigest() == pin.sha256
            path = folder / pin.filename.rsplit("/", 1)[1]
            path.write_bytes(data)
            archive.add("bookworm", path)
        archive.publish(date=datetime.now(timezone.utc) - timedelta(hours=2))
        with archive.serve() as url:
            yield archive, url.rstrip("/")


@pytest.fixture(scope="module")
def thirdparty(tmp_path_factory):
    """The third-party repository: its own key, suite `stable`, bt-hello 1.2-1 -> bt-hello-data 1.0-3."""
    out = tmp_path_factory.mktemp("thirdparty-debs")
    with AptArchive(name="thirdparty", origin="buildtool-thirdparty") as archive:
        archive.add("stable", make_deb("bt-hello-data", "1.0-3", out_dir=out))
        archive.add("stable", make_deb("bt-hello", "1.2-1", ["bt-hello-data (>= 1.0)"], out_dir=out))
        archive.publish(date=datetime.now(timezone.utc) - timedelta(hours=2))
        with archive.serve() as url:
            yield archive, url.rstrip("/")


@pytest.fixture
def cleanup_images():
    prefixes: list[str] = []
    yield prefixes
    client = engine.docker_client()
    for image in client.images.list():
        for tag in image.tags:
            if any(tag.startswith(p) for p in prefixes):
                client.api.remove_image(tag, noprune=False)


def _project(tmp_path: Path, shipped, distribution, thirdparty, key_file_from: GpgSigner, *, key_sha256: str | None = None) -> tuple[Path, str]:
    key = "btextras" + os.urandom(3).hex()  # a base key of its own: BuildKit's cache mounts are keyed by base
    project = tmp_path / key
    (project / "keys").mkdir(parents=True)
    key_file = key_file_from.export_armored(project / "keys" / "thirdparty.asc")
    digest = key_sha256 or hashlib.sha256(key_file.read_bytes()).hexdigest()
    (project / "images.yaml").write_text(project_yaml(key, distribution[1], thirdparty[1], digest))
    (project / "site.yaml").write_text(json.dumps({"mirrors": {"apt_keyring": str(distribution[0].keyring_path)}}))
    shipped_lock = json.loads((REPO / "images.lock").read_text())
    # The shipped pip set of debian12's Python layer, for this project's node (sets are keyed by what they ask for).
    set_key, pip = next((k, v) for k, v in shipped_lock["pip"].items() if "debian12.sys.system-python" in v.get("nodes", []))
    (project / "images.lock").write_text(json.dumps({"lock": shipped_lock["lock"], "apt": {},
                                                     "pip": {set_key: {**pip, "nodes": [f"{key}.sys.system-python"]}}}))
    if key_sha256 is None:
        config = load_config(project / "images.yaml", project / "site.yaml")
        client = engine.docker_client()
        engine.tag(client, engine.image_id(client, shipped[1]), config.bases[key].local_ref)
    return project, key


def test_extra_package_from_a_signed_third_party_repository_locks_builds_and_verifies(shipped, distribution, thirdparty, tmp_path,
                                                                                      cleanup_images) -> None:
    project, key = _project(tmp_path, shipped, distribution, thirdparty, thirdparty[0].signer)
    cleanup_images += [f"buildtool/base-{key}:", f"buildtool/{key}."]
    _ok(_run(project, "lock", "--only", "apt", "--site", "site.yaml"))
    lock = load_lock(project / "images.lock").bases[key]
    assert lock.archives["thirdparty"] == thirdparty[1]
    hello, data = lock.packages["bt-hello"], lock.packages["bt-hello-data"]
    assert (hello.version, hello.archive, data.version, data.archive) == ("1.2-1", "thirdparty", "1.0-3", "thirdparty")
    assert hello.filename == thirdparty[0].pool_path("bt-hello", "1.2-1")
    assert hello.sha256 == hashlib.sha256((thirdparty[0].root / hello.filename).read_bytes()).hexdigest()
    assert sorted(lock.installs[f"{CHAIN} | bt-hello"]) == sorted([*lock.installs[CHAIN], "bt-hello", "bt-hello-data"])
    assert {i.suite for i in lock.indexes} == {"bookworm", "bookworm-updates", "bookworm-security"}  # the distribution's own
    _ok(_run(project, "generate"))
    node = project / "generated" / "nodes" / f"{key}.sys.system-python"
    assert "Signed-By: /etc/apt/keyrings/buildtool-thirdparty.asc" in (node / "apt-thirdparty.sources").read_text()
    assert "bt-hello 1.2-1" in (node / "extra-debs.lock").read_text()

    del thirdparty[0].agents[:]
    _ok(_run(project, "build", "--site", "site.yaml"))
    fetched = [unquote(path) for path, agent in thirdparty[0].agents if "APT" in agent]
    assert "/" + hello.filename in fetched and "/" + data.filename in fetched  # by pool path, from the third-party server
    assert not any("/dists/" in p for p in fetched)  # the build reads no index

    done = _ok(_run(project, "verify", "--site", "site.yaml", "--format", "json"))
    report = json.loads(done.stdout)
    assert report["ok"], report
    checks = [c for i in report["images"] for c in i["checks"] if c["family"] == "extras"]
    assert checks and all(c["status"] == "passed" for c in checks), checks
    assert "bt-hello 1.2-1" in checks[0]["message"] and "thirdparty signed-by" in checks[0]["message"], checks
    plan = json.loads((project / "generated" / "plan.json").read_text())
    ref = next(n["tag"] for n in plan["nodes"] if n["id"] == f"{key}.sys.system-python")
    shown = subprocess.run([engine.docker_cli(), "run", "--rm", ref, "dpkg-query", "-W", "-f", "${Version}", "bt-hello"],
                           capture_output=True, text=True)
    assert shown.stdout == "1.2-1", shown.stderr


def test_unsigned_or_wrongly_signed_repositories_and_a_wrong_key_sha256_are_refused(shipped, distribution, thirdparty, tmp_path,
                                                                                    cleanup_images) -> None:
    # Signed by another key than the checked-in one.
    stranger = GpgSigner("someone else <else@buildtool.invalid>")
    try:
        project, key = _project(tmp_path / "other", shipped, distribution, thirdparty, stranger)
        cleanup_images += [f"buildtool/base-{key}:"]
        done = _run(project, "lock", "--only", "apt", "--site", "site.yaml")
        assert done.returncode == 1, done.stderr
        assert "apt refused the third-party repository thirdparty" in done.stderr and "keys/thirdparty.asc" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    finally:
        stranger.close()

    # Unsigned: the same repository without InRelease / Release.gpg.
    archive = thirdparty[0]
    signed = {p: p.read_bytes() for p in archive.root.glob("dists/*/*") if p.name in ("InRelease", "Release.gpg")}
    for p in signed:
        p.unlink()
    try:
        project, key = _project(tmp_path / "unsigned", shipped, distribution, thirdparty, archive.signer)
        cleanup_images += [f"buildtool/base-{key}:"]
        done = _run(project, "lock", "--only", "apt", "--site", "site.yaml")
        assert done.returncode == 1, done.stderr
        assert "apt refused the third-party repository thirdparty" in done.stderr and "not signed" in done.stderr, done.stderr
    finally:
        for p, data in signed.items():
            p.write_bytes(data)

    # A key file that is not the one images.yaml names: every command stops at the config, naming the line.
    project, _ = _project(tmp_path / "sha", shipped, distribution, thirdparty, archive.signer, key_sha256="f" * 64)
    done = _run(project, "validate")
    assert done.returncode == 2
    line = next(i for i, t in enumerate((project / "images.yaml").read_text().splitlines(), 1) if "key_sha256" in t)
    assert f"images.yaml:{line}" in done.stderr and "apt_repositories.thirdparty.key_sha256" in done.stderr, done.stderr
    assert "does not have the sha256" in done.stderr, done.stderr
