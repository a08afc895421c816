"""buildtool.edges.registry without a registry: credentials, masking, the push stream, challenges."""

from __future__ import annotations

import base64
import json

import pytest

from buildtool.edges.registry import Credentials, RegistryError, _parse_challenge, ca_for, load_credentials, mask
from buildtool.engine.registry_transfer import PushError, read_push_stream

REG = "127.0.0.1:5000"
SECRET = "s3cret-Pa55word"


# Credentials ----------------------------------------------------------------------------------------


def test_env_credentials(tmp_path):
    creds = load_credentials(REG, "env", {"BUILDTOOL_REGISTRY_USER": "ci", "BUILDTOOL_REGISTRY_PASSWORD": SECRET, "HOME": str(tmp_path)})
    assert (creds.username, creds.password) == ("ci", SECRET)
    assert SECRET not in repr(creds) and SECRET not in creds.source


def test_env_password_file(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(SECRET + "\n")
    creds = load_credentials(REG, "env", {"BUILDTOOL_REGISTRY_USER": "ci", "BUILDTOOL_REGISTRY_PASSWORD_FILE": str(pw), "HOME": str(tmp_path)})
    assert creds.password == SECRET
    assert "PASSWORD_FILE" in creds.source


def test_env_half_set_is_an_error(tmp_path):
    with pytest.raises(RegistryError, match="BUILDTOOL_REGISTRY_PASSWORD"):
        load_credentials(REG, "env", {"BUILDTOOL_REGISTRY_USER": "ci", "HOME": str(tmp_path)})


def test_env_falls_back_to_docker_config_then_anonymous(tmp_path):
    assert load_credentials(REG, "env", {"HOME": str(tmp_path)}) is None
    cfg = tmp_path / ".docker" / "config.json"
    cfg.parent.mkdir()
    cfg.write_text(json.dumps({"auths": {REG: {"auth": base64.b64encode(f"bob:{SECRET}".encode()).decode()}}}))
    creds = load_credentials(REG, "env", {"HOME": str(tmp_path)})
    assert (creds.username, creds.password) == ("bob", SECRET)


def test_docker_config_env_var_and_helpers(tmp_path):
    cfg = tmp_path / "cfg" / "config.json"
    cfg.parent.mkdir()
    cfg.write_text(json.dumps({"credHelpers": {REG: "fake"}, "auths": {}}))
    calls = []

    def helper(name, server):
        calls.append((name, server))
        return json.dumps({"Username": "helperuser", "Secret": SECRET})

    creds = load_credentials(REG, "docker-config", {"DOCKER_CONFIG": str(cfg.parent)}, helper_runner=helper)
    assert calls == [("fake", REG)]
    assert (creds.username, creds.password, creds.source) == ("helperuser", SECRET, "docker-credential-fake")


def test_docker_config_identity_token(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {REG: {"identitytoken": SECRET}}}))
    creds = load_credentials(REG, "docker-config", {"DOCKER_CONFIG": str(tmp_path)})
    assert creds.identity_token and creds.auth_config() == {"identitytoken": SECRET}


def test_docker_hub_key(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"username": "u", "password": SECRET}}}))
    assert load_credentials("docker.io", "docker-config", {"DOCKER_CONFIG": str(tmp_path)}).password == SECRET


def test_mask_covers_password_and_base64_forms():
    creds = Credentials("ci", SECRET, "env")
    b64 = base64.b64encode(f"ci:{SECRET}".encode()).decode()
    text = mask(f"failed with {SECRET} and Basic {b64}", creds)
    assert SECRET not in text and b64 not in text and text.count("***") == 2
    assert mask("nothing", None) == "nothing"


def test_ca_for_prefers_certs_d(tmp_path, monkeypatch):
    import buildtool.edges.registry_settings as r

    monkeypatch.setattr(r, "CERTS_D", tmp_path)
    assert ca_for(REG, {}) is True
    assert ca_for(REG, {"BUILDTOOL_REGISTRY_CA": "/x/ca.pem"}) == "/x/ca.pem"
    (tmp_path / REG).mkdir()
    (tmp_path / REG / "ca.crt").write_text("pem")
    assert ca_for(REG, {"BUILDTOOL_REGISTRY_CA": "/x/ca.pem"}) == str(tmp_path / REG / "ca.crt")


def test_parse_challenge():
    assert _parse_challenge('Basic realm="r"') == ("basic", {"realm": "r"})
    scheme, params = _parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"')
    assert scheme == "bearer" and params["service"] == "registry.example" and params["realm"].endswith("/token")


# The push stream ------------------------------------------------------------------------------------------

DIGEST = "sha256:" + "ab" * 32


def _ok_stream(tag="t1", status="Pushed"):
    return [
        {"status": "The push refers to repository [127.0.0.1:5000/ns/img]"},
        {"status": "Preparing", "progressDetail": {}, "id": "aaa"},
        {"status": "Preparing", "progressDetail": {}, "id": "bbb"},
        {"status": "Waiting", "progressDetail": {}, "id": "bbb"},
        {"status": "Pushing", "progressDetail": {"current": 1, "total": 2}, "id": "aaa"},
        {"status": status, "progressDetail": {}, "id": "aaa"},
        {"status": "Layer already exists", "progressDetail": {}, "id": "bbb"},
        {"status": f"{tag}: digest: {DIGEST} size: 1568"},
        {"progressDetail": {}, "aux": {"Tag": tag, "Digest": DIGEST, "Size": 1568}},
    ]


