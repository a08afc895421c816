"""The source revision a build or release records: `git rev-parse HEAD`, "-dirty" when tracked files changed."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_revision(where: Path) -> str | None:
    """HEAD of the checkout at `where` (+ "-dirty"), or None when there is no git or no checkout."""
    try:
        sha = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
