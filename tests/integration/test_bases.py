"""`buildtool bases` on a real engine: bootstrap debian12 (bookworm) from Debian's archive once per session.

The base is made under a test-only key (base-debian12-itest), so the test never retags the
real debian12 base that node images build FROM, and its .state/ and logs/ go to a tmp dir.
The image is removed at the end of the session.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from pathlib import Path

import pytest

from buildtool.config.loader import load_config
from buildtool.engine import client as engine
from buildtool.engine.bases import run_bases
from buildtool.engine.bootstrap import LABEL_KEY, LABEL_RECIPE, LABEL_SUITE, content_ref
from buildtool.errors import OperationError

REPO = Path(__file__).resolve().parents[2]
TEST_KEY = "debian12-itest"

pytestmark = [pytest.mark.engine]


@pytest.fixture(scope="session")
def client():
    try:
        return engine.docker_client()
    except OperationError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def config(tmp_path_factory):
    real = load_config(REPO / "images.yaml")
    work = tmp_path_factory.mktemp("bases")
    # Same recipe, a test-only key; state and logs under the tmp dir.
    base = dataclasses.replace(real.bases["debian12"], key=TEST_KEY)
    return dataclasses.replace(real, path=str(work / "images.yaml"), bases={TEST_KEY: base})


@pytest.fixture(scope="session")
def made(client, config, tmp_path_factory):
    """Bootstrap the base once: (exit code, json rows, seconds)."""
    import contextlib
    import io

    base = config.bases[TEST_KEY]
    with contextlib.suppress(Exception):
        client.images.remove(base.local_ref, force=True)
    out = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out):
        rc = run_bases(config, [base], force=False, output_format="json")
    seconds = time.monotonic() - started
    rows = json.loads(out.getvalue())
    yield rc, rows, seconds
    with contextlib.suppress(Exception):
        client.images.remove(rows[0]["ref"], force=True)


def content_digest_of(ref: str) -> str:
    from buildtool.lock.format import manifest_digest

    listed = subprocess.run([engine.docker_cli(), "run", "--rm", ref, "dpkg-query", "-W", "-f",
                             "${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n"], capture_output=True, text=True, timeout=120)
    return manifest_digest([line[3:].strip() for line in listed.stdout.splitlines() if line.startswith("ii ")])


@pytest.mark.network
def test_bootstrap_makes_a_labelled_base(client, config, made):
    rc, rows, seconds = made
    base = config.bases[TEST_KEY]
    assert rc == 0, rows
    assert [r["status"] for r in rows] == ["bootstrapped"], rows
    # The tag is what the base contains: its recipe and the manifest of what debootstrap installed today.
    listed = subprocess.run([engine.docker_cli(), "run", "--rm", rows[0]["ref"], "dpkg-query", "-W", "-f",
                             "${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n"], capture_output=True, text=True, timeout=120)
    manifest = tuple(sorted(line[3:].strip() for line in listed.stdout.splitlines() if line.startswith("ii ")))
    assert len(manifest) == rows[0]["manifest"] > 50
    assert rows[0]["ref"] == content_ref(base, manifest) != base.local_ref
    image = client.images.get(rows[0]["ref"])
    assert image.id == rows[0]["image_id"]
    labels = image.labels
    assert labels[LABEL_KEY] == TEST_KEY
    assert labels[LABEL_RECIPE] == base.recipe_id
    assert labels[LABEL_SUITE] == "bookworm"
    assert image.attrs["Config"]["Cmd"] == ["/bin/bash"]
    assert 50_000_000 < rows[0]["size"] < 400_000_000


@pytest.mark.network
def test_base_runs_bookworm_without_caches(client, config, made):
    ref = made[1][0]["ref"]
    out = subprocess.run(
        [engine.docker_cli(), "run", "--rm", ref, "bash", "-c",
         "cat /etc/os-release; echo ---; cat /etc/apt/sources.list; echo ---; ls /var/lib/apt/lists /var/cache/apt/archives"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    os_release, sources, listing = out.stdout.split("---\n")
    assert "VERSION_CODENAME=bookworm" in os_release
    assert sources.strip() == "deb http://deb.debian.org/debian bookworm main"
    assert not [name for name in listing.split() if name.endswith(".deb") or "_dists_" in name]


@pytest.mark.network
def test_second_run_is_present_and_quick(config, made, capsys):
    capsys.readouterr()
    started = time.monotonic()
    # once the lock records that manifest, the base's ref is the one the bootstrap tagged: present, nothing made
    base = dataclasses.replace(config.bases[TEST_KEY], content=content_digest_of(made[1][0]["ref"]))
    assert base.local_ref == made[1][0]["ref"]
    rc = run_bases(config, [base], force=False, output_format="table")
    seconds = time.monotonic() - started
    out = capsys.readouterr().out
    assert rc == 0
    assert TEST_KEY in out and "present" in out
    assert seconds < 10
    state = json.loads((Path(config.path).parent / ".state" / "bases.json").read_text())
    assert state[TEST_KEY]["status"] == "present"
    assert state[TEST_KEY]["image_id"] == made[1][0]["image_id"]


def test_base_without_recipe_fails_fast_and_names_itself(client, config, capsys):
    # An unreachable registry (closed port on localhost): fails at once, whatever the network.
    real = load_config(REPO / "images.yaml").bases["ubuntu22.04"]
    base = dataclasses.replace(real, key="ubuntu22.04-itest", image="127.0.0.1:9/ubuntu:22.04@sha256:" + "0" * 64, bootstrap=None)
    started = time.monotonic()
    rc = run_bases(config, [base], force=False, output_format="table")
    assert time.monotonic() - started < 30
    captured = capsys.readouterr()
    assert rc == 1
    assert "ubuntu22.04-itest  failed" in captured.out
    assert "base ubuntu22.04-itest cannot be made here: pull of 127.0.0.1:9/ubuntu:22.04@sha256:" in captured.err
    assert "no bootstrap recipe" in captured.err


@pytest.mark.network
def test_a_bootstrap_that_installs_other_packages_than_the_lock_is_refused(client, config, made, capsys):
    """The lock says the base had an older libc6 (say, before a point release): today's bootstrap differs, so it
    is refused by name unless the caller accepts the drift (a refresh), and nothing is tagged under the lock's ref."""
    today = subprocess.run([engine.docker_cli(), "run", "--rm", made[1][0]["ref"], "dpkg-query", "-W", "-f",
                            "${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n"], capture_output=True, text=True, timeout=120)
    manifest = [line[3:].strip() for line in today.stdout.splitlines() if line.startswith("ii ")]
    locked = tuple(sorted(line.replace("libc6 ", "libc6 0.0-", 1) if line.startswith("libc6 ") else line for line in manifest))
    from buildtool.lock.format import manifest_digest

    base = dataclasses.replace(config.bases[TEST_KEY], key="debian12-itest-drift", content=manifest_digest(locked))
    rc = run_bases(config, [base], force=False, output_format="table", locked_manifests={base.key: locked})
    err = capsys.readouterr().err
    assert rc == 1
    assert "installs other packages than images.lock records" in err and "libc6: 0.0-" in err and "--refresh-stale" in err
    assert engine.image_id(client, base.local_ref) is None
