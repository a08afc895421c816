"""The check registry: family -> module, each module mapping check names to a `CheckImpl`.

Families mirror what the components' `checks()` emit (see buildtool/components/*.py) and
what `checkplan` adds (labels, hygiene, declared). To add a family, write one module with a
`CHECKS` dict (or an `impl(name)` function) and list it here; the pytest-testinfra suite
in tests/images/ and `buildtool verify` iterate over this table and never name a check.
"""

from __future__ import annotations

from types import ModuleType

from . import conda, cuda, declared, extras, fuse, gpu, hygiene, labels, mpi, onnxruntime, python, system
from . import os as os_release
from .base import CheckFailed, CheckImpl, Image, NotRun, Probe, Result, UnknownCheck

FAMILIES: dict[str, ModuleType] = {
    "os": os_release,
    "system": system,
    "fuse": fuse,
    "python": python,
    "conda": conda,
    "mpi": mpi,
    "cuda": cuda,
    "gpu": gpu,
    "onnxruntime": onnxruntime,
    "extras": extras,
    "labels": labels,
    "hygiene": hygiene,
    "declared": declared,
}
# Report column order.
FAMILY_ORDER = tuple(FAMILIES)


def lookup(family: str, name: str) -> CheckImpl:
    module = FAMILIES.get(family)
    if module is None:
        raise UnknownCheck(f"no check family {family!r} (known: {', '.join(FAMILIES)})")
    if hasattr(module, "impl"):
        return module.impl(name)
    checks: dict[str, CheckImpl] = module.CHECKS
    if name not in checks:
        raise UnknownCheck(f"no check {family}/{name} (known: {', '.join(f'{family}/{n}' for n in checks)})")
    return checks[name]


__all__ = ["FAMILIES", "FAMILY_ORDER", "CheckFailed", "CheckImpl", "Image", "NotRun", "Probe", "Result", "UnknownCheck", "lookup"]
