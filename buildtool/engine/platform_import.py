"""A root filesystem -> an image of another architecture than the engine's (FROM scratch + ADD, with BuildKit).

`docker import --platform linux/arm64` on Debian's engine 20.10 records amd64 whatever the rootfs holds; a
BuildKit build `FROM scratch` + `ADD rootfs.tar /` with `--platform` writes the architecture into the image's
config (measured: 6 s for a bookworm minbase). The Dockerfile is buildtool's own: the import's changes (ENV,
CMD, LABEL lines of BootstrapPlan.import_changes) become its instructions, each already a fixed grammar.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import TextIO

from ..errors import OperationError
from . import client as engine


def import_dockerfile(changes: list[str]) -> str:
    return "FROM scratch\nADD rootfs.tar /\n" + "".join(change + "\n" for change in changes)


def import_rootfs(target: str, changes: list[str], platform: str, log: TextIO, log_path: Path, what: str) -> str:
    """Tar `target` into a build context, build it for `platform`; the image id."""
    with tempfile.TemporaryDirectory(prefix="buildtool-import-", dir=os.path.dirname(target)) as ctx:
        tarball = os.path.join(ctx, "rootfs.tar")
        tar_cmd = ["tar", "--numeric-owner", "--xattrs", "--sort=name", "-C", target, "-cf", tarball, "."]
        log.write("$ " + " ".join(tar_cmd) + "\n")
        log.flush()
        done = subprocess.run(tar_cmd, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise OperationError(f"{what}: tar of the root filesystem failed (exit {done.returncode}); see {log_path}")
        Path(ctx, "Dockerfile").write_text(import_dockerfile(changes), encoding="utf-8")
        iid = os.path.join(ctx, "iid")
        argv = [engine.buildkit_cli(), "build", "--progress=plain", "--platform", platform, "--iidfile", iid, ctx]
        log.write("$ " + " ".join(argv) + "\n")
        log.flush()
        env = {**os.environ, "DOCKER_BUILDKIT": "1"}
        done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise OperationError(f"{what}: building the {platform} image FROM scratch failed (exit {done.returncode}); see {log_path}")
        image = Path(iid).read_text(encoding="utf-8").strip() if os.path.exists(iid) else ""
    if not image.startswith("sha256:"):
        raise OperationError(f"{what}: the {platform} import wrote no image id; see {log_path}")
    return image
