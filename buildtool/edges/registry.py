"""The registry edge: one place for everything buildtool says to an image registry.

- Settings (`Registry`): host[:port], namespace, scheme (`http://` only when asked for, e.g.
  `--registry http://127.0.0.1:5000`), insecure (site overlay `insecure` / BUILDTOOL_INSECURE_REGISTRY),
  the registry CA and the credentials.
- The HTTP API v2 (`RegistryClient`, on requests: the docker SDK already depends on it, and its
  Session gives connection reuse for the parallel HEAD lookups, streamed blobs, and one hook,
  `should_strip_auth`, where credpolicy decides what a redirect keeps): ping, Basic/Bearer challenges
  (credpolicy.py decides where credentials may go), tags, manifest HEAD/GET, blobs, the catalog.
- The engine side (docker SDK): login check, pulling a content-hash tag and retagging it locally
  (`ensure_parent`), pushing a tag and reading the push stream (`push_image`, `push_tag`).

The registry CA, first match wins (the same for every command):
  1. /etc/docker/certs.d/<host:port>/ca.crt (where the Docker Engine itself looks, what
     `scripts/registry.sh` installs; $BUILDTOOL_DOCKER_CERTS_D moves the folder), so the lookups
     trust exactly what the engine's pushes and pulls trust;
  2. $BUILDTOOL_REGISTRY_CA;
  3. the system trust store.

Credentials, by the site's `credentials` (BUILDTOOL_CREDENTIALS):
  - `env` (default): $BUILDTOOL_REGISTRY_USER with $BUILDTOOL_REGISTRY_PASSWORD (or the file named by
    $BUILDTOOL_REGISTRY_PASSWORD_FILE; the variable wins over the file); a user without a password,
    or the reverse, is an error; when neither is set, the Docker config as below;
  - `docker-config`: the Docker config only ($DOCKER_CONFIG/config.json, else ~/.docker/config.json):
    credHelpers[<host>], else credsStore (`docker-credential-<helper> get`), else auths[<host>]
    (identitytoken, else auth, else username/password);
  - none found: anonymous (anonymous bearer tokens are fetched when a registry offers them).

Secrets never leave this module in clear text: `Credentials` and `Registry` hide the password from
repr, and every message that could carry one goes through `mask()` (the password and its base64
`user:password` forms become `***`, URLs' user:password become user:***).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.client import split_ref
from ..errors import OperationError
from .credpolicy import keeps_authorization, mask_url, may_send_basic, realm_problem

CERTS_D = Path(os.environ.get("BUILDTOOL_DOCKER_CERTS_D", "/etc/docker/certs.d"))
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
HUB_CONFIG_KEY = "https://index.docker.io/v1/"
MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))
LOCAL_NAMESPACE = "buildtool"  # local content-hash tags: buildtool/<node>:h-<hash20>
DEFAULT_HOST = "127.0.0.1:5000"
DEFAULT_LOOKUPS = 8  # HEAD requests in flight
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


def docker_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("DOCKER_CONFIG") or str(Path(env.get("HOME") or Path.home()) / ".docker")
    return Path(base) / "config.json"


def load_credentials(registry: str, source: str, env: Mapping[str, str] | None = None,
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


# Settings --------------------------------------------------------------------------------------


def ca_for(registry: str, env: Mapping[str, str] | None = None) -> str | bool:
    """What to verify the registry's TLS certificate with (see the module docstring): certs.d's ca.crt,
    else $BUILDTOOL_REGISTRY_CA, else True (the system trust store)."""
    env = os.environ if env is None else env
    ca = CERTS_D / registry / "ca.crt"
    if ca.is_file():
        return str(ca)
    if env.get("BUILDTOOL_REGISTRY_CA"):
        return env["BUILDTOOL_REGISTRY_CA"]
    return True


@dataclass(frozen=True)
class Registry:
    """Where images go and how to reach it: the one settings object of every registry caller."""

    host: str  # host[:port], no scheme
    namespace: str = LOCAL_NAMESPACE
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    ca: Path | None = None  # None: the system trust store
    scheme: str = "https"
    insecure: bool = False  # plain HTTP allowed for credentials (loopback only) and for bearer realms
    source: str = ""  # where the credentials came from, for messages
    identity_token: bool = False  # password is an OAuth refresh token

    @classmethod
    def resolve(cls, host: str, namespace: str = LOCAL_NAMESPACE, *, insecure: bool = False, credentials: str = "env",
                env: Mapping[str, str] | None = None) -> Registry:
        """Settings for `host` ("http://" in front for plain HTTP): the CA and the credentials by the documented precedence."""
        env = dict(os.environ if env is None else env)
        scheme = "https"
        if "://" in host:
            scheme, host = host.split("://", 1)
        host = host.rstrip("/")
        ca = ca_for(host, env)
        return cls.with_credentials(host, load_credentials(host, credentials, env), namespace=namespace,
                                    ca=None if ca is True else Path(str(ca)), scheme=scheme, insecure=insecure)

    @classmethod
    def with_credentials(cls, host: str, creds: Credentials | None, **kw: Any) -> Registry:
        if creds is None:
            return cls(host=host, **kw)
        return cls(host=host, username=creds.username, password=creds.password, source=creds.source,
                   identity_token=creds.identity_token, **kw)

    @classmethod
    def from_site(cls, site: Any, host: str | None = None, env: Mapping[str, str] | None = None) -> Registry:
        """The site overlay's registry (BUILDTOOL_* variables already applied), or `host` instead of its host."""
        return cls.resolve(host or site.registry, site.namespace, insecure=site.insecure, credentials=site.credentials, env=env)

    @classmethod
    def from_env(cls, host: str | None = None, namespace: str | None = None, env: Mapping[str, str] | None = None,
                 insecure: bool | None = None, credentials: str | None = None) -> Registry:
        """Without a site overlay: BUILDTOOL_REGISTRY, BUILDTOOL_NAMESPACE, BUILDTOOL_INSECURE_REGISTRY, BUILDTOOL_CREDENTIALS."""
        env = dict(os.environ if env is None else env)
        if insecure is None:
            insecure = env.get("BUILDTOOL_INSECURE_REGISTRY", "") in ("1", "true")
        return cls.resolve(host or env.get("BUILDTOOL_REGISTRY") or DEFAULT_HOST, namespace or env.get("BUILDTOOL_NAMESPACE") or LOCAL_NAMESPACE,
                           insecure=insecure, credentials=credentials or env.get("BUILDTOOL_CREDENTIALS") or "env", env=env)

    @property
    def creds(self) -> Credentials | None:
        if not (self.username or self.password):
            return None
        return Credentials(self.username or "", self.password or "", self.source, self.identity_token)

    @property
    def api_host(self) -> str:
        return "registry-1.docker.io" if self.host in DOCKER_HUB else self.host

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.api_host}"

    def repository(self, local_tag: str) -> tuple[str, str]:
        """'buildtool/<node>:h-x' -> ('<ns>/<node>', 'h-x'), the registry-side repository and tag."""
        repo, tag = split_ref(local_tag)
        name = repo.split("/", 1)[1] if repo.startswith(LOCAL_NAMESPACE + "/") else repo
        return f"{self.namespace}/{name}", tag

    def remote_ref(self, local_tag: str) -> str:
        repo, tag = self.repository(local_tag)
        return f"{self.host}/{repo}:{tag}"

    def auth_config(self) -> dict[str, str] | None:
        """For the docker SDK's pull (the engine talks to the registry); None when anonymous."""
        creds = self.creds
        return None if creds is None else {**creds.auth_config(), "serveraddress": self.host}


