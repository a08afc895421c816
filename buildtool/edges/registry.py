"""The registry's HTTP API v2, the one HTTP client buildtool has for registries.

`RegistryClient` is built on requests (the docker SDK already depends on it, and its Session gives
connection reuse for the parallel HEAD lookups, streamed blobs, and one hook, `should_strip_auth`,
where credpolicy decides what a redirect keeps): ping, Basic/Bearer challenges (credpolicy.py
decides where credentials may go), tags, manifest HEAD/GET, blobs, the catalog.
Settings, CA and credentials: registry_settings.py (re-exported here, the edge's one import).
Pulling and pushing images through the Docker Engine: engine/registry_transfer.py.
"""

from __future__ import annotations

import base64
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .credpolicy import keeps_authorization, may_send_basic, realm_problem
from .registry_settings import (  # noqa: F401  (the registry edge's public names, importable from here)
    CERTS_D,
    DEFAULT_HOST,
    LOCAL_NAMESPACE,
    Credentials,
    Registry,
    RegistryError,
    ca_for,
    load_credentials,
    mask,
    split_ref,
)

MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))
DEFAULT_LOOKUPS = 8  # HEAD requests in flight


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
