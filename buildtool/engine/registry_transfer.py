"""Pulling and pushing images through the Docker Engine (docker SDK): the engine side of the registry edge.

The engine talks to the registry itself (its certs.d, the auth config we hand it per request); this
module checks the login, pulls a content-hash tag and retags it locally (`ensure_parent`), pushes a
tag and reads the push stream, where the SDK reports errors without raising (`read_push_stream`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..edges.registry import Credentials, Registry, RegistryClient, RegistryError, mask, split_ref
from . import client as engine

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

    if (lookups or RegistryClient(registry)).manifest_exists(*registry.repository(local_tag)):
        return "present"  # content-addressed: the registry's copy is this node already
    image = engine.image_id(client, local_tag)
    if not image:
        raise RegistryError(f"push {local_tag}: no such local image")
    repo, tag = split_ref(registry.remote_ref(local_tag))
    return push_image(client, image, repo, tag, registry.host, registry.creds).digest
