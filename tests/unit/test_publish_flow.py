"""buildtool.publish.push.publish() with a stand-in docker client and registry: ordering of immutable
and moving tags, a failure midway and its rerun, verification gating, dry runs, release numbers."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from buildtool.edges.registry import RegistryError
from buildtool.errors import OperationError
from buildtool.publish.plan import Options, choose_release, verify_records
from buildtool.publish.push import Hooks, publish

SECRET = "hunter2-not-a-real-password"
DATE = "20261123"
ENV = {"BUILDTOOL_REGISTRY_USER": "ci", "BUILDTOOL_REGISTRY_PASSWORD": SECRET, "HOME": "/nonexistent"}


# Stand-ins ---------------------------------------------------------------------------------------------


def _config(registry="reg.example:5000", namespace="ns", moving=("latest",)):
    site = SimpleNamespace(registry=registry, namespace=namespace, credentials="env", insecure=False)
    tags = SimpleNamespace(release="{date}.v{n}", moving=tuple(moving), line=1)
    return SimpleNamespace(site=site, tags=tags, path="images.yaml")


def _matrix(names=("alpha", "beta"), moving=("latest",)):
    from buildtool.plan.references import ImageRefs

    variant_node, rendered, chosen = {}, {}, []
    references = {n: ImageRefs(n, tuple(moving), ("", "")) for n in names}
    for i, name in enumerate(names):
        node = f"node.{name}"
        h = f"{i + 1:x}" * 64
        variant_node[name] = node
        rendered[node] = SimpleNamespace(tag=f"buildtool/{node}:h-{h[:20]}", hash=h)
        chosen.append(SimpleNamespace(name=name, facts={"os.tag": "debian12", "python.bin": "/opt/venv/bin"}))
    return SimpleNamespace(dag=SimpleNamespace(variant_node=variant_node), rendered=rendered, references=references), chosen


class FakeAPI:
    def __init__(self, images, fail_on=None):
        self.images = images  # local tag -> (id, labels)
        self.tags: dict[str, str] = {}
        self.pushes: list[str] = []
        self.removed: list[str] = []
        self.fail_on = fail_on  # (repository, tag) whose push stream reports an error
        self.auth_configs = []

    def inspect_image(self, ref):
        from docker.errors import ImageNotFound

        if ref not in self.images:
            raise ImageNotFound(f"No such image: {ref}")
        image_id, labels = self.images[ref]
        return {"Id": image_id, "Config": {"Labels": labels}}

    def tag(self, image_id, repo, tag, force=False):
        self.tags[f"{repo}:{tag}"] = image_id
        return True

    def push(self, repo, tag, stream, decode, auth_config):
        ref = f"{repo}:{tag}"
        self.auth_configs.append(auth_config)
        self.pushes.append(ref)
        digest = "sha256:" + self.tags[ref][-8:] * 8
        if self.fail_on == (repo, tag):
            return iter([{"status": "Preparing", "id": "l1"},
                         {"errorDetail": {"message": f"Get https://reg/v2/: dial tcp: connection refused ({SECRET})"},
                          "error": "connection refused"}])
        return iter([{"status": "Preparing", "id": "l1"}, {"status": "Layer already exists", "id": "l1"},
                     {"status": "Pushed", "id": "l2"}, {"aux": {"Tag": tag, "Digest": digest, "Size": 10}}])

    def remove_image(self, ref, force=False, noprune=False):
        self.removed.append(ref)


class FakeClient:
    def __init__(self, images, fail_on=None):
        self.api = FakeAPI(images, fail_on)
        self.logins = []
        self.runs = 0
        client = self

        class Containers:
            def run(self, image, **kw):
                client.runs += 1
                return b"bash\t5.2\n@@pip\n[{\"name\": \"pip\", \"version\": \"24.0\"}]\n"

        self.containers = Containers()

    def login(self, username, password, registry, reauth, dockercfg_path):
        self.logins.append((username, registry))


class FakeRegistry:
    def __init__(self, tags=None, down=False):
        self.existing = tags or {}
        self.down = down

    def ping(self):
        if self.down:
            raise RegistryError("registry reg.example:5000: unreachable at https://reg.example:5000 (connection refused)")

    def tags(self, path):
        return list(self.existing.get(path, []))


@pytest.fixture
def world(tmp_path):
    g, chosen = _matrix()
    images = {g.rendered[g.dag.variant_node[v.name]].tag: (f"sha256:{i}{i}{i}{i}abcdef", {"io.buildtool.os": "debian12",
                                                                                      "io.buildtool.mpi.version": f"4.1.{i}"})
              for i, v in enumerate(chosen)}
    reports = tmp_path / "reports"
    _write_summary(reports, "20261123-010000-aaaa", [(v.name, tag, True) for v, tag in zip(chosen, images)])
    opts = Options(releases=tmp_path / "releases", reports=reports, state=tmp_path / "state", logs=tmp_path / "logs", date=DATE, attest=False)
    return SimpleNamespace(config=_config(), g=g, chosen=chosen, images=images, opts=opts, tmp=tmp_path)


def _write_summary(reports: Path, run: str, entries):
    d = reports / run
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"run": run, "images": [{"image": i, "tag": t, "ok": ok} for i, t, ok in entries]}))


def _run(world, client, registry=None, **kw):
    out = io.StringIO()
    opts = kw.pop("opts", world.opts)
    rc = publish(world.config, world.g, world.chosen, opts, env=ENV, out=out, client=client, registry_client=registry or FakeRegistry(), **kw)
    return rc, out.getvalue()


def _record(world):
    return json.loads((world.opts.releases / "reg.example_5000_ns.json").read_text())


# Tests -----------------------------------------------------------------------------------------------------


def test_immutable_tags_of_every_image_before_any_moving_tag(world):
    client = FakeClient(world.images)
    rc, out = _run(world, client)
    assert rc == 0
    pushes = client.api.pushes
    assert pushes == ["reg.example:5000/ns/alpha:20261123.v1", "reg.example:5000/ns/alpha:h-" + "1" * 20,
                      "reg.example:5000/ns/beta:20261123.v1", "reg.example:5000/ns/beta:h-" + "2" * 20,
                      "reg.example:5000/ns/alpha:latest", "reg.example:5000/ns/beta:latest"]
    assert client.logins == [("ci", "reg.example:5000")]
    assert all(a == {"username": "ci", "password": SECRET} for a in client.api.auth_configs)
    assert sorted(client.api.removed) == sorted(pushes)  # the registry-named local tags are dropped again
    rel = _record(world)["releases"]
    assert [r["release"] for r in rel] == ["20261123.v1"]
    alpha = rel[0]["images"]["alpha"]
    assert alpha["tags"] == ["20261123.v1", "h-" + "1" * 20] and alpha["moving"] == ["latest"]
    assert alpha["components"] == {"mpi.version": "4.1.0", "os": "debian12"} and alpha["digest"].startswith("sha256:")
    assert alpha["packages"] == {"apt": 1, "pip": 1}
    notes = (world.opts.releases / "reg.example_5000_ns" / "notes" / "20261123.v1.md").read_text()
    assert "new image" in notes
    assert not list(world.opts.state.glob("*.json"))  # no unfinished release left
    assert "release 20261123.v1: 2 images" in out


def test_failure_midway_updates_no_moving_tag_and_rerun_completes(world):
    beta_release = ("reg.example:5000/ns/beta", "20261123.v1")
    client = FakeClient(world.images, fail_on=beta_release)
    seen = []
    with pytest.raises(RegistryError) as err:
        _run(world, client, hooks=Hooks(after_image=lambda p, results: seen.append(p.image)))
    text = str(err.value)
    assert seen == ["alpha"]
    assert "no moving tag was updated" in text and "alpha" in text and "20261123.v1" in text
    assert SECRET not in text and "\n" not in text
    assert not any(p.endswith(":latest") for p in client.api.pushes)
    assert not (world.opts.releases / "reg.example_5000_ns.json").exists()
    assert list(world.opts.state.glob("publish-pending-*.json"))
    # The registry now holds alpha:20261123.v1; the rerun resumes that release instead of starting v2.
    client2 = FakeClient(world.images)
    rc, out = _run(world, client2, FakeRegistry({"ns/alpha": ["20261123.v1", "h-" + "1" * 20]}))
    assert rc == 0 and "resuming" in out
    assert [r["release"] for r in _record(world)["releases"]] == ["20261123.v1"]
    assert client2.api.pushes[-2:] == ["reg.example:5000/ns/alpha:latest", "reg.example:5000/ns/beta:latest"]


def test_changed_content_does_not_resume(world):
    pending = {"release": "20261123.v1", "date": DATE, "images": {"alpha": "0" * 64}}
    from buildtool.publish.plan import image_plans

    plans = image_plans(world.config, world.g, world.chosen)
    tag, why = choose_release("{date}.v{n}", DATE, plans, {"releases": []}, {"20261123.v1"}, pending)
    assert (tag, why) == ("20261123.v2", "new")


def test_release_number_from_registry_and_record(world):
    client = FakeClient(world.images)
    rc, _ = _run(world, client, FakeRegistry({"ns/beta": ["20261123.v1", "20261123.v4", "20261122.v9", "latest"]}))
    assert rc == 0 and "reg.example:5000/ns/alpha:20261123.v5" in client.api.pushes
    rc, _ = _run(world, FakeClient(world.images), FakeRegistry())  # the record alone knows v5 now
    assert [r["release"] for r in _record(world)["releases"]] == ["20261123.v5", "20261123.v6"]


def test_republish_reuses_manifests_and_notes_unchanged(world):
    client = FakeClient(world.images)
    _run(world, client)
    assert client.runs == 2
    client2 = FakeClient(world.images)
    rc, _ = _run(world, client2)
    assert rc == 0 and client2.runs == 0  # same content hash: the stored manifest is reused
    rel = _record(world)["releases"]
    assert rel[0]["images"]["alpha"]["digest"] == rel[1]["images"]["alpha"]["digest"]
    notes = (world.opts.releases / "reg.example_5000_ns" / "notes" / "20261123.v2.md").read_text()
    assert notes.count("| unchanged |") == 2


def test_unverified_images_are_refused_before_any_push(world):
    _write_summary(world.opts.reports, "20261123-020000-bbbb", [("beta", world.g.rendered["node.beta"].tag, False)])
    client = FakeClient(world.images)
    with pytest.raises(OperationError, match=r"beta \(checks failed in verify run 20261123-020000-bbbb\)"):
        _run(world, client)
    assert client.api.pushes == [] and client.logins == []


def test_never_verified_and_not_built(world, tmp_path):
    client = FakeClient(world.images)
    opts = Options(**{**world.opts.__dict__, "reports": tmp_path / "empty"})
    with pytest.raises(OperationError, match="no verify record"):
        _run(world, client, opts=opts)
    del client.api.images[world.g.rendered["node.alpha"].tag]
    with pytest.raises(OperationError, match="not built"):
        _run(world, client)


def test_verify_records_newest_wins(tmp_path):
    _write_summary(tmp_path, "20261120-000000-aaaa", [("a", "t:a", True), ("b", "t:b", False)])
    _write_summary(tmp_path, "20261121-000000-bbbb", [("a", "t:a", False), ("b", "t:b", True)])
    rec = verify_records(tmp_path)
    assert (rec["t:a"]["ok"], rec["t:b"]["ok"], rec["t:b"]["run"]) == (False, True, "20261121-000000-bbbb")


def test_dry_run_pushes_nothing(world):
    client = FakeClient(world.images)
    out = io.StringIO()
    opts = Options(**{**world.opts.__dict__, "dry_run": True, "output_format": "json"})
    rc = publish(world.config, world.g, world.chosen, opts, env=ENV, out=out, client=client, registry_client=FakeRegistry(down=True))
    assert rc == 0 and client.api.pushes == [] and client.logins == []
    plan = json.loads(out.getvalue())
    assert plan["release"] == "20261123.v1" and "registry not consulted" in plan["registry_note"]
    assert plan["images"][0]["immutable"] == ["20261123.v1", "h-" + "1" * 20] and plan["images"][0]["moving"] == ["latest"]
    assert not world.opts.releases.exists() and not world.opts.logs.exists()


def test_registry_down_is_one_line_and_pushes_nothing(world):
    client = FakeClient(world.images)
    with pytest.raises(RegistryError) as err:
        _run(world, client, FakeRegistry(down=True))
    assert "reg.example:5000" in str(err.value) and "\n" not in str(err.value)
    assert client.api.pushes == []


def test_password_never_written(world):
    client = FakeClient(world.images, fail_on=("reg.example:5000/ns/beta", "20261123.v1"))
    with pytest.raises(RegistryError):
        _run(world, client)
    _run(world, FakeClient(world.images))
    for path in world.tmp.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


def test_a_multi_platform_image_pushes_each_platform_then_one_index_under_release_and_moving_tags(world, monkeypatch):
    """alpha is made for linux/arm64 too: both images under their own content-hash tags, one OCI index under the
    release tag (before any moving tag), the same index under `latest`; the record keeps both digests."""
    import buildtool.publish.multi as multi
    from buildtool.publish.index import Descriptor, digest_of, parse_index

    arm_tag, arm_hash = "buildtool/node.alpha:h-" + "a" * 20, "a" * 64
    world.g.platforms = {"linux/arm64": SimpleNamespace(dag=SimpleNamespace(variant_node={"alpha": "node.alpha"}),
                                                        rendered={"node.alpha": SimpleNamespace(tag=arm_tag, hash=arm_hash)})}
    images = {**world.images, arm_tag: ("sha256:9999arm64ab", {"io.buildtool.os": "debian12"})}
    _write_summary(world.opts.reports, "20261123-020000-bbbb", [("alpha", arm_tag, True)])
    events: list[str] = []
    puts: dict[str, bytes] = {}
    monkeypatch.setattr(multi, "descriptor", lambda rc, path, platform, digest: Descriptor(platform, "application/vnd.docker.distribution.manifest.v2+json", digest, 500))

    def put(rc, path, reference, body):
        events.append(f"index {path}:{reference}")
        puts[reference] = body
        return digest_of(body)

    monkeypatch.setattr(multi, "put_index", put)
    client = FakeClient(images)
    original = client.api.push

    def push(repo, tag, **kw):
        events.append(f"push {repo}:{tag}")
        return original(repo, tag, **kw)

    client.api.push = push
    rc, out = _run(world, client)
    assert rc == 0, out
    alpha = "reg.example:5000/ns/alpha"
    assert events[:3] == [f"push {alpha}:h-" + "1" * 20, f"push {alpha}:h-" + "a" * 20, "index ns/alpha:20261123.v1"]
    assert events.index("index ns/alpha:latest") > events.index("push reg.example:5000/ns/beta:h-" + "2" * 20)  # moving tags last
    assert puts["latest"] == puts["20261123.v1"]
    entry = _record(world)["releases"][0]["images"]["alpha"]
    assert entry["digest"] == digest_of(puts["20261123.v1"]) and entry["tags"] == ["20261123.v1"] and entry["moving"] == ["latest"]
    assert set(entry["platforms"]) == {"linux/amd64", "linux/arm64"}
    assert parse_index(puts["latest"]) == {p: v["digest"] for p, v in entry["platforms"].items()}
    assert entry["platforms"]["linux/arm64"] == {"digest": entry["platforms"]["linux/arm64"]["digest"], "node": "node.alpha",
                                                 "content_hash": arm_hash, "tag": "h-" + "a" * 20}
    beta = _record(world)["releases"][0]["images"]["beta"]
    assert "platforms" not in beta and beta["tags"] == ["20261123.v1", "h-" + "2" * 20]  # a single-platform image as before


def test_a_multi_platform_image_without_a_verified_arm64_build_is_not_published(world):
    arm_tag = "buildtool/node.alpha:h-" + "a" * 20
    world.g.platforms = {"linux/arm64": SimpleNamespace(dag=SimpleNamespace(variant_node={"alpha": "node.alpha"}),
                                                        rendered={"node.alpha": SimpleNamespace(tag=arm_tag, hash="a" * 64)})}
    with pytest.raises(OperationError) as err:
        _run(world, FakeClient(world.images))
    assert "linux/arm64" in str(err.value) and "buildtool build --platform linux/arm64" in str(err.value)
    images = {**world.images, arm_tag: ("sha256:9999arm64ab", {})}
    with pytest.raises(OperationError) as err:
        _run(world, FakeClient(images))
    assert "buildtool verify --platform linux/arm64" in str(err.value)
    rc, _ = _run(world, FakeClient(images), opts=Options(**{**world.opts.__dict__, "platforms": ("linux/amd64",)}))
    assert rc == 0 and "platforms" not in _record(world)["releases"][0]["images"]["alpha"]


def test_attestations_after_every_immutable_tag_before_any_moving_tag_and_in_the_release_file(world):
    client = FakeClient(world.images)
    seen: list[tuple[str, str, int]] = []

    def attest(p, digest):
        seen.append((p.image, digest, len(client.api.pushes)))
        return {"sbom": {"digest": "sha256:" + "5" * 64, "packages": 3, "size": 10, "artifactType": "application/vnd.cyclonedx+json"},
                "provenance": {"digest": "sha256:" + "6" * 64, "size": 20, "artifactType": "application/vnd.in-toto+json"}}

    opts = Options(**{**world.opts.__dict__, "attest": True})
    rc = publish(world.config, world.g, world.chosen, opts, env=ENV, out=io.StringIO(), client=client, registry_client=FakeRegistry(),
                 hooks=Hooks(attest=attest))
    assert rc == 0
    assert [s[0] for s in seen] == ["alpha", "beta"]
    assert all(n == 4 for _, _, n in seen)  # after the 4 immutable pushes, before the 2 moving ones
    images = _record(world)["releases"][0]["images"]
    for name, digest, _ in seen:
        assert images[name]["digest"] == digest
        assert images[name]["attestations"]["sbom"]["digest"] == "sha256:" + "5" * 64
        assert images[name]["attestations"]["provenance"]["digest"] == "sha256:" + "6" * 64
