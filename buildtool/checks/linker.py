"""The dynamic linker's cache (`ldconfig -p`), shared by the fuse and cuda checks: one run per image."""

from __future__ import annotations

import re

from .base import Image, Probe, expect

LDCONFIG = Probe("ldconfig", 'PATH="$PATH:/sbin:/usr/sbin" ldconfig -p')


def linker_cache(image: Image) -> dict[str, list[str]]:
    """soname (e.g. libcudart.so.12) -> paths, from `ldconfig -p`."""
    result = image.result(LDCONFIG.key)
    expect(result.ok, f"`ldconfig -p` failed: {result.brief()}")
    return parse_ldconfig(result.stdout)


def parse_ldconfig(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^\s+(\S+)\s+\(.*\)\s+=>\s+(\S+)\s*$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def find_library(cache: dict[str, list[str]], stem: str) -> list[str]:
    """Sonames of a library stem: 'libcudnn' -> ['libcudnn.so.9', 'libcudnn.so'] (not libcudnn_ops...)."""
    pattern = re.compile(re.escape(stem) + r"\.so(\.[0-9.]+)?$")
    return sorted(name for name in cache if pattern.match(name))
