"""`buildtool publish` against a real registry: Debian's docker-registry (distribution 2.8) with
TLS (its own CA, trusted by the engine via /etc/docker/certs.d) and htpasswd auth, started by
scripts/registry.sh on its own port (BUILDTOOL_TEST_REGISTRY_PORT, default 5077 or a free one) so that a
registry on the default port (`make registry`) is never stopped by these tests.

Two small smoke images are published (never the ~3 GB CUDA one) into a fresh namespace per
session, with a release record, state and logs in a temporary folder:
  dry run -> wrong password -> registry down -> a push that fails midway (registry stopped
  after the first image's immutable tags; no moving tag may move) -> the rerun completes the
  same release -> the registry-named local tags are deleted and every published digest is
  pulled back; its labels equal the release file's component versions, and the registry's
  manifest/config/layer bytes hash to their digests -> re-publishing pushes no layer and
  records the same digests -> the password appears in no output, log or file.

The images must be built (`make build GROUP=smoke`); those missing are built here, and those
without a passing verify record for their content hash are verified here (`buildtool verify`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGES = ("openmpi4.1.4-debian12", "mpich3.4.1-debian11")
STATE = Path(os.environ.get("BUILDTOOL_REGISTRY_STATE", "/var/lib/buildtool-registry"))


def _port() -> str:
    """BUILDTOOL_TEST_REGISTRY_PORT, else 5077 when free, else any free port (another session's registry may hold 5077)."""
    import socket

    if os.environ.get("BUILDTOOL_TEST_REGISTRY_PORT"):
        return os.environ["BUILDTOOL_TEST_REGISTRY_PORT"]
    for port in (5077, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return str(s.getsockname()[1])
    raise RuntimeError("no free port")


PORT = _port()
REGISTRY = f"127.0.0.1:{PORT}"
DATE = datetime.now(timezone.utc).strftime("%Y%m%d")

pytestmark = [pytest.mark.engine]


# Fixtures -----------------------------------------------------------------------------------------------


def _script(action: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BUILDTOOL_REGISTRY_PORT": PORT, "BUILDTOOL_REGISTRY_STATE": str(STATE)}
    return subprocess.run(["bash", str(REPO / "scripts" / "registry.sh"), action], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=600)


@pytest.fixture(scope="session")
def registry(docker_ok):
    if os.geteuid() != 0 and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("scripts/registry.sh needs root (apt, /etc/docker/certs.d)")
    started = time.monotonic()
    try:
        done = _script("start")
        if done.returncode != 0:
            pytest.fail(f"scripts/registry.sh start failed:\n{done.stdout}\n{done.stderr}")
        password = (STATE / "password").read_text().strip()
        info = SimpleNamespace(registry=REGISTRY, user=(STATE / "user").read_text().strip(), password=password, ca=str(STATE / "ca.crt"),
                               start_seconds=time.monotonic() - started)
        yield info
    finally:  # the registry never outlives the session, also when its start or a test failed
        _script("stop")
        if PORT not in ("5000", "5077"):  # a one-off port: drop its engine trust entry again
            subprocess.run(["rm", "-rf", f"/etc/docker/certs.d/{REGISTRY}"], check=False)


def _config_g(env: dict[str, str], names: tuple[str, ...] = IMAGES):
    from buildtool.config.loader import load_config
    from buildtool.lock.format import load_lock
    from buildtool.plan.expand import select
    from buildtool.render.generate import generate

    config = load_config(REPO / "images.yaml", None, env)
    g = generate(config, load_lock(REPO / "images.lock"))
    chosen = select(config, g.expansion.variants, "all", (f"name={','.join(names)}",))
    return config, g, chosen


def _cli(*args: str, env: dict[str, str], timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "buildtool", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _ensure_built_and_verified(names: tuple[str, ...]) -> dict[str, str]:
    """image -> local tag of `names`: built (here, when missing), each with a passing verify record for its content hash."""
    from buildtool.publish.plan import verify_records
    from buildtool.verify.runner import image_present

    env = {k: v for k, v in os.environ.items() if not k.startswith("BUILDTOOL_")}
    config, g, chosen = _config_g(env, names)
    if sorted(v.name for v in chosen) != sorted(names):
        pytest.skip(f"images.yaml no longer has {names}")
    tags = {v.name: g.rendered[g.dag.variant_node[v.name]].tag for v in chosen}
    selection = ["--group", "all", "--filter", f"name={','.join(names)}"]
    if not all(image_present(t) for t in tags.values()):
        for step in (["bases", *selection], ["build", *selection]):
            done = _cli(*step, env=env)
            assert done.returncode == 0, f"buildtool {' '.join(step)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    records = verify_records(REPO / "reports")
    if not all(records.get(t, {}).get("ok") for t in tags.values()):
        done = _cli("verify", *selection, env=env)
        assert done.returncode == 0, f"buildtool verify failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return tags


@pytest.fixture(scope="session")
def images(docker_ok):
    """The two images: built (here, when missing) and with a passing verify record for their content hash."""
    return _ensure_built_and_verified(IMAGES)


def _publish_entry() -> list[str]:
    return ["-m", "buildtool", "publish"]


@pytest.fixture(scope="session")
def ctx(registry, images, tmp_path_factory):
    base = tmp_path_factory.mktemp("publish")
    namespace = f"bttest-{secrets.token_hex(3)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUILDTOOL_", "DOCKER_CONFIG"))}
    env.update({"BUILDTOOL_REGISTRY": REGISTRY, "BUILDTOOL_NAMESPACE": namespace, "BUILDTOOL_CREDENTIALS": "env",
                "BUILDTOOL_REGISTRY_USER": registry.user, "BUILDTOOL_REGISTRY_PASSWORD": registry.password,
                "DOCKER_CONFIG": str(base / "docker-config")})  # no developer's ~/.docker/config.json
    dirs = {name: base / name for name in ("releases", "state", "logs")}
    return SimpleNamespace(base=base, namespace=namespace, env=env, dirs=dirs, outputs=[], timings={}, registry=registry,
                           record=dirs["releases"] / f"{REGISTRY.replace(':', '_')}_{namespace}.json")


def publish_cli(ctx, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # linux/amd64 alone: the single-platform flow (an image's tags on its own manifest); the index flow of
    # multi-platform images is test_publish_index.py's.
    cmd = [sys.executable, *_publish_entry(), "--group", "all", "--filter", f"name={','.join(IMAGES)}", "--platforms", "linux/amd64", "--date", DATE,
           "--releases", str(ctx.dirs["releases"]), "--state", str(ctx.dirs["state"]), "--logs", str(ctx.dirs["logs"]),
           "--reports", str(REPO / "reports"), *args]
    t = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, env=env or ctx.env, capture_output=True, text=True, timeout=1800)
    ctx.outputs += [done.stdout, done.stderr]
    ctx.timings.setdefault("cli", []).append((args, round(time.monotonic() - t, 1)))
    return done


def api(ctx):
    from buildtool.edges.registry import Credentials, RegistryClient

    return RegistryClient(REGISTRY, Credentials(ctx.registry.user, ctx.registry.password, "test"), verify=ctx.registry.ca)


def repos(ctx) -> list[str]:
    return [r for r in api(ctx).repositories() if r.startswith(ctx.namespace + "/")]


# Tests -------------------------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_pushes_nothing(ctx):
    done = publish_cli(ctx, "--dry-run", "--format", "json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["release"] == f"{DATE}.v1" and plan["registry"] == REGISTRY and plan["namespace"] == ctx.namespace
    assert sorted(i["image"] for i in plan["images"]) == sorted(IMAGES)
    for i in plan["images"]:
        assert i["immutable"][0] == f"{DATE}.v1" and i["immutable"][1].startswith("h-") and i["moving"] == ["latest"]
        assert i["verified"].startswith("run ")
    assert repos(ctx) == []


def test_wrong_password_is_one_line_and_pushes_nothing(ctx):
    wrong = "wrong-" + secrets.token_hex(8)
    done = publish_cli(ctx, env={**ctx.env, "BUILDTOOL_REGISTRY_PASSWORD": wrong})
    ctx.outputs.append(wrong)  # (not a secret worth hiding, but it must not leak either)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert REGISTRY in lines[0] and "rejected" in lines[0] and wrong not in done.stderr + done.stdout
    assert repos(ctx) == []


def test_registry_down_is_one_line(ctx):
    assert _script("stop").returncode == 0
    try:
        done = publish_cli(ctx)
    finally:
        assert _script("start").returncode == 0
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: registry {REGISTRY}: unreachable"), lines[0]
    assert repos(ctx) == []


def test_push_failing_midway_moves_no_tag_and_the_rerun_completes(ctx):
    from buildtool.edges.registry import RegistryError
    from buildtool.publish.plan import Options
    from buildtool.publish.push import Hooks, publish

    config, g, chosen = _config_g(ctx.env)
    first: list[str] = []

    def stop_after_first(plan, results):
        first.append(plan.image)
        if len(first) == 1:
            assert _script("stop").returncode == 0

    opts = Options(releases=ctx.dirs["releases"], reports=REPO / "reports", state=ctx.dirs["state"], logs=ctx.dirs["logs"], date=DATE,
                   platforms=("linux/amd64",))  # this file tests the single-platform flow (test_publish_index.py: indexes)
    out = io.StringIO()
    t = time.monotonic()
    try:
        with pytest.raises(RegistryError) as err:
            publish(config, g, chosen, opts, env=ctx.env, out=out, hooks=Hooks(after_image=stop_after_first))
    finally:
        assert _script("start").returncode == 0
    ctx.timings["failed run"] = round(time.monotonic() - t, 1)
    message = str(err.value)
    ctx.outputs += [out.getvalue(), message]
    assert len(first) == 1 and "\n" not in message
    assert REGISTRY in message and "no moving tag was updated" in message and first[0] in message, message
    release = f"{DATE}.v1"
    reg = api(ctx)
    first_repo = f"{ctx.namespace}/{first[0]}"
    second = next(n for n in IMAGES if n != first[0])
    assert sorted(reg.tags(first_repo)) == sorted([release, "h-" + g.rendered[g.dag.variant_node[first[0]]].hash[:20]])
    assert reg.tags(f"{ctx.namespace}/{second}") == []  # nothing of the second image, no `latest` anywhere
    assert not ctx.record.exists()

    done = publish_cli(ctx)
    assert done.returncode == 0, done.stderr
    assert f"publish {release} (resuming the unfinished release {release})" in done.stdout
    record = json.loads(ctx.record.read_text())
    assert [r["release"] for r in record["releases"]] == [release]
    for name in IMAGES:
        entry = record["releases"][0]["images"][name]
        assert reg.manifest_digest(f"{ctx.namespace}/{name}", "latest") == entry["digest"]
        assert reg.manifest_digest(f"{ctx.namespace}/{name}", release) == entry["digest"]
        assert entry["moving"] == ["latest"] and entry["tags"][0] == release
    notes = (ctx.dirs["releases"] / f"{REGISTRY.replace(':', '_')}_{ctx.namespace}" / "notes" / f"{release}.md").read_text()
    assert notes.count("new image") == 2


def test_pull_by_digest_labels_match_the_release_file(ctx, docker_ok):
    from docker.errors import ImageNotFound

    client = docker_ok
    record = json.loads(ctx.record.read_text())
    release = record["releases"][-1]
    reg = api(ctx)
    auth = {"username": ctx.registry.user, "password": ctx.registry.password}
    t = time.monotonic()
    for name, entry in release["images"].items():
        repo, digest = entry["repository"], entry["digest"]
        # Delete every local reference to the published repository, then pull by digest.
        for image in client.images.list(name=repo):
            for tag in image.tags:
                if tag.startswith(repo + ":"):
                    client.api.remove_image(tag, noprune=True)
        local = client.images.get(f"buildtool/{entry['node']}:h-{entry['content_hash'][:20]}")
        for ref in local.attrs.get("RepoDigests", []):
            if ref.startswith(repo + "@"):
                client.api.remove_image(ref, noprune=True)
        with pytest.raises(ImageNotFound):
            client.images.get(f"{repo}@{digest}")
        for item in client.api.pull(repo, tag=digest, stream=True, decode=True, auth_config=auth):
            assert "error" not in item and "errorDetail" not in item, item
        pulled = client.images.get(f"{repo}@{digest}")
        labels = pulled.attrs["Config"]["Labels"]
        for key, value in entry["components"].items():
            assert labels.get(f"io.buildtool.{key}") == value, (name, key)
        assert labels["io.buildtool.hash"] == entry["content_hash"]
        # The registry's bytes: manifest, config and every layer hash to what they claim.
        raw, _media = reg.manifest(f"{ctx.namespace}/{name}", digest)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
        manifest = json.loads(raw)
        config = reg.blob(f"{ctx.namespace}/{name}", manifest["config"]["digest"])
        assert "sha256:" + hashlib.sha256(config).hexdigest() == manifest["config"]["digest"]
        assert json.loads(config)["config"]["Labels"] == labels
        for layer in manifest["layers"]:
            h = hashlib.sha256()
            reg.blob(f"{ctx.namespace}/{name}", layer["digest"], chunk=h.update)
            assert "sha256:" + h.hexdigest() == layer["digest"]
        client.api.remove_image(f"{repo}@{digest}", noprune=True)
    ctx.timings["pull + registry byte check"] = round(time.monotonic() - t, 1)


def test_sbom_and_provenance_are_attached_to_each_digest_by_the_referrers_tag_schema(ctx):
    """issue 15: publish attached both to every digest (distribution 2.8: no referrers API, so the tag schema);
    `buildtool attestations` finds them, checks them, and fails (exit 1) on a referrer that refers to another digest."""
    from buildtool.attest import provenance, sbom
    from buildtool.edges.referrers import OCI_INDEX, Descriptor, Referrers, referrers_tag

    release = json.loads(ctx.record.read_text())["releases"][-1]
    reg = api(ctx)
    refs = Referrers(reg)
    t = time.monotonic()
    for name, entry in release["images"].items():
        path, digest = f"{ctx.namespace}/{name}", entry["digest"]
        att = entry["attestations"]
        assert att["sbom"]["packages"] >= 50 and att["inventory"].startswith(("verify run ", "container of ")), att
        assert referrers_tag(digest) in reg.tags(path)
        assert refs.api(path, digest) is None  # distribution 2.8 has no referrers API: the fallback is what holds them
        done = _cli("attestations", f"{REGISTRY}/{path}@{digest}", "--format", "json", env=ctx.env, timeout=300)
        ctx.outputs += [done.stdout, done.stderr]
        assert done.returncode == 0, done.stdout + done.stderr
        found = json.loads(done.stdout)
        assert found["ok"] and found["via"] == "tag schema" and not found["missing"]
        assert {r["kind"]: r["digest"] for r in found["attestations"]} == {"sbom": att["sbom"]["digest"], "provenance": att["provenance"]["digest"]}
        for kind, check in (("sbom", sbom.validate), ("provenance", provenance.validate)):
            manifest, payload = refs.fetch(path, next(d for d in refs.referrers(path, digest)[0] if d.digest == att[kind]["digest"]))
            assert manifest["subject"]["digest"] == digest and check(payload.decode()) is None
    # A referrer in this digest's index that refers to another digest: attestations says so and exits 1.
    (name, entry), (_other_name, other) = sorted(release["images"].items())[:2]
    path, digest = f"{ctx.namespace}/{name}", entry["digest"]
    original, _media = refs.get_manifest(path, referrers_tag(digest), OCI_INDEX)
    elsewhere = Descriptor("application/vnd.docker.distribution.manifest.v2+json", other["digest"], 1)
    stranger = refs.attach(path, elsewhere, sbom.MEDIA_TYPE, b"{}", kind="x", title="x")
    index = json.loads(original)
    index["manifests"].append(stranger.to_json())
    refs.put_manifest(path, referrers_tag(digest), json.dumps(index).encode(), OCI_INDEX)
    try:
        done = _cli("attestations", f"{REGISTRY}/{path}@{digest}", "--format", "json", env=ctx.env, timeout=300)
        assert done.returncode == 1, done.stdout + done.stderr
        bad = [r for r in json.loads(done.stdout)["attestations"] if not r["ok"]]
        assert [r["digest"] for r in bad] == [stranger.digest] and "its subject is" in bad[0]["problems"][0]
    finally:
        refs.put_manifest(path, referrers_tag(digest), original, OCI_INDEX)
    ctx.timings["attestations check"] = round(time.monotonic() - t, 1)


def test_republishing_unchanged_images_pushes_no_layers(ctx):
    before = json.loads(ctx.record.read_text())["releases"][-1]
    logs_before = set(ctx.dirs["logs"].glob("*.log"))
    done = publish_cli(ctx, "--format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["release"] == f"{DATE}.v2"
    for item in result["published"]:
        assert item["layers_pushed"] == 0 and item["layers_existing"] > 0, item
        assert item["digest"] == before["images"][item["image"]]["digest"]
    after = json.loads(ctx.record.read_text())["releases"][-1]
    assert {k: v["digest"] for k, v in after["images"].items()} == {k: v["digest"] for k, v in before["images"].items()}
    new_logs = set(ctx.dirs["logs"].glob("*.log")) - logs_before
    assert new_logs, "no publish log written"
    layer_lines = [line for log in new_logs for line in log.read_text().splitlines() if " layer " in line]
    assert layer_lines and all(line.endswith("Layer already exists") for line in layer_lines), layer_lines[:5]


# Two ONNX Runtime CPU images that images.yaml publishes into one repository (tags.publish): `latest` on one of them.
SHARED = ("onnxruntime1.23.2-cpu-ubuntu24.04", "onnxruntime1.23.2-cpu-debian12")


def test_images_sharing_a_repository_land_as_repository_tag_pairs(ctx, docker_ok):
    """repository:tag, not image name: both images in <namespace>/onnxruntime, each under its own versioned and release
    tags, `latest` on the Ubuntu 24.04 one only; pulled back by repository:tag, each is the image the record names."""
    from buildtool.edges.referrers import referrers_tag

    local = _ensure_built_and_verified(SHARED)
    dirs = {name: ctx.base / f"shared-{name}" for name in ("releases", "state", "logs")}
    cmd = [sys.executable, *_publish_entry(), "--group", "all", "--filter", f"name={','.join(SHARED)}", "--platforms", "linux/amd64", "--date", DATE, "--format", "json",
           "--releases", str(dirs["releases"]), "--state", str(dirs["state"]), "--logs", str(dirs["logs"]), "--reports", str(REPO / "reports")]
    t = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, env=ctx.env, capture_output=True, text=True, timeout=1800)
    ctx.outputs += [done.stdout, done.stderr]
    ctx.timings["shared repository publish"] = round(time.monotonic() - t, 1)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    release = result["release"]
    repo = f"{REGISTRY}/{ctx.namespace}/onnxruntime"
    record = json.loads(Path(result["record"]).read_text())["releases"][-1]["images"]
    assert sorted(record) == sorted(SHARED)
    reg = api(ctx)
    in_registry = set(reg.tags(f"{ctx.namespace}/onnxruntime"))
    expected: set[str] = set()
    for name, entry in record.items():
        assert entry["repository"] == repo, entry
        version_tag = name.replace("onnxruntime", "", 1).replace("-cpu", "", 1)  # 1.23.2-ubuntu24.04
        assert entry["tags"] == [f"{version_tag}-{release}", "h-" + entry["content_hash"][:20]], entry["tags"]
        assert entry["moving"] == ([version_tag, "latest"] if name.endswith("ubuntu24.04") else [version_tag]), entry["moving"]
        assert entry["references"] == [f"{repo}:{t}" for t in [*entry["tags"], *entry["moving"]]]
        expected.update([*entry["tags"], *entry["moving"], referrers_tag(entry["digest"])])  # + its SBOM/provenance index (issue 15)
        for tag in [*entry["tags"], *entry["moving"]]:
            assert reg.manifest_digest(f"{ctx.namespace}/onnxruntime", tag) == entry["digest"], (name, tag)
    from buildtool.edges.referrers import referrers_tag

    expected.update(referrers_tag(e["digest"]) for e in record.values())  # each digest's SBOM + provenance index (issue 15)
    assert in_registry == expected, (sorted(in_registry), sorted(expected))
    assert [r for r in repos(ctx) if r.endswith("/onnxruntime1.23.2-cpu-ubuntu24.04")] == []  # no per-image repository

    # Pull onnxruntime:latest back (no local reference to it left): it is the Ubuntu 24.04 image, labels and all.
    client = docker_ok
    auth = {"username": ctx.registry.user, "password": ctx.registry.password}
    entry = record["onnxruntime1.23.2-cpu-ubuntu24.04"]
    for image in client.images.list(name=repo):
        for tag in image.tags:
            if tag.startswith(repo + ":"):
                client.api.remove_image(tag, noprune=True)
    for item in client.api.pull(repo, tag="latest", stream=True, decode=True, auth_config=auth):
        assert "error" not in item and "errorDetail" not in item, item
    pulled = client.images.get(f"{repo}:latest")
    assert pulled.id == client.images.get(local["onnxruntime1.23.2-cpu-ubuntu24.04"]).id
    assert f"{repo}@{entry['digest']}" in pulled.attrs["RepoDigests"]
    assert pulled.attrs["Config"]["Labels"]["org.opencontainers.image.title"] == "onnxruntime1.23.2-cpu-ubuntu24.04"
    client.api.remove_image(f"{repo}:latest", noprune=True)


def test_password_appears_nowhere(ctx):
    import base64

    password = ctx.registry.password
    forms = [password, base64.b64encode(f"{ctx.registry.user}:{password}".encode()).decode()]
    texts = list(ctx.outputs)
    for folder in ctx.dirs.values():
        texts += [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()]
    for log in (STATE.glob(f"registry.{PORT}.log")):
        texts.append(log.read_text(errors="replace"))
    assert texts
    for text in texts:
        for form in forms:
            assert form not in text
    print(f"timings: registry start {ctx.registry.start_seconds:.1f} s; {ctx.timings}")
