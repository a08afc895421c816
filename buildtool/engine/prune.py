"""Keep the build host's disk bounded: drop superseded content-hash tags and old build cache.

A changed pin gives its subtree new content-hash tags; the old ones stay on the
engine until pruned. CI runs again and again on the same host, and a CUDA leaf
is several GB, so `buildtool prune` (or `make prune`) removes every local
`buildtool/<node>:h-<hash>` tag that the current plan no longer names, and
BuildKit cache older than --cache-age.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from ..errors import OperationError
from .client import buildkit_cli, docker_client

HASH_TAG = re.compile(r"^buildtool/[a-z0-9._-]+:h-[0-9a-f]{20}$")


@dataclass(frozen=True)
class PrunePlan:
    remove: tuple[str, ...]  # superseded content-hash tags
    keep: tuple[str, ...]  # tags the current plan names


def plan_prune(local_tags: list[str], current: set[str]) -> PrunePlan:
    """Only content-hash tags are candidates: bases, release tags and foreign images are never touched."""
    ours = sorted(t for t in local_tags if HASH_TAG.match(t))
    return PrunePlan(remove=tuple(t for t in ours if t not in current), keep=tuple(t for t in ours if t in current))


def local_tags(client) -> list[str]:
    return [tag for image in client.images.list(name="buildtool/*") for tag in image.tags]


def run_prune(current: set[str], *, dry_run: bool, cache_age: str | None) -> int:
    client = docker_client()
    plan = plan_prune(local_tags(client), current)
    for tag in plan.remove:
        print(f"{'would remove' if dry_run else 'remove'} {tag}")
        if not dry_run:
            # noprune=False: layers no other tag uses go too; images still used as parents stay.
            client.images.remove(tag)
    if cache_age and not dry_run:
        cmd = [buildkit_cli(), "builder", "prune", "-f", "--filter", f"until={cache_age}"]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise OperationError(f"`{' '.join(cmd)}` failed: {result.stderr.strip()[-300:]}")
        print(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "build cache: nothing to prune")
    print(f"{len(plan.remove)} superseded tag(s) {'to remove' if dry_run else 'removed'}, {len(plan.keep)} current tag(s) kept")
    return 0
