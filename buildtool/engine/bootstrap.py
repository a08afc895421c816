"""Bootstrapping an OS base: what to run (debootstrap argv, sources.list, import changes; pure) and running it into an image.

debootstrap fills a root filesystem from a package mirror (Ubuntu's with a keyring verified through
edges/archive_keyring), the filesystem is scrubbed of caches and host leftovers, its package manifest is
recorded, and `tar | docker import` makes the image, tagged by what it contains.

Env: BUILDTOOL_TMPDIR is where root filesystems are bootstrapped (default /var/tmp).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from ..config.model import Base
from ..errors import OperationError
from ..lock.format import manifest_digest
from ..runlog import tail_lines
from . import client as engine
from .base_results import BaseResult
from .progress import human_size

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LABEL_KEY = "io.buildtool.base.key"
LABEL_RECIPE = "io.buildtool.base.recipe"
LABEL_SUITE = "io.buildtool.base.suite"
LABEL_MIRROR = "io.buildtool.base.mirror"

# Removed from the root filesystem before import: caches, logs and host leftovers
# that only make the image larger and less reproducible.
SCRUB_GLOBS = (
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/archives/partial/*",
    "var/cache/apt/*.bin",
    "var/lib/apt/lists/*",
    "var/log/bootstrap.log",
    "var/log/apt/*",
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "etc/machine-id",
    "var/lib/dbus/machine-id",
)
# Emptied (kept as files): the engine bind-mounts its own at run time.
EMPTY_FILES = ("etc/resolv.conf", "etc/hostname")


# --------------------------------------------------------------------------- plan (pure)


@dataclass(frozen=True)
class BootstrapPlan:
    key: str
    tool: str
    suite: str
    mirror: str  # the mirror actually used (site overlay wins over the recipe)
    recipe_mirror: str
    variant: str
    components: tuple[str, ...]
    recipe_id: str
    local_ref: str
    family: str = "debian"
    arch: str = "amd64"  # Debian architecture; another than the host's runs debootstrap under qemu-user-static

    def command(self, target: str, keyring: str | None = None, script: str | None = None) -> list[str]:
        """debootstrap's argv; `keyring` verifies the archive's Release files (never --no-check-gpg), `script`
        stands in where the host's debootstrap has no script for the suite (bookworm's has no noble)."""
        if self.tool != "debootstrap":
            raise OperationError(f"base {self.key}: bootstrap tool {self.tool!r} is not supported here (only debootstrap)")
        argv = ["debootstrap", f"--variant={self.variant}", f"--components={','.join(self.components)}"]
        if self.arch != "amd64":
            argv.append(f"--arch={self.arch}")
        if keyring:
            argv.append(f"--keyring={keyring}")
        argv += [self.suite, target, self.mirror]
        return argv + ([script] if script else [])

    def sources_list(self) -> str:
        return f"deb {self.mirror} {self.suite} {' '.join(self.components)}\n"

    def import_changes(self) -> list[str]:
        return [
            f"ENV PATH={DEFAULT_PATH}",
            'CMD ["/bin/bash"]',
            f"LABEL {LABEL_KEY}={self.key}",
            f"LABEL {LABEL_RECIPE}={self.recipe_id}",
            f"LABEL {LABEL_SUITE}={self.suite}",
            f"LABEL {LABEL_MIRROR}={self.mirror}",
        ]

    def labels(self) -> dict[str, str]:
        return {LABEL_KEY: self.key, LABEL_RECIPE: self.recipe_id, LABEL_SUITE: self.suite, LABEL_MIRROR: self.mirror}


def bootstrap_plan(base: Base, apt_mirror: str | None = None) -> BootstrapPlan | None:
    """What to run to bootstrap `base`; None when it has no bootstrap recipe."""
    boot = base.bootstrap
    if boot is None:
        return None
    return BootstrapPlan(
        key=base.key,
        tool=boot.tool,
        suite=boot.suite,
        mirror=apt_mirror.rstrip("/") if apt_mirror else boot.mirror,
        recipe_mirror=boot.mirror,
        variant=boot.variant,
        components=tuple(boot.components),
        recipe_id=base.recipe_id,
        local_ref=base.local_ref,
        family=base.family,
        arch=base.arch,
    )


def rootfs_manifest(target: str) -> tuple[str, ...]:
    """'name version arch' of every installed package in a root filesystem (its dpkg status file),
    the same lines `dpkg-query` prints in the resolver container."""
    out = []
    with open(os.path.join(target, "var/lib/dpkg/status"), encoding="utf-8", errors="replace") as fh:
        for stanza in fh.read().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
            if fields.get("Status") == "install ok installed" and "Package" in fields:
                out.append(f"{fields['Package']} {fields['Version']} {fields.get('Architecture', '')}")
    return tuple(sorted(out))


def manifest_changes(locked: tuple[str, ...], actual: tuple[str, ...]) -> list[str]:
    """'name: locked -> actual' for each package the two manifests disagree on (what moved in the archive)."""
    old = {line.split(" ", 1)[0]: line.split(" ")[1] for line in locked}
    new = {line.split(" ", 1)[0]: line.split(" ")[1] for line in actual}
    return [f"{n}: {old.get(n, '(absent)')} -> {new.get(n, '(absent)')}" for n in sorted(set(old) | set(new)) if old.get(n) != new.get(n)]


def content_ref(base: Base, manifest: tuple[str, ...]) -> str:
    """The local ref a base with this manifest gets (the same as Base.local_ref once the lock records it)."""
    return replace(base, content=manifest_digest(manifest)).local_ref



def recipe_record(base: Base, plan: BootstrapPlan | None) -> dict[str, Any]:
    rec: dict[str, Any] = {"image": base.image, "recipe_id": base.recipe_id, "local_ref": base.local_ref}
    if base.bootstrap is not None:
        b = base.bootstrap
        rec["bootstrap"] = {"tool": b.tool, "suite": b.suite, "mirror": b.mirror, "variant": b.variant, "components": list(b.components)}
    if plan is not None and plan.mirror != plan.recipe_mirror:
        rec["mirror_used"] = plan.mirror
    return rec


# --------------------------------------------------------------------------- bootstrap


def bootstrap_base(client: Any, plan: BootstrapPlan, result: BaseResult, log_dir: Path, base: Base, accept_drift: bool = False,
               locked_manifest: tuple[str, ...] = ()) -> None:
    """debootstrap, record the manifest, import. The image is tagged by what it contains: when that is not
    what images.lock recorded (the archive moved since), it is refused unless `accept_drift` (a lock run)."""
    if shutil.which("debootstrap") is None and not os.access("/usr/sbin/debootstrap", os.X_OK):
        raise OperationError(f"base {plan.key}: debootstrap is not installed; run `make engine` (it installs debootstrap)")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / (f"{plan.key}.log" if plan.arch == "amd64" else f"{plan.key}-{plan.arch}.log")
    tmp_root = os.environ.get("BUILDTOOL_TMPDIR") or "/var/tmp"
    started = time.monotonic()
    keyring, script = _keyring_and_script(plan, log_dir.parent.parent / ".state" / "keyrings")
    progress(f"{plan.key}: bootstrapping {plan.suite} from {plan.mirror} ...", end="")
    ok = False
    try:
        with _tempdir(tmp_root, f"buildtool-base-{plan.key}-") as tmp:
            target = os.path.join(tmp, "rootfs")
            with open(log_path, "w", encoding="utf-8") as log:
                argv = plan.command(target, keyring, script)
                log.write("$ " + " ".join(argv) + "\n")
                log.flush()
                _run_logged(argv, log, what=f"base {plan.key}: debootstrap", log_path=log_path)
                t_debootstrap = time.monotonic() - started
                _scrub(target, plan)
                manifest = rootfs_manifest(target)
                result.manifest = manifest
                if base.content and manifest_digest(manifest) != base.content:
                    result.drift = manifest_changes(locked_manifest, manifest) or ["(manifest digest differs)"]
                    if not accept_drift:
                        raise OperationError(
                            f"base {plan.key}: debootstrap of {plan.suite} from {plan.mirror} today installs other packages than images.lock "
                            f"records ({len(result.drift)} differ: {'; '.join(result.drift[:6])}{' ...' if len(result.drift) > 6 else ''}): "
                            f"the archive moved since the lock. Run `buildtool lock --refresh-stale` (re-locks just this base) or set "
                            f"a snapshot archive in the site overlay (mirrors.apt_snapshot)")
                image = _import(target, plan, log, log_path) if plan.arch == "amd64" else import_for_platform(target, plan, log, log_path)
            result.ref = content_ref(base, manifest)
            engine.tag(client, image, result.ref)  # only after a successful import: never a half-made base
        ok = True
    finally:
        if not ok:
            progress(f" failed after {time.monotonic() - started:.0f} s (log: {log_path})")
    size = engine.image_size(client, image)
    result.status, result.image_id = "bootstrapped", image
    total = time.monotonic() - started
    result.detail = f"debootstrap {plan.suite} from {plan.mirror} ({t_debootstrap:.0f} s, import {total - t_debootstrap:.0f} s)"
    progress(f" {total:.0f} s (debootstrap {t_debootstrap:.0f} s, import {total - t_debootstrap:.0f} s), {human_size(size)}")


def _keyring_and_script(plan: BootstrapPlan, cache: Path) -> tuple[str | None, str | None]:
    """Ubuntu: its archive keyring, taken from Debian's ubuntu-keyring .deb through a verified chain
    (Debian 12 has no such package), and debootstrap's fallback script for series it does not know."""
    if plan.family != "ubuntu":
        return None, None
    from ..edges.archive_keyring import debootstrap_script, ubuntu_keyring
    from ..edges.signed_archive import KeyringError

    try:
        return str(ubuntu_keyring(cache)), debootstrap_script(plan.suite)
    except KeyringError as exc:
        raise OperationError(f"base {plan.key}: no verified Ubuntu keyring: {exc}") from None


