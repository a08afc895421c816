"""Write generated/ atomically and compare it with what is on disk (for `check`)."""

from __future__ import annotations

import difflib
import errno
import fcntl
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import Location, OperationError, UserError

Tree = dict[str, tuple[str, int]]


def read_tree(root: Path) -> Tree:
    """Every file under `root`: its text and 755 (any execute bit) or 644. Walks with os.scandir:
    at 20,000 files, pathlib's rglob plus a stat and an access() per file took seconds."""
    try:
        return _read_tree(root)
    except OSError as exc:
        raise OperationError(f"cannot read {root}: {exc.strerror or exc}") from None


def _read_tree(root: Path) -> Tree:
    out: Tree = {}
    if not root.is_dir():
        return out
    stack = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if rel == MARKER:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, rel + "/"))
                elif entry.is_file():
                    with open(entry.path, encoding="utf-8", errors="replace", newline=None) as f:
                        text = f.read()
                    out[rel] = (text, 0o755 if entry.stat().st_mode & 0o111 else 0o644)
    return dict(sorted(out.items()))


MARKER = ".buildtool-generated"
MARKER_TEXT = "This folder is written by `buildtool generate` and replaced as a whole each time; do not keep other files here.\n"
# What generate writes at the top of its folder: a folder holding only these (and no marker) is an
# output of a buildtool from before the marker, and may be replaced too.
KNOWN_TOP = frozenset({"nodes", "ci", "plan.json", "docker-bake.json", "IMAGES.md", MARKER})


def check_output_folder(root: Path, keep: tuple[Path, ...] = ()) -> None:
    """Refuse (exit 2, nothing changed) an --out that replacing would destroy what buildtool did not
    write: a file, a symlink, a checkout (a folder with .git), a folder holding one of `keep`
    (images.yaml, the README), or a non-empty folder without buildtool's marker."""
    shown = str(root)
    expected = "a folder that buildtool generate wrote (it has the marker file .buildtool-generated), an empty folder, or a new path"
    if root.is_symlink():
        raise UserError("--out is a symbolic link; generate replaces its folder and will not follow or replace a link",
                        where=Location("--out"), key="--out", expected=expected, found=shown)
    if root.exists() and not root.is_dir():
        raise UserError("--out names an existing file, not a folder; generate would replace it", where=Location("--out"), key="--out",
                        expected=expected, found=shown)
    resolved = root.resolve()
    for path in keep:
        kept = path.resolve()
        if kept == resolved or resolved in kept.parents:
            raise UserError(f"--out contains {path}; replacing the folder would delete it", where=Location("--out"), key="--out",
                            expected=expected + ", not a folder above images.yaml or the README", found=shown)
    if not root.is_dir():
        return
    if (root / ".git").exists():
        raise UserError("--out is a git checkout (it has .git); replacing it would delete the checkout", where=Location("--out"), key="--out",
                        expected=expected, found=shown)
    try:
        entries = set(os.listdir(root))
    except OSError as exc:
        raise OperationError(f"cannot read {root}: {exc.strerror or exc}") from None
    if entries and MARKER not in entries and not (entries <= KNOWN_TOP and _is_old_output(root)):
        strange = sorted(entries - KNOWN_TOP)[:3] or sorted(entries)[:3]
        raise UserError("--out is a folder buildtool did not write (no marker file .buildtool-generated); replacing it would delete it",
                        where=Location("--out"), key="--out", expected=expected, found=f"{shown} holding {', '.join(strange)}")


def _is_old_output(root: Path) -> bool:
    """A folder written by a buildtool from before the marker: its plan.json is buildtool's."""
    try:
        with open(root / "plan.json", encoding="utf-8") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.lstrip().startswith("{") and '"bases"' in head and "buildtool/base-" in head


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.parent.glob(f".{root.name}.new-*")] + [p for p in root.parent.glob(f".{root.name}.old-*")]


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    if sys.platform != "linux":
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def write_tree_atomically(root: Path, tree: Tree) -> None:
    """Build the whole tree beside `root`, then swap it in: a failure (or a kill -9) at any point leaves
    either the old tree or the new one at `root`, never neither. Runs of generate serialize on a lock of
    the parent folder, and each removes what killed runs left beside `root` (.<name>.new-*, .<name>.old-*)."""
    root = Path(os.path.abspath(root))
    staging: Path | None = None
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        with _locked(root.parent):
            for left in _leftovers(root):
                shutil.rmtree(left, ignore_errors=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.new-", dir=root.parent))
            os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; a folder made by mkdir follows the umask
            _fill(staging, tree)
            if root.exists() and _exchange(staging, root):
                old, staging = staging, None  # the old tree is now at the staging path
                shutil.rmtree(old, ignore_errors=True)
                return
            old = root.parent / f".{root.name}.old-{os.getpid()}"
            if root.exists():
                os.rename(root, old)
            os.rename(staging, root)
            staging = None
            if old.exists():
                shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise OperationError(f"could not write {root}: {exc.strerror or exc}") from None


def _fill(staging: Path, tree: Tree) -> None:
    created = _mode_of_new_files()
    folders: set[str] = set()
    for rel, (text, mode) in tree.items():
        target = os.path.join(staging, rel)
        folder = os.path.dirname(target)
        if folder not in folders:
            os.makedirs(folder, exist_ok=True)
            folders.add(folder)
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
        if mode != created:  # one syscall fewer per file when the umask already gives the mode
            os.chmod(target, mode)
    with open(os.path.join(staging, MARKER), "w", encoding="utf-8") as f:
        f.write(MARKER_TEXT)
    if created != 0o644:
        os.chmod(os.path.join(staging, MARKER), 0o644)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive flock on the folder itself (nothing is left behind when the holder dies)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _mode_of_new_files() -> int:
    """The mode open() gives a new file under the current umask."""
    return 0o666 & ~_umask()


def write_file_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OperationError(f"could not write {path}: {exc.strerror or exc}") from None


def _remove_dead_temps(path: Path) -> None:
    """.<name>.tmp-<pid> files of processes that no longer run (a kill -9 between write and rename)."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


class PreparedFile:
    """A file written beside its target first and moved over it later (os.replace): the write that can
    fail (disk full, read-only) happens before anything else is changed."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        _remove_dead_temps(path)
        try:
            self.tmp.write_text(text, encoding="utf-8")
            mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
            os.chmod(self.tmp, mode)
        except OSError as exc:
            self.discard()
            raise OperationError(f"could not write {path}: {exc.strerror or exc}") from None

    def commit(self) -> None:
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise OperationError(f"could not write {self.path}: {exc.strerror or exc}") from None

    def discard(self) -> None:
        try:
            self.tmp.unlink()
        except OSError:
            pass


def diff_trees(expected: Tree, actual: Tree, label: str = "generated") -> list[str]:
    """Unified diffs (and mode changes) between what generate would write and what is on disk."""
    out: list[str] = []
    for rel in sorted(set(expected) | set(actual)):
        want = expected.get(rel)
        have = actual.get(rel)
        if want == have:
            continue
        if have is None:
            out.append(f"missing: {label}/{rel}")
            continue
        if want is None:
            out.append(f"unexpected: {label}/{rel} (not produced by images.yaml)")
            continue
        if want[0] != have[0]:
            out.extend(difflib.unified_diff(have[0].splitlines(), want[0].splitlines(), f"{label}/{rel} (on disk)", f"{label}/{rel} (from images.yaml)", lineterm=""))
        if want[1] != have[1]:
            out.append(f"mode: {label}/{rel} is {have[1]:o}, should be {want[1]:o}")
    return out
