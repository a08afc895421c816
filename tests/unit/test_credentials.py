"""Credentials stay where they belong: recorded headers of stand-in HTTP(S) servers on 127.0.0.1.

Every server records the Authorization header of each request it gets. The assertions are on what
the servers received, not on what the client meant to send.
"""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from buildtool.edges import credpolicy
from buildtool.edges.registry import Credentials, Registry, RegistryClient, RegistryError
from buildtool.edges.registry import RegistryClient as RemoteClient
from buildtool.errors import OperationError

SECRET = "s3cret-Pa55"

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []  # (method, path, Authorization)

    def auths(self) -> list[str]:
        return [a for _, _, a in self.seen if a]


@contextmanager
def server(handler: Handler, tls: tuple[Path, Path] | None = None) -> Iterator[tuple[str, Recorder]]:
    """A stand-in server on 127.0.0.1 (TLS with `tls` = (cert, key)); stopped and closed on the way out."""
    rec = Recorder()

    class H(http.server.BaseHTTPRequestHandler):
        def _any(self) -> None:
            rec.seen.append((self.command, self.path, self.headers.get("Authorization")))
            handler(self)

        do_GET = do_HEAD = do_POST = _any  # noqa: N815

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls[0]), str(tls[1]))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}", rec
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def reply(status: int, **headers: str) -> Handler:
    def handle(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k.replace("_", "-"), v)
        h.send_header("Content-Length", "0")
        h.end_headers()
    return handle


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl for a loopback TLS server")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    return d / "cert.pem", d / "key.pem"


# The policy ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "registry", "insecure", "ok"), [
    ("https://r.example/v2/", "r.example", False, True),
    ("https://r.example:443/v2/", "r.example", False, True),
    ("http://r.example/v2/", "r.example", False, False),
    ("http://r.example/v2/", "r.example", True, False),  # insecure, but not loopback
    ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000", False, False),
    ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000", True, True),
    ("https://other.example/v2/", "r.example", False, False),
    ("https://r.example:8443/v2/", "r.example", False, False),
    ("https://r.example.evil/v2/", "r.example", False, False),
])
def test_may_send_basic(url, registry, insecure, ok):
    assert credpolicy.may_send_basic(url, registry, insecure) is ok


def test_mask_url_and_pip_index():
    text = "error: https://bob:hunter2@mirror.example/simple/ and http://alice@x/ failed"
    assert credpolicy.mask_url(text) == "error: https://bob:***@mirror.example/simple/ and http://alice@x/ failed"
    assert credpolicy.pip_index_args("https://pypi.org/simple") == (["--index-url", "https://pypi.org/simple"], {})
    argv, env = credpolicy.pip_index_args("https://bob:hunter2@mirror.example/simple")
    assert argv == [] and env == {"PIP_INDEX_URL": "https://bob:hunter2@mirror.example/simple"}


# lookups without a ping first (manifest_exists: CI planning, build --from-registry) --------------------------


def test_remote_plain_http_registry_gets_no_credentials():
    with server(reply(404)) as (host, rec):
        reg = Registry(host=host, username="u", password=SECRET, scheme="http")
        with pytest.raises(OperationError) as err:
            RemoteClient(reg).manifest_exists("buildtool/a", "h-1")
    assert rec.auths() == [] and SECRET not in str(err.value) and "insecure" in str(err.value)


def test_remote_insecure_loopback_registry_gets_basic():
    with server(reply(404)) as (host, rec):
        reg = Registry(host=host, username="u", password=SECRET, scheme="http", insecure=True)
        assert RemoteClient(reg).manifest_exists("buildtool/a", "h-1") is False
    assert len(rec.auths()) == 1 and rec.auths()[0].startswith("Basic ")


def test_remote_redirect_to_another_origin_drops_authorization():
    with server(reply(200)) as (other, other_rec):
        with server(reply(307, Location=f"http://{other}/elsewhere")) as (host, rec):
            reg = Registry(host=host, username="u", password=SECRET, scheme="http", insecure=True)
            assert RemoteClient(reg).manifest_exists("buildtool/a", "h-1") is True
    assert rec.auths() and other_rec.seen and other_rec.auths() == []