def test_stream_digest_and_layers():
    events = []
    r = read_push_stream(_ok_stream(), "127.0.0.1:5000/ns/img", "t1", REG, on_event=events.append)
    assert r.digest == DIGEST and r.size == 1568
    assert r.layers == {"aaa": "Pushed", "bbb": "Layer already exists"}
    assert (r.pushed, r.existing) == (1, 1)
    assert any("digest" in e for e in events)


def test_stream_mounted_counts_as_existing():
    r = read_push_stream(_ok_stream(status="Mounted from other/repo"), "r", "t1", REG)
    assert (r.pushed, r.existing) == (0, 2)


def test_stream_raw_json_lines_and_status_line_digest():
    lines = [json.dumps(x).encode() + b"\r\n" for x in _ok_stream()[:-1]]  # no aux record: the status line carries the digest
    assert read_push_stream(lines, "r", "t1", REG).digest == DIGEST


@pytest.mark.parametrize("bad", [
    {"errorDetail": {"message": "unauthorized: authentication required"}, "error": "unauthorized: authentication required"},
    {"error": "received unexpected HTTP status: 500 Internal Server Error"},
    {"errorDetail": {"message": "blob upload unknown"}},
])
def test_stream_error_fails_loudly(bad):
    lines = _ok_stream()[:4] + [bad]
    with pytest.raises(PushError) as err:
        read_push_stream(lines, "127.0.0.1:5000/ns/img", "t1", REG)
    text = str(err.value)
    assert text.startswith(f"registry {REG}: push of 127.0.0.1:5000/ns/img:t1 failed: ")
    assert "\n" not in text


def test_stream_error_is_masked():
    creds = Credentials("ci", SECRET, "env")
    with pytest.raises(PushError) as err:
        read_push_stream([{"error": f"denied for ci:{SECRET}"}], "r", "t", REG, creds)
    assert SECRET not in str(err.value)


def test_stream_without_digest_fails():
    with pytest.raises(PushError, match="without a digest"):
        read_push_stream(_ok_stream()[:7], "r", "t1", REG)


def test_stream_digest_with_unfinished_layer_fails():
    lines = _ok_stream()[:4] + [{"status": "Pushed", "id": "aaa"}] + _ok_stream()[-2:]
    with pytest.raises(PushError, match="never finished"):
        read_push_stream(lines, "r", "t1", REG)


# The HTTP client, over a stand-in session ------------------------------------------------------------------


class _Resp:
    def __init__(self, status, body=None, headers=None):
        self.status_code = status
        self._body = body if body is not None else {}
        self.headers = headers or {}
        self.content = json.dumps(self._body).encode()

    def json(self):
        return self._body


class _Session:
    """Answers like a registry: Basic (htpasswd) or Bearer (token server) auth, paginated tags."""

    def __init__(self, scheme="basic", password=SECRET, down=False):
        self.scheme, self.password, self.down = scheme, password, down
        self.calls = []
        self.verify = True
        self.trust_env = True

    def _authorized(self, headers, auth):
        got = headers.get("Authorization", "")
        if self.scheme == "basic":
            return got == "Basic " + base64.b64encode(f"ci:{self.password}".encode()).decode()
        return got == "Bearer tok-ok"

    def request(self, method, url, timeout=None, headers=None, auth=None, params=None, **kw):
        import requests

        self.calls.append((method, url, dict(headers or {}), params))
        if self.down:
            raise requests.exceptions.ConnectionError("HTTPSConnectionPool: Max retries exceeded ([Errno 111] Connection refused)")
        if url.startswith("https://auth.example/token"):
            return _Resp(200, {"token": "tok-ok"}) if auth == ("ci", self.password) else _Resp(401)
        if not self._authorized(headers or {}, auth):
            challenge = 'Basic realm="r"' if self.scheme == "basic" else 'Bearer realm="https://auth.example/token",service="reg"'
            return _Resp(401, {}, {"WWW-Authenticate": challenge})
        if url.endswith("/v2/"):
            return _Resp(200)
        if "/missing/tags/list" in url:
            return _Resp(404)
        if "/tags/list" in url and "last=" not in url:
            return _Resp(200, {"tags": ["a", "b"]}, {"Link": '</v2/ns/img/tags/list?n=2&last=b>; rel="next"'})
        if "/tags/list" in url:
            return _Resp(200, {"tags": ["c"]})
        return _Resp(404)


def _client(session, password=SECRET):
    from buildtool.edges.registry import RegistryClient

    c = RegistryClient(REG, Credentials("ci", password, "env"), verify=False)
    c.session = session
    return c


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_client_auth_and_paginated_tags(scheme):
    session = _Session(scheme)
    c = _client(session)
    c.ping()
    assert c.tags("ns/img") == ["a", "b", "c"]
    assert c.tags("ns/missing") == []
    if scheme == "bearer":
        assert any(p and p.get("scope") == "repository:ns/img:pull" for _m, _u, _h, p in session.calls)


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_client_wrong_password_is_one_masked_line(scheme):
    c = _client(_Session(scheme), password="wrong-" + SECRET)
    with pytest.raises(RegistryError) as err:
        c.ping()
    text = str(err.value)
    assert text == f"registry {REG}: credentials of user 'ci' (from env) rejected: 401 Unauthorized"


def test_client_unreachable():
    with pytest.raises(RegistryError) as err:
        _client(_Session(down=True)).ping()
    assert str(err.value) == f"registry {REG}: unreachable at https://{REG} (connection refused)"


def test_client_needs_credentials():
    from buildtool.edges.registry import RegistryClient

    c = RegistryClient(REG, None, verify=False)
    c.session = _Session()
    with pytest.raises(RegistryError, match="needs credentials"):
        c.ping()
