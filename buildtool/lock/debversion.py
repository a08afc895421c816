"""Debian version ordering (dpkg's verrevcmp) and Packages index reading. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator


def _order(c: str) -> int:
    """dpkg's character weight: '~' sorts before everything, even the end of the string."""
    if c.isdigit():
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        start_i, start_j = i, j
        while i < len(a) and a[i].isdigit():
            i += 1
        while j < len(b) and b[j].isdigit():
            j += 1
        na, nb = int(a[start_i:i] or "0"), int(b[start_j:j] or "0")
        if na != nb:
            return -1 if na < nb else 1
    return 0


def _split_version(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch), upstream, revision


def compare_debian_versions(a: str, b: str) -> int:
    """<0, 0, >0 as a sorts before, with, after b in dpkg's ordering."""
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


_STANZA = re.compile(r"^Package: *(\S+)\n(?:[^\n]+\n)*?Version: *(\S+)", re.M)


def iter_packages(text: str) -> Iterator[tuple[str, str]]:
    """(Package, Version) of each stanza of a Packages index; other fields are skipped.
    One regex over the whole text: a Debian index has ~65,000 stanzas and a line loop costs seconds."""
    for m in _STANZA.finditer(text if text.endswith("\n") else text + "\n"):
        yield m.group(1), m.group(2)


def candidates(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Package -> its highest version, as apt's candidate among sources of equal priority."""
    best: dict[str, str] = {}
    for name, version in pairs:
        if name not in best or compare_debian_versions(version, best[name]) > 0:
            best[name] = version
    return best