# The registry's HTTP API -----------------------------------------------------------------------


_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def _session() -> Any:
    """A requests Session that never uses proxies or ~/.netrc and whose redirects keep Authorization
    only within one origin (credpolicy.keeps_authorization; requests alone keeps it on http -> https)."""
    import requests

    class SameOriginAuth(requests.Session):
        def should_strip_auth(self, old_url: str, new_url: str) -> bool:
            return not keeps_authorization(old_url, new_url)

    session = SameOriginAuth()
    session.trust_env = False
    return session


class RegistryClient:
    """Registry HTTP API v2: ping, authenticate (Basic or Bearer token), tags, manifests, blobs.

    `registry` is a Registry, or a bare host[:port] with `creds` (`verify`: a CA file, or False).
    Without a ping first, a request with credentials sends Basic (where credpolicy allows it) and
    answers the registry's challenge once; after a ping, the challenge it learned is used.
    """

    def __init__(self, registry: Registry | str, creds: Credentials | None = None, verify: str | bool | None = None, timeout: float = 15.0,
                 insecure: bool = False) -> None:
        if isinstance(registry, str):
            ca = ca_for(registry) if verify is None else verify
            registry = Registry.with_credentials(registry, creds, insecure=insecure)
        else:
            ca = (str(registry.ca) if registry.ca else True) if verify is None else verify
        self.settings = registry
        self.registry = registry.host
        self.insecure = registry.insecure
        self.creds = registry.creds
        self.base = registry.base
        self.timeout = timeout
        self.session = _session()
        self.session.verify = ca
        self._tokens: dict[str, str] = {}
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._lock = threading.Lock()
        self.requests = 0

    def _fail(self, what: str) -> RegistryError:
        return RegistryError(mask(f"registry {self.registry}: {what}", self.creds))

    def _request(self, method: str, url: str, **kw: Any):
        import requests

        with self._lock:
            self.requests += 1
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

    def _basic(self) -> dict[str, str]:
        assert self.creds is not None
        if not may_send_basic(self.base, self.settings.api_host, self.insecure):
            raise self._fail(f"not sending credentials to {self.base}: Basic credentials go over https to the registry itself only "
                             "(plain http only to a loopback registry marked insecure: site overlay `insecure: true` or "
                             "BUILDTOOL_INSECURE_REGISTRY=1)")
        raw = f"{self.creds.username}:{self.creds.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def _auth_headers(self, scope: str) -> dict[str, str]:
        if self._challenge is None:
            # No challenge seen yet: Basic up front (one request per lookup against an htpasswd registry).
            return self._basic() if self.creds is not None and not self.creds.identity_token else {}
        scheme, params = self._challenge
        if scheme == "basic":
            return self._basic() if self.creds is not None else {}
        if scheme == "bearer":
            with self._lock:
                token = self._tokens.get(scope)
            if token is None:
                token = self._token(params, scope)
                with self._lock:
                    self._tokens[scope] = token
            return {"Authorization": f"Bearer {token}"}
        if self.creds is None:
            return {}
        raise self._fail(f"asks for an authentication scheme buildtool does not speak ({scheme})")

    def _token(self, params: dict[str, str], scope: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise self._fail("sent a Bearer challenge without a realm")
        problem = realm_problem(realm, self.insecure)
        if problem and self.creds is not None:
            raise self._fail(f"not sending credentials: {problem}")
        query = {"service": params.get("service", "")}
        if scope:
            query["scope"] = scope
        if self.creds is None:
            r = self._request("GET", realm, params=query)
        elif self.creds.identity_token:
            r = self._request("POST", realm, data={"grant_type": "refresh_token", "refresh_token": self.creds.password,
                                                   "service": query["service"], "scope": scope, "client_id": "buildtool"})
        else:
            r = self._request("GET", realm, params=query, auth=(self.creds.username, self.creds.password))
        if r.status_code in (401, 403):
            raise self._rejected() if self.creds is not None else self._fail("needs credentials for a token")
        if r.status_code != 200:
            raise self._fail(f"token endpoint answered {r.status_code}")
        try:
            body = r.json()
        except ValueError:
            raise self._fail("token endpoint answered something that is not JSON") from None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise self._fail("token endpoint answered without a token")
        return str(token)

    def _get(self, path: str, scope: str, method: str = "GET", **kw: Any):
        extra = kw.pop("headers", {})
        seen = self._challenge
        auth = self._auth_headers(scope)
        r = self._request(method, f"{self.base}{path}", headers={**extra, **auth}, **kw)
        if r.status_code == 401:
            # No challenge yet, or a new realm for this scope: answer this challenge once.
            challenge = _parse_challenge(r.headers.get("WWW-Authenticate", ""))
            sent_basic = auth.get("Authorization", "").startswith("Basic ")
            if challenge[0] and challenge != seen and not (challenge[0] == "basic" and sent_basic):
                self._challenge = challenge
                with self._lock:
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

    def _head_manifest(self, repository: str, reference: str):
        r = self._get(f"/v2/{repository}/manifests/{urllib.parse.quote(reference, safe=':')}", f"repository:{repository}:pull",
                      method="HEAD", headers={"Accept": MANIFEST_TYPES})
        if r.status_code not in (200, 404):
            raise self._fail(f"HEAD manifest {repository}:{reference} answered {r.status_code}")
        return r

    def manifest_exists(self, repository: str, reference: str) -> bool:
        """True on 200, False on 404; RegistryError on anything else."""
        return self._head_manifest(repository, reference).status_code == 200

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        r = self._head_manifest(repository, reference)
        return None if r.status_code == 404 else r.headers.get("Docker-Content-Digest")

    def existing(self, local_tags: Iterable[str], jobs: int = DEFAULT_LOOKUPS) -> set[str]:
        """The subset of `local_tags` (buildtool/<node>:h-...) whose manifest the registry has."""
        tags = sorted(set(local_tags))
        if not tags:
            return set()

        def probe(t: str) -> tuple[str, bool]:
            return t, self.manifest_exists(*self.settings.repository(t))

        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(tags)))) as pool:
            return {t for t, ok in pool.map(probe, tags) if ok}

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


