"""buildtool.plan.ci_plan + buildtool.edges.registry: the build/pull/skip decision from tag sets, and manifest lookups over the
registry HTTP API v2 against a small in-process stand-in registry (basic auth, HEAD manifests)."""

from __future__ import annotations

import base64
import http.server
import threading
from pathlib import Path

import pytest

from buildtool.edges.registry import Registry, RegistryClient
from buildtool.errors import OperationError
from buildtool.plan.ci_plan import leaves, missing_levels, plan_against_registry

# a -> b -> c, b -> d ; e alone
PARENTS = {"a": None, "b": "a", "c": "b", "d": "b", "e": None}
NODES = ["a", "e", "b", "c", "d"]
TAG = {n: f"buildtool/{n}:h-{n * 4}" for n in NODES}


def test_nothing_missing_means_no_pulls_and_no_builds():
    plan = plan_against_registry(NODES, PARENTS, TAG, local_tags=[], remote_tags=TAG.values())
    assert plan.to_build == [] and plan.to_pull == []
    assert plan.from_registry == NODES


def test_missing_leaf_pulls_its_ancestors_only():
    remote = [TAG[n] for n in ("a", "b", "d", "e")]
    plan = plan_against_registry(NODES, PARENTS, TAG, local_tags=[], remote_tags=remote)
    assert plan.to_build == ["c"]
    assert plan.to_pull == ["a", "b"]  # parents first; d and e stay in the registry
    assert plan.from_registry == ["e", "d"]


def test_local_ancestors_are_not_pulled():
    plan = plan_against_registry(NODES, PARENTS, TAG, local_tags=[TAG["a"]], remote_tags=[TAG["b"]])
    assert plan.to_build == ["e", "c", "d"]
    assert plan.to_pull == ["b"]
    assert plan.local == ["a"]


def test_changed_node_means_its_subtree():
    # b changed: its hash (and so c's and d's) is new, so none of them is in the registry
    remote = [TAG["a"], TAG["e"]]
    assert missing_levels([["a", "e"], ["b"], ["c", "d"]], TAG, remote) == [[], ["b"], ["c", "d"]]
    plan = plan_against_registry(NODES, PARENTS, TAG, local_tags=[], remote_tags=remote)
    assert plan.to_build == ["b", "c", "d"] and plan.to_pull == ["a"]
    assert leaves(plan.to_build, PARENTS) == ["c", "d"]


def test_registry_names():
    r = Registry.from_env(env={"BUILDTOOL_REGISTRY": "127.0.0.1:5000", "BUILDTOOL_NAMESPACE": "ml"})
    assert r.repository("buildtool/debian12.sys:h-0123") == ("ml/debian12.sys", "h-0123")
    assert r.remote_ref("buildtool/debian12.sys:h-0123") == "127.0.0.1:5000/ml/debian12.sys:h-0123"
    assert r.auth_config() is None


def test_password_from_file_is_not_in_repr(tmp_path: Path):
    pw = tmp_path / "password"
    pw.write_text("s3cret-value\n")
    r = Registry.from_env(env={"BUILDTOOL_REGISTRY": "h:1", "BUILDTOOL_REGISTRY_USER": "u", "BUILDTOOL_REGISTRY_PASSWORD_FILE": str(pw)})
    assert r.password == "s3cret-value"
    assert "s3cret" not in repr(r)
    assert r.auth_config() == {"username": "u", "password": "s3cret-value", "serveraddress": "h:1"}


class _Registry(http.server.BaseHTTPRequestHandler):
    have: set[str] = set()
    auth = "Basic " + base64.b64encode(b"u:p").decode()
    seen: list[str] = []

    def do_HEAD(self):  # noqa: N802
        self.seen.append(self.path)
        if self.headers.get("Authorization") != self.auth:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.end_headers()
            return
        if "manifest.v2+json" not in (self.headers.get("Accept") or ""):
            self.send_response(400)
            self.end_headers()
            return
        self.send_response(200 if self.path in self.have else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_registry():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Registry.seen = []
    _Registry.have = {"/v2/buildtool/a/manifests/h-aaaa", "/v2/buildtool/e/manifests/h-eeee"}
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_existing_asks_head_manifests(fake_registry):
    reg = Registry(host=fake_registry, username="u", password="p", scheme="http", insecure=True)
    client = RegistryClient(reg)
    assert client.existing(TAG.values()) == {TAG["a"], TAG["e"]}
    assert client.requests == len(TAG)
    assert sorted(_Registry.seen) == sorted(f"/v2/buildtool/{n}/manifests/h-{n * 4}" for n in NODES)


def test_bad_credentials_are_an_error_without_the_password(fake_registry):
    reg = Registry(host=fake_registry, username="u", password="wrong-pass", scheme="http", insecure=True)
    with pytest.raises(OperationError) as err:
        RegistryClient(reg).existing([TAG["a"]])
    assert "401" in str(err.value) and "wrong-pass" not in str(err.value)


def test_unreachable_registry_is_an_error():
    reg = Registry(host="127.0.0.1:9", scheme="http")
    with pytest.raises(OperationError, match="unreachable"):
        RegistryClient(reg, timeout=2).manifest_exists("buildtool/a", "h-aaaa")
