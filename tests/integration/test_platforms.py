"""linux/arm64 on the real engine (issue 16): the smoke group's arm64 subset is built, is arm64, and is verified.

`make test` builds and verifies that subset (`make build test-images GROUP=smoke PLATFORM=linux/arm64`) before
the integration tests; here each of its images (and its base) must say arm64 in `docker image inspect`, run
an aarch64 userland (under qemu-user-static on an amd64 host), and carry a passing verify record of exactly
its content hash. Built (and verified) here when missing: minutes under emulation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

REPO = Path(__file__).resolve().parents[2]
PLATFORM = "linux/arm64"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BUILDTOOL_") and k not in ("DOCKER_HOST", "DOCKER_CONFIG")}


def _buildtool(*argv: str, timeout: int = 3600) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "buildtool", *argv], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"buildtool {' '.join(argv)} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def client():
    from buildtool.engine import client as engine
    from buildtool.errors import OperationError

    try:
        return engine.docker_client()
    except OperationError as exc:
        pytest.skip(f"no Docker Engine: {exc}")


@pytest.fixture(scope="module")
def arm64_smoke():
    """image -> its linux/arm64 content-hash tag, as `buildtool list --platform` says."""
    rows = json.loads(_buildtool("list", "--group", "smoke", "--platform", PLATFORM, "--format", "json").stdout)
    return {r["image"]: r for r in rows}


def test_the_arm64_smoke_subset_has_ort_cpu_and_an_mpi_image(arm64_smoke):
    assert len(arm64_smoke) >= 2
    assert any(r["onnxruntime"] == "ort-cpu" for r in arm64_smoke.values())
    assert any(r["mpi"] != "none" for r in arm64_smoke.values())
    assert all(r["platforms"] == ["linux/amd64", PLATFORM] for r in arm64_smoke.values())


def test_arm64_images_are_built_arm64_and_verified(client, arm64_smoke):
    from buildtool.publish.push import verify_records

    missing = [r["tag"] for r in arm64_smoke.values() if not _present(client, r["tag"])]
    if missing:  # make test built them; a lone run of this file builds them (minutes under emulation)
        _buildtool("build", "--group", "smoke", "--platform", PLATFORM, timeout=4 * 3600)
    for name, row in arm64_smoke.items():
        attrs = client.api.inspect_image(row["tag"])
        assert (attrs["Os"], attrs["Architecture"]) == ("linux", "arm64"), (name, attrs["Architecture"])
        base = attrs["Config"]["Labels"]["org.opencontainers.image.base.name"]
        assert base.startswith("buildtool/"), base
    records = verify_records(REPO / "reports")
    if not all(records.get(r["tag"], {}).get("ok") for r in arm64_smoke.values()):
        _buildtool("verify", "--group", "smoke", "--platform", PLATFORM, timeout=3600)
        records = verify_records(REPO / "reports")
    for name, row in arm64_smoke.items():
        assert records[row["tag"]]["ok"], (name, records.get(row["tag"]))


def test_arm64_base_says_arm64_and_runs_aarch64(client):
    from buildtool.config.loader import load_config
    from buildtool.lock.format import bind_bases, load_lock, platform_lock
    from buildtool.plan.platforms import platform_config

    config = load_config(REPO / "images.yaml", None, _env())
    lock = load_lock(REPO / "images.lock")
    view = bind_bases(platform_config(config, PLATFORM), platform_lock(lock, PLATFORM))
    for base in view.bases.values():
        if not _present(client, base.local_ref):
            _buildtool("bases", "--group", "all", "--platform", PLATFORM, "--filter", f"os={base.key}", timeout=3600)
        attrs = client.api.inspect_image(base.local_ref)
        assert attrs["Architecture"] == "arm64", (base.key, attrs["Architecture"])
        assert attrs["Config"]["Labels"]["io.buildtool.base.recipe"] == base.recipe_id
        out = client.containers.run(base.local_ref, ["sh", "-c", "uname -m; dpkg --print-architecture"], remove=True, network_disabled=True)
        assert out.decode().split() == ["aarch64", "arm64"]
        # the base's content tag is its arm64 manifest: what the image holds is what the lock says
        manifest = client.containers.run(base.local_ref, ["dpkg-query", "-W", "-f", "${Package} ${Version} ${Architecture}\\n"],
                                         remove=True, network_disabled=True).decode().split("\n")
        assert sorted(line for line in manifest if line) == sorted(platform_lock(lock, PLATFORM).bases[base.key].manifest)


def _present(client, ref: str) -> bool:
    from buildtool.engine import client as engine

    return bool(engine.image_id(client, ref))