def _scrub(target: str, plan: BootstrapPlan) -> None:
    import glob

    for pattern in SCRUB_GLOBS:
        for path in glob.glob(os.path.join(target, pattern)):
            if os.path.isdir(path) and not os.path.islink(path):
                if os.path.basename(path) != "partial":
                    shutil.rmtree(path)
            else:
                os.unlink(path)
    for rel in EMPTY_FILES:
        path = os.path.join(target, rel)
        if os.path.lexists(path):
            os.unlink(path)
        with open(path, "w", encoding="utf-8"):
            pass
    os.makedirs(os.path.join(target, "var/lib/apt/lists/partial"), exist_ok=True)
    with open(os.path.join(target, "etc/apt/sources.list"), "w", encoding="utf-8") as fh:
        fh.write(plan.sources_list())
    # trixie's debootstrap may also leave a deb822 file; one source of truth.
    sources_d = os.path.join(target, "etc/apt/sources.list.d")
    if os.path.isdir(sources_d):
        for name in os.listdir(sources_d):
            if name.endswith((".list", ".sources")):
                os.unlink(os.path.join(sources_d, name))


def import_for_platform(target: str, plan: BootstrapPlan, log: TextIO, log_path: Path) -> str:
    """The root filesystem as an image whose config states its architecture: `docker import --platform` is
    ignored by Debian's engine 20.10 (the image says amd64), so BuildKit builds `FROM scratch` + `ADD rootfs.tar /`."""
    from .platform_import import import_rootfs

    return import_rootfs(target, plan.import_changes(), f"linux/{plan.arch}", log, log_path, what=f"base {plan.key}")


