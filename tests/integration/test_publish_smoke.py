"""The whole smoke group, published and pulled back on a clean engine (issue 5's "Done when").

build -> verify -> `buildtool publish --group smoke` (every smoke image, the ~3.9 GB CUDA one
included) to a TLS + htpasswd registry started by scripts/registry.sh on its own free port,
with its own state folder (CA, password, storage: removed at the end) and a fresh namespace ->
a second Docker Engine (scripts/second-engine.sh: its own data root, socket and bridge; wiped
first, so nothing is cached there) pulls every published image BY DIGEST -> every published tag
resolves to that digest in the registry and, pulled on engine B, to the same image -> each digest's SBOM
and provenance come back from the registry (referrers tag schema), valid by their libraries, the SBOM
listing every dpkg and pip package verify found -> the
pulled image's labels equal the release file's component versions and content hash, and its
image id (the config digest) equals engine A's image id of the built image.

Nothing local plays the "deleted" image: engine B never had any of it. Engine B (wiped), the
registry, its state folder and its /etc/docker/certs.d entry are removed at the end, pass or fail.
The timings (push seconds per image, pull seconds on engine B) are printed and written to
logs/publish-smoke-figures.json.

Needs root (a second dockerd, a bridge, docker-registry from apt, /etc/docker/certs.d) and the
smoke images built (built here when missing: that takes long from a cold cache).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

REPO = Path(__file__).resolve().parents[2]
ENGINE_B = "unix:///run/buildtool-engine-b.sock"
DATE = datetime.now(timezone.utc).strftime("%Y%m%d")
FIGURES = REPO / "logs" / "publish-smoke-figures.json"


def _free_port() -> str:
    """BUILDTOOL_SMOKE_REGISTRY_PORT, else a free port (never 5000/5055/5077: other tests' registries)."""
    if os.environ.get("BUILDTOOL_SMOKE_REGISTRY_PORT"):
        return os.environ["BUILDTOOL_SMOKE_REGISTRY_PORT"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _run(argv: list[str], *, env: dict[str, str] | None = None, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}")
    return done


def _plain_env() -> dict[str, str]:
    """The environment without any BUILDTOOL_*/DOCKER_HOST/DOCKER_CONFIG setting of the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BUILDTOOL_") and k not in ("DOCKER_HOST", "DOCKER_CONFIG")}


@pytest.fixture(scope="module")
def engine_a():
    from buildtool.engine import client as engine
    from buildtool.errors import OperationError

    if os.geteuid() != 0:
        pytest.skip("needs root (a second dockerd, a bridge, docker-registry, /etc/docker/certs.d)")
    try:
        return engine.docker_client()
    except OperationError as exc:
        pytest.skip(f"no Docker Engine: {exc}")


@pytest.fixture(scope="module")
def registry(engine_a):
    """A registry of its own: free port, own state folder (CA, password, storage), all removed afterwards."""
    port = _free_port()
    state = Path(f"/var/lib/buildtool-registry-smoke-{port}-{secrets.token_hex(3)}")
    env = {**_plain_env(), "BUILDTOOL_REGISTRY_PORT": port, "BUILDTOOL_REGISTRY_STATE": str(state)}
    addr = f"127.0.0.1:{port}"
    try:
        t = time.monotonic()
        _run(["bash", "scripts/registry.sh", "start"], env=env)
        started = time.monotonic() - t
        lines = _run(["bash", "scripts/registry.sh", "env"], env=env).stdout.splitlines()
        settings = dict(line.split("=", 1) for line in lines if "=" in line)
        assert settings["BUILDTOOL_REGISTRY"] == addr, settings
        yield {"addr": addr, "state": state, "settings": settings, "start_seconds": round(started, 1)}
    finally:
        subprocess.run(["bash", "scripts/registry.sh", "stop"], cwd=REPO, env=env, capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)  # CA, password, and the namespace's blobs (several GB)
        shutil.rmtree(f"/etc/docker/certs.d/{addr}", ignore_errors=True)


@pytest.fixture(scope="module")
def engine_b(registry):
    """Engine B from an empty data root; wiped again at the end. Trusts the registry via the shared certs.d."""
    import docker

    assert Path(f"/etc/docker/certs.d/{registry['addr']}/ca.crt").is_file()
    try:
        _run(["bash", "scripts/second-engine.sh", "wipe"], timeout=300)
        _run(["bash", "scripts/second-engine.sh", "start"], timeout=180)
        client = docker.DockerClient(base_url=ENGINE_B, timeout=900)
        assert client.images.list(all=True) == [], "engine B is not empty after wipe"
        yield client
        client.close()
    finally:
        subprocess.run(["bash", "scripts/second-engine.sh", "wipe"], cwd=REPO, capture_output=True, text=True, timeout=300)


def _smoke():
    from buildtool.config.loader import load_config
    from buildtool.lock.format import load_lock
    from buildtool.plan.expand import select
    from buildtool.render.generate import generate

    config = load_config(REPO / "images.yaml", None, _plain_env())
    g = generate(config, load_lock(REPO / "images.lock"))
    chosen = select(config, g.expansion.variants, "smoke", ())
    return {v.name: g.rendered[g.dag.variant_node[v.name]].tag for v in chosen}


def test_publish_smoke_group_and_pull_every_tag_by_digest_on_a_clean_engine(engine_a, registry, engine_b, tmp_path):
    figures: dict = {"registry_start_seconds": registry["start_seconds"]}
    from buildtool.config.loader import load_config

    local_tags = _smoke()  # image -> buildtool/<node>:h-<hash20>
    assert len(local_tags) == len(load_config(REPO / "images.yaml", None, _plain_env()).groups["smoke"].select), sorted(local_tags)

    # 1. build + verify (quick when built and verified already: everything is cached / recorded), on every
    #    platform: the images made for linux/arm64 too are published as one OCI index over both.
    for platform in ("linux/amd64", "linux/arm64"):
        for step in ("build", "verify"):
            t = time.monotonic()
            _run([sys.executable, "-m", "buildtool", step, "--group", "smoke", "--platform", platform], env=_plain_env(), timeout=4 * 3600)
            figures[f"{step}_seconds" + ("" if platform == "linux/amd64" else f"_{platform}")] = round(time.monotonic() - t, 1)
    ids_a = {name: engine_a.images.get(tag).id for name, tag in local_tags.items()}

    # 2. publish the whole group into a fresh namespace.
    namespace = f"bttest-smoke-{secrets.token_hex(3)}"
    env = {**_plain_env(), **registry["settings"], "BUILDTOOL_NAMESPACE": namespace, "BUILDTOOL_CREDENTIALS": "env",
           "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    dirs = {name: tmp_path / name for name in ("releases", "state", "logs")}
    t = time.monotonic()
    done = _run([sys.executable, "-m", "buildtool", "publish", "--group", "smoke", "--format", "json", "--date", DATE,
                 "--releases", str(dirs["releases"]), "--state", str(dirs["state"]), "--logs", str(dirs["logs"]),
                 "--reports", str(REPO / "reports")], env=env, timeout=3 * 3600)
    figures["publish_seconds"] = round(time.monotonic() - t, 1)
    result = json.loads(done.stdout)
    release = result["release"]
    assert release == f"{DATE}.v1" and result["namespace"] == namespace
    assert sorted(p["image"] for p in result["published"]) == sorted(local_tags)
    figures["push_seconds"] = {p["image"]: round(p["seconds"], 1) for p in result["published"]}
    figures["layers_pushed"] = {p["image"]: p["layers_pushed"] for p in result["published"]}
    figures["push_seconds_total"] = round(sum(p["seconds"] for p in result["published"]), 1)

    record = json.loads(Path(result["record"]).read_text())
    assert [r["release"] for r in record["releases"]] == [release]
    entries = record["releases"][0]["images"]
    assert sorted(entries) == sorted(local_tags)

    # 3. every published tag resolves, in the registry, to the recorded digest.
    from buildtool.edges.referrers import referrers_tag
    from buildtool.edges.registry import Credentials, RegistryClient

    password = Path(registry["settings"]["BUILDTOOL_REGISTRY_PASSWORD_FILE"]).read_text().strip()
    user = registry["settings"]["BUILDTOOL_REGISTRY_USER"]
    api = RegistryClient(registry["addr"], Credentials(user, password, "test"), verify=registry["settings"]["BUILDTOOL_REGISTRY_CA"])

    # Images may share a repository (tags.publish: the ONNX Runtime images are all in `onnxruntime`): each
    # repository holds exactly the tags of its images, and every full reference the record names resolves.
    by_repo: dict[str, set[str]] = {}
    for name, entry in entries.items():
        path = entry["repository"].split("/", 1)[1]  # <namespace>/<repository>
        assert path.startswith(namespace + "/"), entry["repository"]
        tags = [*entry["tags"], *entry["moving"]]
        multi = "platforms" in entry  # an OCI index: the release tag is the index's, each platform has its own h- tag
        assert entry["tags"][0].endswith(release) and entry["tags"][1:] == ([] if multi else ["h-" + entry["content_hash"][:20]]), entry["tags"]
        assert entry["moving"], (name, "no moving tag")
        assert entry["references"] == [f"{entry['repository']}:{t}" for t in tags]
        # + the attestations' referrers index tag, + each platform's content-hash tag of a multi-platform image
        by_repo.setdefault(path, set()).update([*tags, referrers_tag(entry["digest"]), *(p["tag"] for p in entry.get("platforms", {}).values())])
        for tag in tags:
            assert api.manifest_digest(path, tag) == entry["digest"], (name, tag)
    for path, tags in by_repo.items():
        assert sorted(api.tags(path)) == sorted(tags), (path, api.tags(path))
    ort = {t for e in entries.values() if e["repository"].endswith("/onnxruntime") for t in e["moving"]}
    assert {"latest", "latest-cuda", "latest-openvino"} <= ort, sorted(ort)

    # 3b. issue 15: every digest's SBOM and provenance, pulled back from the registry by the image digest (the
    # referrers tag schema: distribution 2.8 has no referrers API), validated with their libraries; the SBOM lists
    # every dpkg and pip package verify found in the running image, at the version verify found.
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from buildtool.attest import provenance
    from buildtool.attest.inventory import from_reports
    from buildtool.edges.referrers import Referrers

    refs = Referrers(api)
    validator = JsonStrictValidator(SchemaVersion.V1_6)
    figures["sbom_bytes"], figures["sbom_packages"], figures["provenance_bytes"] = {}, {}, {}
    t = time.monotonic()
    for name, entry in sorted(entries.items()):
        path, digest, att = entry["repository"].split("/", 1)[1], entry["digest"], entry["attestations"]
        listed, via = refs.referrers(path, digest)
        assert via == "tag schema", (name, via)
        by_digest = {d.digest: d for d in listed}
        assert {att["sbom"]["digest"], att["provenance"]["digest"]} <= set(by_digest), (name, sorted(by_digest), att)
        manifest, sbom_bytes = refs.fetch(path, by_digest[att["sbom"]["digest"]])
        assert manifest["subject"]["digest"] == digest and manifest["artifactType"] == "application/vnd.cyclonedx+json"
        assert validator.validate_str(sbom_bytes.decode()) is None, name
        manifest, prov_bytes = refs.fetch(path, by_digest[att["provenance"]["digest"]])
        assert manifest["subject"]["digest"] == digest and provenance.validate(prov_bytes.decode()) is None, name
        statement = json.loads(prov_bytes)
        assert statement["subject"][0]["digest"]["sha256"] == digest.removeprefix("sha256:")
        assert statement["predicate"]["buildDefinition"]["externalParameters"]["contentHash"] == entry["content_hash"]
        doc = json.loads(sbom_bytes)
        listed_pkgs = {(c["purl"].split("/", 1)[0], c["name"], c["version"]) for c in doc["components"] if c.get("purl")}
        inventory = from_reports(REPO / "reports", name, local_tags[name])
        assert inventory is not None and att["inventory"] == inventory.source, (name, att["inventory"])
        missing = [d.name for d in inventory.dpkg if ("pkg:deb", d.name, d.version) not in listed_pkgs]
        missing += [n for n, v in inventory.pip if ("pkg:pypi", n, v) not in listed_pkgs]
        assert not missing and inventory.dpkg, (name, missing[:10])
        figures["sbom_bytes"][name], figures["provenance_bytes"][name] = len(sbom_bytes), len(prov_bytes)
        figures["sbom_packages"][name] = len(listed_pkgs)
    figures["attestations_check_seconds"] = round(time.monotonic() - t, 1)

    # 4. engine B (empty) pulls every image by digest; every tag gives the same image.
    auth = {"username": user, "password": password}
    figures["pull_seconds_engine_b"] = {}
    t_all = time.monotonic()
    for name, entry in sorted(entries.items()):
        repo, digest = entry["repository"], entry["digest"]
        t = time.monotonic()
        for item in engine_b.api.pull(repo, tag=digest, stream=True, decode=True, auth_config=auth):
            assert "error" not in item and "errorDetail" not in item, (name, item)
        figures["pull_seconds_engine_b"][name] = round(time.monotonic() - t, 1)
        pulled = engine_b.images.get(f"{repo}@{digest}")
        assert f"{repo}@{digest}" in pulled.attrs["RepoDigests"], pulled.attrs["RepoDigests"]
        assert pulled.id == ids_a[name], (name, "engine B's image id differs from engine A's", pulled.id, ids_a[name])
        amd64 = entry["platforms"]["linux/amd64"]["digest"] if "platforms" in entry else digest  # an index: engine B got its amd64 image
        raw, _media = api.manifest(repo.split("/", 1)[1], amd64)
        assert json.loads(raw)["config"]["digest"] == pulled.id, (name, "config digest")

        labels = pulled.attrs["Config"]["Labels"]
        assert entry["components"], name
        for key, value in entry["components"].items():
            assert labels.get(f"io.buildtool.{key}") == value, (name, key, labels.get(f"io.buildtool.{key}"), value)
        assert labels["io.buildtool.hash"] == entry["content_hash"]
        assert labels["io.buildtool.node"] == entry["node"]
        assert labels["org.opencontainers.image.title"] == name
        assert local_tags[name] == f"buildtool/{entry['node']}:h-{entry['content_hash'][:20]}"

        for tag in [*entry["tags"], *entry["moving"]]:
            for item in engine_b.api.pull(repo, tag=tag, stream=True, decode=True, auth_config=auth):
                assert "error" not in item and "errorDetail" not in item, (name, tag, item)
            assert engine_b.images.get(f"{repo}:{tag}").id == pulled.id, (name, tag)
    figures["pull_seconds_engine_b_total"] = round(time.monotonic() - t_all, 1)

    # The password stays out of what publish printed and logged.
    texts = [done.stdout, done.stderr, *(p.read_text(errors="replace") for d in dirs.values() if d.exists() for p in d.rglob("*") if p.is_file())]
    assert not any(password in text for text in texts)

    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"publish smoke figures: {json.dumps(figures, sort_keys=True)}")
