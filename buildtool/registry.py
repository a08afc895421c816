"""The registry edge of `buildtool publish`: credentials, a small Registry HTTP API v2 client,
engine login, and reading the engine's push stream.

Secrets never leave this module in clear text: `Credentials` hides its password from repr,
and every message that could carry one goes through `Credentials.mask()` (the password and
its base64 `user:password` form become `***`).

The registry's own CA: the client trusts what the engine trusts for that registry,
`/etc/docker/certs.d/<host:port>/ca.crt` (what `scripts/registry.sh` installs), else
$BUILDTOOL_REGISTRY_CA, else the system bundle.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .credpolicy import mask_url, may_send_basic, realm_problem
from .errors import OperationError

CERTS_D = Path(os.environ.get("BUILDTOOL_DOCKER_CERTS_D", "/etc/docker/certs.d"))
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
HUB_CONFIG_KEY = "https://index.docker.io/v1/"
MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))
ENV_USER, ENV_PASSWORD, ENV_PASSWORD_FILE = "BUILDTOOL_REGISTRY_USER", "BUILDTOOL_REGISTRY_PASSWORD", "BUILDTOOL_REGISTRY_PASSWORD_FILE"


class RegistryError(OperationError):
    """A registry failure, already a one-line message naming the registry (secrets masked)."""


# Credentials -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str = ""  # where they came from, for messages: never the secret itself
    identity_token: bool = False  # password is an OAuth refresh token (docker login --identity-token)

    def secrets(self) -> list[str]:
        out = [self.password]
        for raw in (f"{self.username}:{self.password}".encode(),):
            out.append(base64.b64encode(raw).decode())
            out.append(base64.urlsafe_b64encode(raw).decode())
        return [s for s in out if s]

    def mask(self, text: str) -> str:
        return mask(text, self)

    def auth_config(self) -> dict[str, str]:
        """The SDK's auth_config for push/pull (sent to the engine as X-Registry-Auth)."""
        if self.identity_token:
            return {"identitytoken": self.password}
        return {"username": self.username, "password": self.password}


