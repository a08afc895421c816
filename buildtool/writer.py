"""Write generated/ atomically and compare it with what is on disk (for `check`)."""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import OperationError

Tree = dict[str, tuple[str, int]]


def read_tree(root: Path) -> Tree:
    out: Tree = {}
    if not root.is_dir():
        return out
    for path in sorted(root.rglob("*")):
        if path.is_file():
            rel = path.relative_to(root).as_posix()
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            out[rel] = (path.read_text(encoding="utf-8", errors="replace"), mode)
    return out


def write_tree_atomically(root: Path, tree: Tree) -> None:
    """Build the whole tree beside `root`, then swap it in: a failure leaves the old tree intact."""
    root = root.resolve()
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.new-", dir=root.parent))
    try:
        for rel, (text, mode) in tree.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            target.chmod(mode)
        old = root.parent / f".{root.name}.old-{os.getpid()}"
        if root.exists():
            os.rename(root, old)
        os.rename(staging, root)
        if old.exists():
            shutil.rmtree(old)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OperationError(f"could not write {root}: {exc}") from None


def write_file_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
