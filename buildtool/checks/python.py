"""Python: the `python` on PATH is the pinned version; `pip check` is clean."""

from __future__ import annotations

import re

from .base import CheckImpl, Image, Probe, expect

PYTHON_VERSION = Probe("python-version", "command -v python; python --version 2>&1")
PIP_CHECK = Probe("pip-check", "python -m pip check --disable-pip-version-check --no-input")


def parse_python_version(text: str) -> str | None:
    m = re.search(r"Python (\d+\.\d+\.\d+\S*)", text)
    return m.group(1) if m else None


def _version_probes(image: Image, params: dict) -> list[Probe]:
    return [PYTHON_VERSION]


def _version_evaluate(image: Image, params: dict) -> str:
    result = image.result(PYTHON_VERSION.key)
    lines = result.stdout.splitlines()
    expect(result.ok and lines, f"no `python` on PATH: {result.brief()}")
    found = parse_python_version(result.stdout)
    expect(found is not None, f"`python --version` printed {result.stdout.strip()!r}")
    expect(found == params["version"], f"python on PATH ({lines[0]}) is {found}, the pin is {params['version']}")
    return f"{lines[0]}: Python {found}"


def _pip_probes(image: Image, params: dict) -> list[Probe]:
    return [PIP_CHECK]


def _pip_evaluate(image: Image, params: dict) -> str:
    result = image.result(PIP_CHECK.key)
    expect(result.ok, f"`pip check` failed (exit {result.rc}): {(result.stdout.strip() or result.stderr.strip())[:600]}")
    expect(image.pip, "`pip list --format json` gave no distributions")
    return f"{len(image.pip)} distributions, no broken requirements"


CHECKS = {
    "python-version": CheckImpl(_version_probes, _version_evaluate, "`python --version` equals the pin"),
    "pip-check": CheckImpl(_pip_probes, _pip_evaluate, "`pip check` exits 0"),
}
