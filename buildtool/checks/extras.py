"""extras: the packages of images.yaml's `extras` installed at their locked versions, and each third-party
repository configured as the build left it (its key under /etc/apt/keyrings, a deb822 .sources `signed-by` it)."""

from __future__ import annotations

import shlex

from .base import DPKG, CheckImpl, Image, Probe, UnknownCheck, expect


def _sources_probe(params: dict) -> Probe:
    files = " ".join(shlex.quote(r["sources"]) for r in params.get("repositories", []))
    return Probe("extras-sources", f'for f in {files}; do echo "@@ $f"; cat "$f" 2>/dev/null || echo "(missing)"; done; true')


def _probes(image: Image, params: dict) -> list[Probe]:
    return [DPKG, _sources_probe(params)] if params.get("repositories") else [DPKG]


def _evaluate(image: Image, params: dict) -> str:
    installed = image.packages
    wrong = [f"{n} {installed.get(n, 'not installed')} (locked {v})" for n, v in sorted(params["packages"].items()) if installed.get(n) != v]
    expect(not wrong, "not at the locked version: " + ", ".join(wrong))
    pins = params["packages"]
    asked = ", ".join(f"{n} {pins.get(n, '?')}" for n in params["requested"])
    notes = [f"{len(pins)} .debs at their locked versions ({asked})"]
    if params.get("repositories"):
        text = image.result("extras-sources").stdout
        files: dict[str, str] = {}
        current = ""
        for line in text.splitlines():
            if line.startswith("@@ "):
                current = line[3:]
                files[current] = ""
            elif current:
                files[current] += line + "\n"
        for repo in params["repositories"]:
            body = files.get(repo["sources"], "(missing)")
            expect(f"Signed-By: {repo['keyring']}" in body, f"{repo['sources']} is not signed-by {repo['keyring']}: {body.strip()[:200]}")
            expect(f"URIs: {repo['url']}" in body, f"{repo['sources']} does not name {repo['url']}")
        notes.append(", ".join(f"{r['key']} signed-by {r['keyring']}" for r in params["repositories"]))
    return "; ".join(notes)


EXTRA_PACKAGES = CheckImpl(_probes, _evaluate, "images.yaml extras: locked versions installed, repositories signed-by their key")


def impl(name: str) -> CheckImpl:
    """extra-packages-<stage>: one per layer that installs extras (a child image runs its parents')."""
    if name == "extra-packages" or name.startswith("extra-packages-"):
        return EXTRA_PACKAGES
    raise UnknownCheck(f"no check extras/{name} (known: extras/extra-packages-<stage>)")
