"""OS release: /etc/os-release ID and VERSION_ID equal the base's."""

from __future__ import annotations

import shlex

from .base import CheckImpl, Image, Probe, expect

OS_RELEASE = Probe("os-release", "cat /etc/os-release")
ARCH = Probe("os-architecture", "dpkg --print-architecture; uname -m")
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}  # Debian architecture -> the kernel's (emulated) machine


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


def _arch_probes(image: Image, params: dict) -> list[Probe]:
    return [ARCH]


def _arch_evaluate(image: Image, params: dict) -> str:
    """The image is of its platform's architecture: dpkg's and the (possibly emulated) machine's."""
    result = image.result(ARCH.key)
    expect(result.ok, f"cannot ask dpkg and uname for the architecture: {result.brief()}")
    lines = result.stdout.split()
    found = (lines[0] if lines else "", lines[1] if len(lines) > 1 else "")
    arch = str(params["arch"])
    wanted = (arch, MACHINE.get(arch, arch))
    expect(found == wanted, f"dpkg --print-architecture / uname -m say {found[0]!r} / {found[1]!r}, the platform is {wanted[0]!r} / {wanted[1]!r}")
    return f"{found[0]} ({found[1]})"


CHECKS = {"os-release": CheckImpl(_probes, _evaluate, "ID and VERSION_ID of /etc/os-release equal the base's"),
          "architecture": CheckImpl(_arch_probes, _arch_evaluate, "dpkg's architecture and uname -m are the platform's")}
