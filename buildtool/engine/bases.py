"""`buildtool bases`: make every OS base an image builds FROM, as `Base.local_ref`.

For each base, in order: the local image is already there (present); else pull the
digest-pinned reference and tag it (pulled); else bootstrap it from a package mirror
with debootstrap and `docker import` it (bootstrapped); else fail with the reasons.

This module decides and pulls; bootstrap.py plans (pure: `BootstrapPlan`, unit-tested without an
engine) and runs the bootstrap; base_results.py records what was made.

Env: BUILDTOOL_OFFLINE=1 skips pulls; BUILDTOOL_PULL_TIMEOUT (seconds, default 20)
bounds the wait for each pull progress message; BUILDTOOL_TMPDIR: see bootstrap.py.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..config.model import Base, Config
from ..errors import OperationError
from . import client as engine
from .base_results import BaseResult, render_table, save_state
from .bootstrap import BootstrapPlan, bootstrap_base, bootstrap_plan, one_line, progress, recipe_record
from .interrupts import sigterm_as_interrupt


def offline(env: dict[str, str] | os._Environ[str]) -> bool:
    return env.get("BUILDTOOL_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def pull_timeout(env: dict[str, str] | os._Environ[str]) -> int:
    try:
        return max(1, int(env.get("BUILDTOOL_PULL_TIMEOUT", "20")))
    except ValueError:
        return 20


# --------------------------------------------------------------------------- entry point


def run_bases(config: Config, bases: list[Base], force: bool = False, output_format: str = "table", accept_drift: bool = False,
              locked_manifests: dict[str, tuple[str, ...]] | None = None, results_out: list[BaseResult] | None = None) -> int:
    """Make every base in `bases`; print progress (stderr) and a summary (stdout). 0 when all are ready."""
    client = engine.docker_client()
    root = Path(config.path).resolve().parent
    log_dir = root / "logs" / "bases"
    state_path = root / ".state" / "bases.json"
    results: list[BaseResult] = []
    with sigterm_as_interrupt():
        for base in bases:
            plan = bootstrap_plan(base, config.site.apt_mirror)
            result = BaseResult(base=base.key, ref=base.local_ref, recipe=recipe_record(base, plan))
            started = time.monotonic()
            try:
                _make_base(client, base, plan, force, result, log_dir, accept_drift, (locked_manifests or {}).get(base.key, ()))
            except OperationError as exc:
                result.status = "failed"
                result.detail = str(exc)
                progress(f"{base.key}: failed: {exc}")
            result.seconds = time.monotonic() - started
            if result.image_id:
                result.size = engine.image_size(client, result.image_id)
            results.append(result)
            save_state(state_path, results)
    if results_out is not None:
        results_out.extend(results)
    if output_format == "json":
        print(json.dumps([r.row() for r in results], indent=2, sort_keys=True))
    elif output_format == "quiet":  # called by `buildtool lock`: the table goes with the progress lines
        print(render_table(results), file=sys.stderr)
    else:
        print(render_table(results))
        for r in results:
            if not r.ok:
                print(f"error: {r.detail}", file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1


def _make_base(client: Any, base: Base, plan: BootstrapPlan | None, force: bool, result: BaseResult, log_dir: Path,
               accept_drift: bool = False, locked_manifest: tuple[str, ...] = ()) -> None:
    ref = base.local_ref
    if not force:
        existing = engine.image_id(client, ref)
        if existing:
            result.status, result.image_id, result.detail = "present", existing, "local image"
            return
    # A locked, bootstrapped base is what its manifest says: an upstream image of the same release
    # (debian:bookworm-slim) holds other packages, so it never stands in for it.
    # Another architecture is always bootstrapped: a local copy of the digest-pinned reference is the engine's own architecture.
    foreign = base.arch != "amd64" and plan is not None
    pull_error = "" if plan is not None and (base.content or foreign) else _try_pull(client, base, result, have_recipe=plan is not None)
    if result.status == "pulled":
        return
    if plan is not None and base.content and _from_site_registry(client, base, result):
        return
    if plan is None:
        raise OperationError(f"base {base.key} cannot be made here: pull of {base.image} failed ({pull_error}) and it has no bootstrap recipe")
    bootstrap_base(client, plan, result, log_dir, base, accept_drift, locked_manifest)
    if pull_error:
        result.detail = f"{result.detail}; pull skipped/failed: {pull_error}"


def _try_pull(client: Any, base: Base, result: BaseResult, have_recipe: bool) -> str:
    """Pull base.image and tag it as base.local_ref; '' on success, else the reason."""
    ref = base.local_ref
    # A digest-pinned image already on the engine (docker load, an earlier pull) needs no network.
    local = engine.image_id(client, _digest_ref(base.image))
    if local:
        engine.tag(client, local, ref)
        result.status, result.image_id, result.detail = "pulled", local, f"tagged from local {base.image}"
        progress(f"{base.key}: {base.image} is already local; tagged {ref}")
        return ""
    if offline(os.environ) and have_recipe:
        return "BUILDTOOL_OFFLINE=1"
    timeout = pull_timeout(os.environ)
    progress(f"{base.key}: pulling {base.image} ...", end="")
    started = time.monotonic()
    try:
        pulled = _pull(base.image, timeout)
    except OperationError as exc:
        progress(f" failed ({time.monotonic() - started:.1f} s)")
        return str(exc)
    engine.tag(client, pulled, ref)
    result.status, result.image_id, result.detail = "pulled", pulled, f"pulled {base.image}"
    progress(f" {time.monotonic() - started:.0f} s")
    return ""


def _from_site_registry(client: Any, base: Base, result: BaseResult) -> bool:
    """A base another runner already made and pushed (by its content tag: recipe + manifest digest) is pulled
    instead of bootstrapped again, so runners share the same bytes. Only where $BUILDTOOL_REGISTRY names a registry."""
    if not os.environ.get("BUILDTOOL_REGISTRY") or offline(os.environ):
        return False
    from ..edges.registry import Registry
    from .registry_transfer import ensure_parent

    try:
        registry = Registry.from_env()
        image = ensure_parent(client, base.local_ref, registry)
    except OperationError as exc:
        progress(f"{base.key}: not in the site registry ({exc}); bootstrapping")
        return False
    result.status, result.image_id, result.detail = "pulled", image, f"pulled {registry.remote_ref(base.local_ref)} (its content tag)"
    progress(f"{base.key}: pulled from {registry.host} by its content tag")
    return True


def _digest_ref(image: str) -> str:
    repo, digest = engine.split_ref(image)
    return f"{repo}@{digest}" if digest.startswith("sha256:") else image


def _pull(image: str, timeout: int) -> str:
    """Pull with a client whose every read waits at most `timeout` s; the image id."""
    import requests
    from docker.errors import APIError, DockerException

    client = engine.docker_client(timeout=timeout)
    repo, tag = engine.split_ref(image)
    try:
        for event in client.api.pull(repo, tag=tag, stream=True, decode=True):
            if isinstance(event, dict) and event.get("error"):
                raise OperationError(one_line(event["error"]))
        found = engine.image_id(client, _digest_ref(image))
    except APIError as exc:
        raise OperationError(one_line(exc.explanation or str(exc))) from exc
    except (requests.exceptions.RequestException, DockerException) as exc:
        raise OperationError(f"no answer within {timeout} s" if "timed out" in str(exc).lower() else one_line(str(exc))) from exc
    finally:
        client.close()
    if not found:
        raise OperationError(f"the engine reported no error but {image} is not there after the pull")
    return found
