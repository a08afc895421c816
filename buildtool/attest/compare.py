"""The inventory (what runs) against the lock (what was intended): every difference the lock cannot explain. Pure.

Explained: a dpkg package the base itself has (the lock's base manifest) or a layer installs at the
locked version; a pip distribution a layer's pip set pins at that version, or that `python -m venv`
seeded from a Debian `python3-<name>-whl` wheel the image has at the same upstream version.
Everything else is a difference: an unlocked package, a locked one missing, a version that differs.
"""

from __future__ import annotations

import re

from .inventory import Inventory
from .layers import ImageFacts


def upstream(debian_version: str) -> str:
    """1:2.3+dfsg-4 -> 2.3 (epoch, Debian revision and repack suffixes dropped)."""
    v = debian_version.split(":", 1)[-1].rsplit("-", 1)[0]
    return re.split(r"[+~]", v, maxsplit=1)[0]


def differences(inv: Inventory, facts: ImageFacts) -> list[str]:
    out: list[str] = []
    base = {name: version for name, version, _arch in facts.base.manifest}
    locked = facts.locked_debs
    installed = inv.dpkg_versions
    for name, version in sorted(installed.items()):
        if name in locked:
            if locked[name].version != version:
                out.append(f"dpkg {name}: installed {version}, the lock pins {locked[name].version}")
        elif name in base:
            if base[name] != version:
                out.append(f"dpkg {name}: installed {version}, the base manifest in the lock has {base[name]}")
        else:
            out.append(f"dpkg {name} {version}: installed, but neither the base manifest nor any layer's .debs in the lock name it")
    for name, pin in sorted(locked.items()):
        if name not in installed:
            out.append(f"dpkg {name}: the lock pins {pin.version} for a layer of this image, but it is not installed")
    pins = facts.locked_pip
    have = inv.pip_versions
    for name, version in sorted(have.items()):
        if name in pins:
            if pins[name].version != version:
                out.append(f"pip {name}: installed {version}, the lock pins {pins[name].version}")
        else:
            seed = installed.get(f"python3-{name}-whl")
            if seed is None or upstream(seed) != version:
                out.append(f"pip {name} {version}: installed, but no pip set of this image pins it (and no python3-{name}-whl seeds it)")
    for name, pin in sorted(pins.items()):
        if name not in have:
            out.append(f"pip {name}: the lock pins {pin.version}, but `pip list` does not show it")
    return out