# Pull and push through the engine ----------------------------------------------------------------


def ensure_parent(client: Any, local_tag: str, registry: Registry) -> str:
    """Make `local_tag` (buildtool/<node>:h-...) exist on the engine: pull it from the registry by
    content-hash tag and retag it locally. Returns the image id. No-op when it is already local."""
    from docker.errors import APIError, ImageNotFound, NotFound

    from ..engine import client as engine

    existing = engine.image_id(client, local_tag)
    if existing:
        return existing
    ref = registry.remote_ref(local_tag)
    repo, tag = split_ref(ref)
    creds = registry.creds
    try:
        for ev in client.api.pull(repo, tag=tag, stream=True, decode=True, auth_config=registry.auth_config()):
            if isinstance(ev, dict) and ev.get("error"):
                raise RegistryError(mask(f"pull {ref}: {_first(str(ev['error']))}", creds))
        image = client.images.get(ref)
    except (APIError, ImageNotFound, NotFound) as exc:
        raise RegistryError(mask(f"pull {ref}: {_first(str(getattr(exc, 'explanation', None) or exc))}", creds)) from None
    engine.tag(client, image.id, local_tag)
    return image.id


def push_image(client: Any, image: str, repository: str, tag: str, registry: str, creds: Credentials | None,
               on_event: Callable[[str], None] | None = None) -> PushResult:
    """Tag `image` (an id or a local ref) as `repository:tag` (<registry>/<path>) and push it; the stream
    is read by read_push_stream (an error in it raises PushError). RegistryError, masked, otherwise."""
    from docker.errors import APIError

    try:
        client.api.tag(image, repository, tag, force=True)
        stream = client.api.push(repository, tag, stream=True, decode=True, auth_config=creds.auth_config() if creds else None)
        return read_push_stream(stream, repository, tag, registry, creds, on_event=on_event)
    except APIError as exc:
        raise RegistryError(mask(f"registry {registry}: push of {repository}:{tag} failed: {exc.explanation or exc}", creds)) from None


def push_tag(client: Any, local_tag: str, registry: Registry, lookups: RegistryClient | None = None) -> str:
    """Push a local content-hash tag to the registry under the same name; returns the pushed digest,
    or "present" when the registry already has that content-hash tag (nothing is pushed)."""
    from ..engine import client as engine

    if (lookups or RegistryClient(registry)).manifest_exists(*registry.repository(local_tag)):
        return "present"  # content-addressed: the registry's copy is this node already
    image = engine.image_id(client, local_tag)
    if not image:
        raise RegistryError(f"push {local_tag}: no such local image")
    repo, tag = split_ref(registry.remote_ref(local_tag))
    return push_image(client, image, repo, tag, registry.host, registry.creds).digest
