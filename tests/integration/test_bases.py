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

from buildtool import engine
from buildtool.bases import LABEL_KEY, LABEL_RECIPE, LABEL_SUITE, run_bases
from buildtool.config import load_config
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
    yield rc, json.loads(out.getvalue()), seconds
    with contextlib.suppress(Exception):
        client.images.remove(base.local_ref, force=True)


@pytest.mark.network
def test_bootstrap_makes_a_labelled_base(client, config, made):
    rc, rows, seconds = made
    base = config.bases[TEST_KEY]
    assert rc == 0, rows
    assert [r["status"] for r in rows] == ["bootstrapped"], rows
    assert rows[0]["ref"] == base.local_ref
    image = client.images.get(base.local_ref)
    assert image.id == rows[0]["image_id"]
    labels = image.labels
    assert labels[LABEL_KEY] == TEST_KEY
    assert labels[LABEL_RECIPE] == base.recipe_id
    assert labels[LABEL_SUITE] == "bookworm"
    assert image.attrs["Config"]["Cmd"] == ["/bin/bash"]
    assert 50_000_000 < rows[0]["size"] < 400_000_000


@pytest.mark.network
def test_base_runs_bookworm_without_caches(client, config, made):
    ref = config.bases[TEST_KEY].local_ref
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
    rc = run_bases(config, [config.bases[TEST_KEY]], force=False, output_format="table")
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
    base = dataclasses.replace(real, key="ubuntu22.04-itest", image="127.0.0.1:9/ubuntu:22.04@sha256:" + "0" * 64)
    started = time.monotonic()
    rc = run_bases(config, [base], force=False, output_format="table")
    assert time.monotonic() - started < 30
    captured = capsys.readouterr()
    assert rc == 1
    assert "ubuntu22.04-itest  failed" in captured.out
    assert "base ubuntu22.04-itest cannot be made here: pull of 127.0.0.1:9/ubuntu:22.04@sha256:" in captured.err
    assert "no bootstrap recipe" in captured.err
