"""fuse: the library resolvable by the dynamic linker and fusermount3/fusermount on PATH (datasets are mounted with fuse)."""

from __future__ import annotations

from .base import CheckImpl, Image, Probe, expect
from .linker import LDCONFIG, find_library, linker_cache

FUSERMOUNT = Probe("fusermount", 'for b in fusermount3 fusermount; do p=$(command -v "$b") && echo "$b $p"; done; true')


def _probes(image: Image, params: dict) -> list[Probe]:
    return [LDCONFIG, FUSERMOUNT]


def _evaluate(image: Image, params: dict) -> str:
    cache = linker_cache(image)
    libs = find_library(cache, "libfuse3") + find_library(cache, "libfuse")
    binaries = dict(line.split(" ", 1) for line in image.result(FUSERMOUNT.key).stdout.splitlines() if " " in line)
    expect(libs, "no libfuse in `ldconfig -p` (neither libfuse3.so.3 nor libfuse.so.2)")
    expect(binaries, "neither fusermount3 nor fusermount is on PATH")
    return ", ".join(libs) + "; " + ", ".join(sorted(binaries.values()))


CHECKS = {"fuse-present": CheckImpl(_probes, _evaluate, "libfuse in `ldconfig -p`, fusermount3/fusermount on PATH")}
