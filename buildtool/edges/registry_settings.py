"""Registry settings: where images go (host, namespace, scheme), the CA that verifies it, and the credentials.

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
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OperationError
from .credpolicy import mask_url

CERTS_D = Path(os.environ.get("BUILDTOOL_DOCKER_CERTS_D", "/etc/docker/certs.d"))
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
HUB_CONFIG_KEY = "https://index.docker.io/v1/"
LOCAL_NAMESPACE = "buildtool"  # local content-hash tags: buildtool/<node>:h-<hash20>
DEFAULT_HOST = "127.0.0.1:5000"
ENV_USER, ENV_PASSWORD, ENV_PASSWORD_FILE = "BUILDTOOL_REGISTRY_USER", "BUILDTOOL_REGISTRY_PASSWORD", "BUILDTOOL_REGISTRY_PASSWORD_FILE"




class RegistryError(OperationError):
    """A registry failure, already a one-line message naming the registry (secrets masked)."""




def split_ref(ref: str) -> tuple[str, str]:
    """'registry:5000/ns/name:tag' -> ('registry:5000/ns/name', 'tag'); no tag -> 'latest'.

    A digest reference 'name[:tag]@sha256:...' -> ('name', 'sha256:...'): the tag is
    dropped, the digest is what identifies the image (and what the Engine API wants).
    """
    if "@" in ref:
        name, digest = ref.split("@", 1)
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name = name[:colon]
        return name, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, "latest"


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
