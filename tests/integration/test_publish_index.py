"""One reference per multi-platform image (issue 16): publish pushes each platform's image, then an OCI index.

The smoke group's images made for linux/amd64 and linux/arm64 (debian12's Open MPI and ONNX Runtime CPU
images) are built and verified on both platforms (cached after `make test`), published to a TLS + htpasswd
registry (scripts/registry.sh, own port and state folder) in a fresh namespace, and then:

- the release tag and every moving tag resolve to one OCI image index whose manifests are exactly the
  release record's per-platform digests, with their os/architecture;
- each platform's own content-hash tag resolves to that platform's digest;
- a second, empty Docker Engine pulls each platform BY DIGEST (from the index); the pulled image says
  that architecture and has engine A's image id for that platform (the same config digest);
- pulling the index digest itself on that (amd64) engine gives the amd64 image.

Needs root (a second dockerd, docker-registry from apt, /etc/docker/certs.d); registry port:
BUILDTOOL_SMOKE_REGISTRY_PORT, else a free one.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path

import pytest
from test_publish_smoke import DATE, _plain_env, _run, engine_a, engine_b, registry  # noqa: F401 - fixtures

pytestmark = pytest.mark.engine

REPO = Path(__file__).resolve().parents[2]
SELECT = ["--group", "smoke", "--filter", "os=debian12", "--filter", "accelerator=cpu"]


def _images() -> dict[str, dict[str, str]]:
    """image -> platform -> local content-hash tag, for the selected images made for two platforms."""
    out: dict[str, dict[str, str]] = {}
    for platform in ("linux/amd64", "linux/arm64"):
        rows = json.loads(_run([sys.executable, "-m", "buildtool", "list", *SELECT, "--platform", platform, "--format", "json"],
                               env=_plain_env()).stdout)
        for r in rows:
            if r["platforms"] == ["linux/amd64", "linux/arm64"]:
                out.setdefault(r["image"], {})[platform] = r["tag"]
    return out


def test_publish_pushes_an_index_per_multi_platform_image_and_each_platform_pulls_back_by_digest(engine_a, registry, engine_b, tmp_path):  # noqa: F811
    images = _images()
    assert len(images) >= 2 and all(len(p) == 2 for p in images.values()), images
    figures: dict = {}
    for platform in ("linux/amd64", "linux/arm64"):  # cached after make test
        for step in ("build", "verify"):
            t = time.monotonic()
            _run([sys.executable, "-m", "buildtool", step, *SELECT, "--platform", platform], env=_plain_env(), timeout=4 * 3600)
            figures[f"{step}_{platform}_seconds"] = round(time.monotonic() - t, 1)
    ids_a = {(name, p): engine_a.images.get(tag).id for name, tags in images.items() for p, tag in tags.items()}
    assert engine_a.images.get(images[next(iter(images))]["linux/arm64"]).attrs["Architecture"] == "arm64"

    namespace = f"bttest-index-{secrets.token_hex(3)}"
    env = {**_plain_env(), **registry["settings"], "BUILDTOOL_NAMESPACE": namespace, "BUILDTOOL_CREDENTIALS": "env",
           "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    dirs = {name: tmp_path / name for name in ("releases", "state", "logs")}
    t = time.monotonic()
    done = _run([sys.executable, "-m", "buildtool", "publish", *SELECT, "--format", "json", "--date", DATE,
                 "--releases", str(dirs["releases"]), "--state", str(dirs["state"]), "--logs", str(dirs["logs"]),
                 "--reports", str(REPO / "reports")], env=env, timeout=3600)
    figures["publish_seconds"] = round(time.monotonic() - t, 1)
    result = json.loads(done.stdout)
    release = result["release"]
    published = {p["image"]: p for p in result["published"]}
    assert set(images) <= set(published)

    from buildtool.edges.registry import Credentials, RegistryClient
    from buildtool.publish.index import OCI_INDEX, digest_of, parse_index

    password = Path(registry["settings"]["BUILDTOOL_REGISTRY_PASSWORD_FILE"]).read_text().strip()
    user = registry["settings"]["BUILDTOOL_REGISTRY_USER"]
    api = RegistryClient(registry["addr"], Credentials(user, password, "test"), verify=registry["settings"]["BUILDTOOL_REGISTRY_CA"])
    record = json.loads(Path(result["record"]).read_text())
    entries = record["releases"][0]["images"]
    auth = {"username": user, "password": password}
    figures["pull_seconds_engine_b"] = {}
    for name, tags in images.items():
        entry = entries[name]
        path = entry["repository"].split("/", 1)[1]  # <namespace>/<repository> as publish named it (plan/references.py)
        assert set(entry["platforms"]) == {"linux/amd64", "linux/arm64"}, entry
        assert entry["digest"] == published[name]["digest"]
        assert {p: v["digest"] for p, v in entry["platforms"].items()} == published[name]["platforms"]
        # the release tag and the moving tags: one OCI index over exactly the recorded platform digests
        assert entry["tags"][0].endswith(release), entry["tags"]  # the image's release tag (images.yaml may give it a prefix)
        raw, media = api.manifest(path, entry["tags"][0])
        assert media.split(";")[0] == OCI_INDEX and digest_of(raw) == entry["digest"], (name, media)
        assert parse_index(raw) == {p: v["digest"] for p, v in entry["platforms"].items()}
        assert entry["moving"], name
        for tag in [*entry["tags"], *entry["moving"]]:
            assert api.manifest_digest(path, tag) == entry["digest"], (name, tag)
        for platform, info in entry["platforms"].items():
            assert info["tag"] == tags[platform].rsplit(":", 1)[-1]
            assert api.manifest_digest(path, info["tag"]) == info["digest"], (name, platform)
            # engine B (empty) pulls the platform by digest, as named by the index
            t = time.monotonic()
            for item in engine_b.api.pull(entry["repository"], tag=info["digest"], stream=True, decode=True, auth_config=auth):
                assert "error" not in item and "errorDetail" not in item, (name, platform, item)
            figures["pull_seconds_engine_b"][f"{name} {platform}"] = round(time.monotonic() - t, 1)
            pulled = engine_b.images.get(f"{entry['repository']}@{info['digest']}")
            assert pulled.attrs["Architecture"] == platform.split("/")[1], (name, platform, pulled.attrs["Architecture"])
            assert pulled.id == ids_a[(name, platform)], (name, platform, "engine B's image id differs from engine A's")
            assert pulled.attrs["Config"]["Labels"]["io.buildtool.hash"] == info["content_hash"]
        # the index itself on an amd64 engine: the amd64 image
        for item in engine_b.api.pull(entry["repository"], tag=entry["digest"], stream=True, decode=True, auth_config=auth):
            assert "error" not in item and "errorDetail" not in item, (name, item)
        assert engine_b.images.get(f"{entry['repository']}@{entry['digest']}").id == ids_a[(name, "linux/amd64")]

    texts = [done.stdout, done.stderr, *(p.read_text(errors="replace") for d in dirs.values() if d.exists() for p in d.rglob("*") if p.is_file())]
    assert not any(password in text for text in texts)
    out = REPO / "logs" / "publish-index-figures.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"publish index figures: {json.dumps(figures, sort_keys=True)}")
