"""Which package changes of a release are security fixes (pure).

A package counts when its version moved (or it is new) since the image's previous release and the
lock pins that version from a -security pocket: the pin's `pocket` (what apt's resolution named), or,
for a pin of an older lock without one, an archive that holds only -security pockets (Debian's
debian-security). Ubuntu serves -updates and -security from one archive, so there only the pocket tells.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..attest.layers import ImageFacts


@dataclass(frozen=True)
class SecurityFix:
    name: str
    before: str  # "" when new
    after: str
    pocket: str  # e.g. bookworm-security, or the archive id when the lock names no pocket


def security_pins(facts: ImageFacts) -> dict[str, tuple[str, str]]:
    """package -> (version, pocket) of the image's locked .debs that come from a -security pocket."""
    out = {}
    for name, pin in facts.locked_debs.items():
        if pin.pocket.endswith("-security"):
            out[name] = (pin.version, pin.pocket)
        elif not pin.pocket and pin.archive in facts.base.security_archives:
            out[name] = (pin.version, pin.archive)
    return out


def security_fixes(before: dict[str, str], after: dict[str, str], pins: dict[str, tuple[str, str]]) -> list[SecurityFix]:
    out = []
    for name, version in sorted(after.items()):
        if before.get(name) == version or name not in pins:
            continue
        pinned, pocket = pins[name]
        if pinned == version:
            out.append(SecurityFix(name, before.get(name, ""), version, pocket))
    return out
