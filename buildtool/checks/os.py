"""OS release: /etc/os-release ID and VERSION_ID equal the base's."""

from __future__ import annotations

import shlex

from .base import CheckImpl, Image, Probe, expect

OS_RELEASE = Probe("os-release", "cat /etc/os-release")


def parse_os_release(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip("\"'")]
        out[key.strip()] = parts[0] if parts else ""
    return out


def _probes(image: Image, params: dict) -> list[Probe]:
    return [OS_RELEASE]


def _evaluate(image: Image, params: dict) -> str:
    result = image.result(OS_RELEASE.key)
    expect(result.ok, f"cannot read /etc/os-release: {result.brief()}")
    release = parse_os_release(result.stdout)
    found = (release.get("ID", ""), release.get("VERSION_ID", ""))
    wanted = (str(params["id"]), str(params["version_id"]))
    expect(found == wanted, f"/etc/os-release says ID={found[0]!r} VERSION_ID={found[1]!r}, the base pins ID={wanted[0]!r} VERSION_ID={wanted[1]!r}")
    return release.get("PRETTY_NAME", "")


CHECKS = {"os-release": CheckImpl(_probes, _evaluate, "ID and VERSION_ID of /etc/os-release equal the base's")}