def mask(text: str, creds: Credentials | None) -> str:
    text = mask_url(text) if text else text
    if creds is None or not text:
        return text
    for secret in sorted(creds.secrets(), key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def config_key(registry: str) -> str:
    return HUB_CONFIG_KEY if registry in DOCKER_HUB else registry


def docker_config_path(env: dict[str, str]) -> Path:
    base = env.get("DOCKER_CONFIG") or str(Path(env.get("HOME") or Path.home()) / ".docker")
    return Path(base) / "config.json"


def load_credentials(registry: str, source: str, env: dict[str, str] | None = None,
                     helper_runner: Callable[[str, str], str] | None = None) -> Credentials | None:
    """Credentials for `registry`; None when there are none (anonymous).

    source "env": $BUILDTOOL_REGISTRY_USER with $BUILDTOOL_REGISTRY_PASSWORD (or a file named by
    $BUILDTOOL_REGISTRY_PASSWORD_FILE); when neither is set, the Docker config is tried.
    source "docker-config": the Docker config only ($DOCKER_CONFIG/config.json or
    ~/.docker/config.json): credHelpers / credsStore (docker-credential-<helper> get), else auths.
    """
    env = dict(os.environ if env is None else env)
    if source == "env":
        user, password = env.get(ENV_USER, ""), env.get(ENV_PASSWORD, "")
        if not password and env.get(ENV_PASSWORD_FILE):
            path = Path(env[ENV_PASSWORD_FILE])
            try:
                password = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise RegistryError(f"cannot read the registry password file {path} ({ENV_PASSWORD_FILE}): {exc.strerror or exc}") from None
        if user or password:
            if not (user and password):
                missing = ENV_USER if not user else f"{ENV_PASSWORD} (or {ENV_PASSWORD_FILE})"
                raise RegistryError(f"registry {registry}: credentials from the environment are incomplete: {missing} is not set")
            what = ENV_PASSWORD if env.get(ENV_PASSWORD) else ENV_PASSWORD_FILE
            return Credentials(user, password, f"{ENV_USER}/{what}")
    elif source != "docker-config":
        raise RegistryError(f"unknown credentials source {source!r} (expected env or docker-config)")
    return _from_docker_config(registry, env, helper_runner or _run_helper)


def _from_docker_config(registry: str, env: dict[str, str], helper_runner: Callable[[str, str], str]) -> Credentials | None:
    path = docker_config_path(env)
    if not path.is_file():
        return None
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read the Docker config {path}: {exc}") from None
    key = config_key(registry)
    helper = (cfg.get("credHelpers") or {}).get(key) or (cfg.get("credHelpers") or {}).get(registry) or cfg.get("credsStore")
    if helper:
        raw = helper_runner(helper, key)
        if raw:
            try:
                got = json.loads(raw)
            except ValueError:
                raise RegistryError(f"docker-credential-{helper} returned something that is not JSON for {registry}") from None
            user, secret = got.get("Username", ""), got.get("Secret", "")
            if secret:
                return Credentials(user, secret, f"docker-credential-{helper}", identity_token=user == "<token>")
    auths = cfg.get("auths") or {}
    entry = auths.get(key) or auths.get(registry) or auths.get(f"https://{registry}") or auths.get(f"https://{registry}/v2/")
    if not entry:
        return None
    if entry.get("identitytoken"):
        return Credentials(entry.get("username", ""), entry["identitytoken"], f"{path} (identitytoken)", identity_token=True)
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(f"the auth entry for {registry} in {path} is not base64 'user:password'") from None
        return Credentials(user, password, str(path))
    if entry.get("username") and entry.get("password"):
        return Credentials(entry["username"], entry["password"], str(path))
    return None


def _run_helper(helper: str, server: str) -> str:
    """`docker-credential-<helper> get` with the server on stdin; '' when it has nothing."""
    try:
        done = subprocess.run([f"docker-credential-{helper}", "get"], input=server, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistryError(f"docker-credential-{helper} (credsStore/credHelpers of the Docker config) failed: {type(exc).__name__}") from None
    return done.stdout if done.returncode == 0 else ""


# The registry's HTTP API -----------------------------------------------------------------------


def ca_for(registry: str, env: dict[str, str] | None = None) -> str | bool:
    """What to verify the registry's TLS certificate with: certs.d's ca.crt, $BUILDTOOL_REGISTRY_CA, else True."""
    env = os.environ if env is None else env
    ca = CERTS_D / registry / "ca.crt"
    if ca.is_file():
        return str(ca)
    if env.get("BUILDTOOL_REGISTRY_CA"):
        return env["BUILDTOOL_REGISTRY_CA"]
    return True


def api_base(registry: str) -> str:
    host = "registry-1.docker.io" if registry in DOCKER_HUB else registry
    return f"https://{host}"


_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryClient:
    """Registry HTTP API v2: ping, authenticate (Basic or Bearer token), tags, manifests, blobs."""

    def __init__(self, registry: str, creds: Credentials | None, verify: str | bool | None = None, timeout: float = 15.0,
                 insecure: bool = False) -> None:
        import requests

        self.registry = registry
        self.insecure = insecure  # the site marks the registry insecure: a plain-http token realm is allowed
        self.creds = creds
        self.base = api_base(registry)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy for a registry (and no ~/.netrc)
        self.session.verify = ca_for(registry) if verify is None else verify
        self._tokens: dict[str, str] = {}
        self._challenge: tuple[str, dict[str, str]] | None = None

    def _fail(self, what: str) -> RegistryError:
        return RegistryError(mask(f"registry {self.registry}: {what}", self.creds))

    def _request(self, method: str, url: str, **kw: Any):
        import requests

        try:
            return self.session.request(method, url, timeout=self.timeout, **kw)
        except requests.exceptions.SSLError as exc:
            where = CERTS_D / self.registry / "ca.crt"
            raise self._fail(f"TLS verification failed ({_reason(exc)}); trust its CA in {where} or $BUILDTOOL_REGISTRY_CA") from None
        except requests.exceptions.ConnectionError as exc:
            raise self._fail(f"unreachable at {self.base} ({_reason(exc)})") from None
        except requests.exceptions.Timeout:
            raise self._fail(f"no answer within {self.timeout:.0f}s at {self.base}") from None
        except requests.exceptions.RequestException as exc:
            raise self._fail(f"request failed ({_reason(exc)})") from None

    def ping(self) -> None:
        """Reachable, speaks API v2 and (with credentials) accepts them. Raises RegistryError otherwise."""
        r = self._request("GET", f"{self.base}/v2/")
        if r.status_code == 200:
            return
        if r.status_code != 401:
            raise self._fail(f"GET /v2/ answered {r.status_code} (not a Docker registry API v2?)")
        self._challenge = _parse_challenge(r.headers.get("WWW-Authenticate", ""))
        if self.creds is None:
            raise self._fail("needs credentials: set BUILDTOOL_REGISTRY_USER and BUILDTOOL_REGISTRY_PASSWORD, "
                             "or log in (docker login) and use credentials: docker-config")
        headers = self._auth_headers("")
        r = self._request("GET", f"{self.base}/v2/", headers=headers)
        if r.status_code == 401:
            raise self._rejected()
        if r.status_code != 200:
            raise self._fail(f"GET /v2/ with credentials answered {r.status_code}")

    def _rejected(self) -> RegistryError:
        assert self.creds is not None
        return self._fail(f"credentials of user {self.creds.username!r} (from {self.creds.source}) rejected: 401 Unauthorized")

    def _auth_headers(self, scope: str) -> dict[str, str]:
        if self.creds is None or self._challenge is None:
            return {}
        scheme, params = self._challenge
        if scheme == "basic":
            raw = f"{self.creds.username}:{self.creds.password}".encode()
            if not may_send_basic(self.base, self.registry if self.registry not in DOCKER_HUB else "registry-1.docker.io", self.insecure):
                raise self._fail(f"not sending credentials to {self.base}: Basic credentials go over https to the registry itself only")
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if scheme == "bearer":
            token = self._tokens.get(scope)
            if token is None:
                token = self._token(params, scope)
                self._tokens[scope] = token
            return {"Authorization": f"Bearer {token}"}
        raise self._fail(f"asks for an authentication scheme buildtool does not speak ({scheme})")

    def _token(self, params: dict[str, str], scope: str) -> str:
        assert self.creds is not None
        realm = params.get("realm")
        if not realm:
            raise self._fail("sent a Bearer challenge without a realm")
        problem = realm_problem(realm, self.insecure)
        if problem:
            raise self._fail(f"not sending credentials: {problem}")
        query = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope
        if self.creds.identity_token:
            r = self._request("POST", realm, data={"grant_type": "refresh_token", "refresh_token": self.creds.password,
                                                   "service": query["service"], "scope": scope, "client_id": "buildtool"})
        else:
            r = self._request("GET", realm, params=query, auth=(self.creds.username, self.creds.password))
        if r.status_code in (401, 403):
            raise self._rejected()
        if r.status_code != 200:
            raise self._fail(f"token endpoint answered {r.status_code}")
        body = r.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise self._fail("token endpoint answered without a token")
        return token

    def _get(self, path: str, scope: str, method: str = "GET", **kw: Any):
        if self._challenge is None:
            self.ping()
        extra = kw.pop("headers", {})
        r = self._request(method, f"{self.base}{path}", headers={**extra, **self._auth_headers(scope)}, **kw)
        if r.status_code == 401 and self.creds is not None:
            # An open /v2/ (no challenge at ping) or a new realm for this scope: answer this challenge once.
            challenge = _parse_challenge(r.headers.get("WWW-Authenticate", ""))
            if challenge[0] and challenge != self._challenge:
                self._challenge = challenge
                self._tokens.pop(scope, None)
                r = self._request(method, f"{self.base}{path}", headers={**extra, **self._auth_headers(scope)}, **kw)
        if r.status_code == 401:
            raise self._rejected() if self.creds is not None else self._fail("needs credentials")
        return r

    def tags(self, repository: str) -> list[str]:
        """Tags of `repository` (namespace/name, no registry); [] when the repository does not exist."""
        out: list[str] = []
        path = f"/v2/{repository}/tags/list?n=1000"
        while path:
            r = self._get(path, f"repository:{repository}:pull")
            if r.status_code == 404:
                return out
            if r.status_code != 200:
                raise self._fail(f"listing the tags of {repository} answered {r.status_code}")
            out += r.json().get("tags") or []
            link = r.headers.get("Link", "")
            m = re.match(r"<([^>]+)>", link)
            path = m.group(1) if m else ""
        return out

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        r = self._get(f"/v2/{repository}/manifests/{reference}", f"repository:{repository}:pull", method="HEAD",
                      headers={"Accept": MANIFEST_TYPES})
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise self._fail(f"HEAD manifest {repository}:{reference} answered {r.status_code}")
        return r.headers.get("Docker-Content-Digest")

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str]:
        """(raw manifest bytes, media type)."""
        r = self._get(f"/v2/{repository}/manifests/{reference}", f"repository:{repository}:pull", headers={"Accept": MANIFEST_TYPES})
        if r.status_code != 200:
            raise self._fail(f"GET manifest {repository}:{reference} answered {r.status_code}")
        return r.content, r.headers.get("Content-Type", "")

    def blob(self, repository: str, digest: str, chunk: Callable[[bytes], None] | None = None) -> bytes:
        """A blob's bytes (or, with `chunk`, streamed to it and b'' returned)."""
        r = self._get(f"/v2/{repository}/blobs/{digest}", f"repository:{repository}:pull", stream=chunk is not None)
        if r.status_code != 200:
            raise self._fail(f"GET blob {repository}@{digest} answered {r.status_code}")
        if chunk is None:
            return r.content
        for part in r.iter_content(1 << 20):
            chunk(part)
        return b""

    def repositories(self) -> list[str]:
        out: list[str] = []
        path = "/v2/_catalog?n=1000"
        while path:
            r = self._get(path, "registry:catalog:*")
            if r.status_code != 200:
                raise self._fail(f"GET /v2/_catalog answered {r.status_code}")
            out += r.json().get("repositories") or []
            m = re.match(r"<([^>]+)>", r.headers.get("Link", ""))
            path = m.group(1) if m else ""
        return out


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE.findall(rest))


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for needle, short in (("Connection refused", "connection refused"), ("Name or service not known", "unknown host"),
                          ("No route to host", "no route to host"), ("timed out", "timed out"),
                          ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed"), ("certificate verify failed", "certificate verify failed")):
        if needle in text:
            return short
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= 160 else first[:157] + "..."


# The engine side ---------------------------------------------------------------------------------


def engine_login(client: Any, registry: str, creds: Credentials | None) -> None:
    """Have the engine check the credentials against the registry (nothing is written to disk)."""
    if creds is None:
        return
    from docker.errors import APIError

    try:
        if creds.identity_token:
            return  # the engine takes identity tokens per request; the HTTP check already proved them
        client.login(creds.username, creds.password, registry=registry, reauth=True, dockercfg_path="/nonexistent/buildtool")
    except APIError as exc:
        text = str(exc.explanation or exc)
        if "401" in text or "unauthorized" in text.lower():
            raise RegistryError(mask(f"registry {registry}: the engine's login was refused for user {creds.username!r} "
                                     f"(from {creds.source}): {_first(text)}", creds)) from None
        raise RegistryError(mask(f"registry {registry}: the engine cannot log in: {_first(text)}", creds)) from None


def _first(text: str) -> str:
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= 200 else line[:197] + "..."


# The push stream -------------------------------------------------------------------------------


@dataclass
class PushResult:
    repository: str
    tag: str
    digest: str = ""
    size: int = 0
    layers: dict[str, str] = field(default_factory=dict)  # layer id -> last status (Pushed, Layer already exists, Mounted from ...)

    @property
    def pushed(self) -> int:
        return sum(1 for s in self.layers.values() if s == "Pushed")

    @property
    def existing(self) -> int:
        return sum(1 for s in self.layers.values() if s == "Layer already exists" or s.startswith("Mounted from"))


class PushError(RegistryError):
    pass


_DIGEST_LINE = re.compile(r"^(?P<tag>\S+): digest: (?P<digest>sha256:[0-9a-f]{64}) size: (?P<size>\d+)")
_FINAL = ("Pushed", "Layer already exists")


def read_push_stream(lines: Iterable[Any], repository: str, tag: str, registry: str, creds: Credentials | None = None,
                     on_event: Callable[[str], None] | None = None) -> PushResult:
    """Read the engine's push stream line by line (decoded dicts, or raw JSON bytes/str).

    The SDK does not raise on errors reported inside the stream: any `error`/`errorDetail`
    raises PushError here. The digest comes from the final `aux` record (or the
    "<tag>: digest: sha256:... size: N" status line). `on_event` gets the lines worth logging
    (layer results, the digest), already masked.
    """
    result = PushResult(repository, tag)
    for raw in lines:
        item = _decode(raw)
        if item is None:
            continue
        if "error" in item or "errorDetail" in item:
            detail = item.get("errorDetail") or {}
            message = (detail.get("message") if isinstance(detail, dict) else None) or item.get("error") or "unknown error"
            raise PushError(mask(f"registry {registry}: push of {repository}:{tag} failed: {_first(str(message))}", creds))
        aux = item.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            result.digest = aux["Digest"]
            result.size = int(aux.get("Size") or 0)
            continue
        status = str(item.get("status") or "")
        layer = item.get("id")
        if layer and (status in _FINAL or status.startswith("Mounted from")):
            result.layers[layer] = status
            if on_event:
                on_event(mask(f"{repository}:{tag} layer {layer}: {status}", creds))
        elif layer and status in ("Preparing", "Waiting") and layer not in result.layers:
            result.layers.setdefault(layer, "")
        m = _DIGEST_LINE.match(status)
        if m and not result.digest:
            result.digest, result.size = m.group("digest"), int(m.group("size"))
    if not result.digest:
        raise PushError(f"registry {registry}: push of {repository}:{tag} ended without a digest (the engine's stream stopped early)")
    unfinished = [layer for layer, status in result.layers.items() if not status]
    if unfinished:
        raise PushError(f"registry {registry}: push of {repository}:{tag} reported a digest but {len(unfinished)} layers never finished")
    if on_event:
        on_event(f"{repository}:{tag} digest {result.digest} size {result.size}")
    return result


def _decode(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        raw = raw.strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return {"status": raw}
        return value if isinstance(value, dict) else None
    return None
