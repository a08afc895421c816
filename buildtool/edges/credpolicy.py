"""Where credentials may go: one policy for the registry client (buildtool/edges/registry.py), the lock's mirrors and every printed URL.

- Basic credentials go only to the registry's own origin (scheme, host, port), and only over TLS; plain
  HTTP only to a loopback registry the site marks insecure (a test registry on 127.0.0.1).
- A bearer realm (the token endpoint, often another host) must be https, unless the site marks the
  registry insecure.
- A redirect to another origin, or from https to http, drops the Authorization header.
- URLs printed in messages have their user:password replaced by ***; an index URL with userinfo goes
  to pip through the environment (PIP_INDEX_URL), never through argv (which `ps` shows to everyone).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

DEFAULT_PORTS = {"http": 80, "https": 443}
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]*)@")


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


def host_port(host: str, scheme: str = "https") -> tuple[str, int | None]:
    """'registry:5000' -> ('registry', 5000); a bare host gets the scheme's default port."""
    _, h, p = origin(f"{scheme}://{host}")
    return h, p


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def may_send_basic(url: str, registry: str, insecure: bool) -> bool:
    """True when `url` is the registry's own origin and the channel is TLS (or an insecure loopback registry)."""
    scheme, host, port = origin(url)
    if (host, port) != host_port(registry, scheme):
        return False
    if scheme == "https":
        return True
    return scheme == "http" and insecure and is_loopback(host)


def realm_problem(realm: str, insecure: bool) -> str | None:
    """Why credentials must not go to this bearer realm, or None."""
    scheme, host, _ = origin(realm)
    if scheme == "https" and host:
        return None
    if scheme == "http" and host and insecure:
        return None
    if scheme == "http":
        return (f"its token realm {mask_url(realm)} is plain http; buildtool sends credentials there only when the site marks "
                "the registry insecure (site overlay `insecure: true` or BUILDTOOL_INSECURE_REGISTRY=1)")
    return f"its token realm {mask_url(realm)!r} is not an https URL"


def keeps_authorization(old_url: str, new_url: str) -> bool:
    """A redirect keeps the Authorization header only within one origin and never from https to http."""
    return origin(old_url) == origin(new_url)


def mask_url(text: str) -> str:
    """Every scheme://user:password@ in `text` becomes scheme://***@ (a user name alone is kept)."""
    def hide(m: re.Match[str]) -> str:
        userinfo = m.group("userinfo")
        if ":" not in userinfo:
            return m.group(0)
        return f"{m.group('scheme')}{userinfo.split(':', 1)[0]}:***@"
    return _USERINFO.sub(hide, text)


def pip_index_args(index: str) -> tuple[list[str], dict[str, str]]:
    """(pip arguments, environment additions) for an index URL: one with userinfo goes through PIP_INDEX_URL."""
    if "@" in urllib.parse.urlsplit(index).netloc:
        return [], {"PIP_INDEX_URL": index}
    return ["--index-url", index], {}