def test_remote_tls_registry_redirecting_to_http_elsewhere_drops_authorization(cert):
    with server(reply(200)) as (other, other_rec):
        with server(reply(302, Location=f"http://{other}/blob"), tls=cert) as (host, rec):
            reg = Registry(host=host, username="u", password=SECRET, ca=cert[0])
            assert RemoteClient(reg).manifest_exists("buildtool/a", "h-1") is True
    assert rec.auths() and other_rec.seen and other_rec.auths() == []


def test_remote_bearer_realm_over_http_gets_nothing(cert):
    with server(reply(200)) as (realm, realm_rec):
        challenge = f'Bearer realm="http://{realm}/token",service="r"'
        with server(reply(401, WWW_Authenticate=challenge), tls=cert) as (host, rec):
            reg = Registry(host=host, username="u", password=SECRET, ca=cert[0])
            with pytest.raises(OperationError, match="plain http"):
                RemoteClient(reg).manifest_exists("buildtool/a", "h-1")
    assert realm_rec.seen == []


# after a ping (publish) -------------------------------------------------------------------------------


def test_publish_bearer_realm_on_another_host_over_http_gets_nothing(cert):
    with server(reply(200)) as (realm, realm_rec):
        challenge = f'Bearer realm="http://{realm}/token",service="r"'
        with server(reply(401, WWW_Authenticate=challenge), tls=cert) as (host, rec):
            client = RegistryClient(host, Credentials("u", SECRET, "test"), verify=str(cert[0]), timeout=5)
            with pytest.raises(RegistryError) as err:
                client.ping()
    assert realm_rec.seen == [] and rec.auths() == []
    assert "plain http" in str(err.value) and SECRET not in str(err.value)


def test_publish_bearer_realm_over_http_allowed_when_insecure(cert):
    def token(h):
        body = b'{"token": "t0k"}'
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    with server(token) as (realm, realm_rec):
        challenge = f'Bearer realm="http://{realm}/token",service="r"'

        def registry(h):
            if h.headers.get("Authorization") == "Bearer t0k":
                reply(200)(h)
            else:
                reply(401, WWW_Authenticate=challenge)(h)

        with server(registry, tls=cert) as (host, rec):
            RegistryClient(host, Credentials("u", SECRET, "test"), verify=str(cert[0]), timeout=5, insecure=True).ping()
    assert realm_rec.auths() and realm_rec.auths()[0].startswith("Basic ")
    assert "Bearer t0k" in rec.auths()


def test_publish_basic_goes_over_tls_to_the_registry_only(cert):
    with server(reply(200)) as (other, other_rec):
        def registry(h):
            if h.path.startswith("/v2/r/tags"):
                reply(302, Location=f"http://{other}/elsewhere")(h)
            elif h.headers.get("Authorization"):
                reply(200)(h)
            else:
                reply(401, WWW_Authenticate='Basic realm="r"')(h)

        with server(registry, tls=cert) as (host, rec):
            client = RegistryClient(host, Credentials("u", SECRET, "test"), verify=str(cert[0]), timeout=5)
            client.ping()
            client._get("/v2/r/tags/list", "repository:r:pull")
    assert any(a.startswith("Basic ") for a in rec.auths())
    assert other_rec.seen and other_rec.auths() == []


def test_cli_errors_mask_userinfo(tmp_path, cli, monkeypatch):
    """Any URL with user:password in a printed error has the password replaced (the lock's mirror errors too)."""
    from buildtool.cli.verbs import validate
    from buildtool.errors import OperationError as Op

    def boom(args):
        raise Op(f"mirror https://bob:{SECRET}@mirror.example/debian unreachable")

    monkeypatch.setattr(validate, "run", boom)
    r = cli("validate")
    assert r.code == 1 and SECRET not in r.err and "bob:***@" in r.err


def test_remote_missing_over_plain_http_sends_no_credentials(fixture_copy, monkeypatch, capsys):
    """The probe's case: `buildtool ci missing --registry http://...` with credentials set."""
    from buildtool.cli.main import main

    root = fixture_copy("minimal")
    monkeypatch.setenv("BUILDTOOL_REGISTRY_USER", "u")
    monkeypatch.setenv("BUILDTOOL_REGISTRY_PASSWORD", SECRET)
    with server(reply(404)) as (host, rec):
        code = main(["ci", "missing", "--config", str(root / "images.yaml"), "--registry", f"http://{host}"])
    err = capsys.readouterr().err
    assert code == 1 and rec.auths() == [] and SECRET not in err and "insecure" in err