def _import(target: str, plan: BootstrapPlan, log: TextIO, log_path: Path) -> str:
    """`tar -C target -c . | docker import` with the plan's changes; the image id."""
    cli = engine.docker_cli()
    tar_cmd = ["tar", "--numeric-owner", "--xattrs", "--sort=name", "-C", target, "-c", "."]
    imp_cmd = [cli, "import"]
    for change in plan.import_changes():
        imp_cmd += ["--change", change]
    imp_cmd.append("-")
    log.write("$ " + " ".join(tar_cmd) + " | " + " ".join(imp_cmd) + "\n")
    log.flush()
    tar = subprocess.Popen(tar_cmd, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    try:
        imp = subprocess.run(imp_cmd, stdin=tar.stdout, capture_output=True, text=True, start_new_session=True)
    finally:
        if tar.stdout:
            tar.stdout.close()
        if tar.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(tar.pid, signal.SIGTERM)
        tar.wait()
    log.write(imp.stdout + imp.stderr)
    log.flush()
    if tar.returncode != 0:
        raise OperationError(f"base {plan.key}: tar of the root filesystem failed (exit {tar.returncode}); see {log_path}")
    if imp.returncode != 0:
        raise OperationError(f"base {plan.key}: docker import failed: {one_line(imp.stderr) or imp.returncode}")
    image = imp.stdout.strip().splitlines()[-1].strip() if imp.stdout.strip() else ""
    if not image.startswith("sha256:"):
        raise OperationError(f"base {plan.key}: docker import printed no image id: {one_line(imp.stdout)}")
    return image


def _run_logged(argv: list[str], log: TextIO, what: str, log_path: Path) -> None:
    """Run argv in its own process group, output to log; kill the whole group on any exception (Ctrl-C)."""
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        rc = proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    if rc != 0:
        tail = " | ".join(line.strip() for line in tail_lines(log_path, 5))
        raise OperationError(f"{what} failed (exit {rc}); see {log_path}" + (f": {tail}" if tail else ""))


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def _tempdir(parent: str, prefix: str) -> Iterator[str]:
    os.makedirs(parent, exist_ok=True)
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield path
    finally:
        _remove_rootfs(path)


def _mounts_under(path: str) -> list[str]:
    real = os.path.realpath(path)
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            for line in fh:
                point = line.split()[4].replace("\\040", " ")
                if point == real or point.startswith(real + "/"):
                    found.append(point)
    except OSError:
        pass
    return found


def _remove_rootfs(path: str) -> None:
    """Unmount what debootstrap may have left mounted (proc, sys, dev on an interrupt), then delete.

    Never deletes through a mount point that is still mounted: that would delete the host's files.
    """
    for point in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    left = _mounts_under(path)
    if left:
        print(f"warning: not removing {path}: still mounted: {', '.join(left)}", file=sys.stderr)
        return
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- helpers


def progress(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


def one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
