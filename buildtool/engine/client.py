"""The Docker Engine edge: an SDK client, image lookups and tags, and the CLI that speaks BuildKit.

The SDK is for inspect, tag, run, push; BuildKit builds go through a docker CLI
(`DOCKER_BUILDKIT=1 docker build`), see `buildkit_cli()`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from ..edges.registry_settings import split_ref  # noqa: F401  (engine callers tag and pull by reference)
from ..errors import OperationError

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Debian's docker.io client (20.10) has BuildKit built in. A newer client without
# the buildx plugin (Docker 28 in /usr/local/bin on the build hosts) talks to the
# 20.10 engine fine (API negotiated down to 1.41) but refuses DOCKER_BUILDKIT=1 builds.
DEBIAN_CLI = "/usr/bin/docker"


def engine_host() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def docker_client(timeout: int | None = None) -> Any:
    """A docker SDK client that has answered a ping; OperationError when no engine answers."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise OperationError("the docker Python SDK is not installed (pip install docker)") from exc
    try:
        kwargs: dict[str, Any] = {"timeout": timeout} if timeout else {}
        client = docker.from_env(**kwargs)
        client.ping()
    except (DockerException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OperationError(f"no Docker Engine answers at {engine_host()} ({_short(reason)}); run `make engine`") from exc
    return client


def image_exists(client: Any, ref: str) -> bool:
    from docker.errors import ImageNotFound, NotFound

    try:
        client.images.get(ref)
    except (ImageNotFound, NotFound):
        return False
    return True


def image_id(client: Any, ref: str) -> str | None:
    from docker.errors import ImageNotFound, NotFound

    try:
        return client.images.get(ref).id
    except (ImageNotFound, NotFound):
        return None


def image_size(client: Any, image_id: str) -> int | None:
    """The image's size in bytes as the engine reports it; None when it cannot say."""
    try:
        return int(client.api.inspect_image(image_id).get("Size") or 0) or None
    except Exception:  # noqa: BLE001 - a size is nice to have, never worth failing for
        return None


def tag(client: Any, image_id: str, ref: str) -> None:
    """Point `ref` (repo:tag) at `image_id`."""
    from docker.errors import APIError

    repo, tag_ = split_ref(ref)
    try:
        ok = client.api.tag(image_id, repo, tag_, force=True)
    except APIError as exc:
        raise OperationError(f"cannot tag {image_id} as {ref}: {exc.explanation or exc}") from exc
    if ok is False:
        raise OperationError(f"cannot tag {image_id} as {ref}")


def buildkit_cli() -> str:
    """Path of a docker CLI that can run `DOCKER_BUILDKIT=1 docker build`.

    $BUILDTOOL_DOCKER_CLI when set; else Debian's /usr/bin/docker (20.10, BuildKit
    built in); else a `docker` on PATH that has the buildx plugin.
    """
    forced = os.environ.get("BUILDTOOL_DOCKER_CLI")
    if forced:
        return forced
    if os.access(DEBIAN_CLI, os.X_OK):
        return DEBIAN_CLI
    found = shutil.which("docker")
    if found and subprocess.run([found, "buildx", "version"], capture_output=True).returncode == 0:
        return found
    raise OperationError("no docker CLI that speaks BuildKit: want Debian's /usr/bin/docker (apt-get install docker.io) "
                         "or a client with the buildx plugin; run `make engine`")


def docker_cli() -> str:
    """Path of a docker CLI for plain commands (import, run): the BuildKit one when there is one."""
    try:
        return buildkit_cli()
    except OperationError:
        found = shutil.which("docker")
        if not found:
            raise OperationError("no docker CLI found; run `make engine`") from None
        return found


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def local_tags(client: Any) -> dict[str, int]:
    """Every local repo:tag -> image size, in one API call."""
    return tag_sizes(client.api.images())


def tag_sizes(images: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for image in images:
        for t in image.get("RepoTags") or ():
            out[t] = image.get("Size")
    return out


def local_tags_quick() -> dict[str, int] | None:
    """The same in one raw request on the engine's unix socket, without importing the SDK (a no-op
    run stays well under a second); None when that is not possible (the SDK path then reports why)."""
    import http.client
    import socket

    host = engine_host()
    if not host.startswith("unix://"):
        return None

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(self.timeout)
            self.sock.connect(host[len("unix://"):])

    try:
        conn = UnixConnection("localhost", timeout=30)
        conn.request("GET", "/images/json")
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        if resp.status != 200:
            return None
        return tag_sizes(json.loads(body))
    except (OSError, ValueError, http.client.HTTPException):
        return None
