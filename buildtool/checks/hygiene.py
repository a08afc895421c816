"""Hygiene: no apt lists, pip or conda caches left in the image; no CA bundle, pip credentials or
secret mounts left from the build."""

from __future__ import annotations

import re
import shlex

from .base import ROOT, CheckFailed, CheckImpl, Image, Probe
from .conda import leftover_pkgs, pkgs_probe

CACHES = Probe("caches", "\n".join([
    "find /var/lib/apt/lists -mindepth 1 -maxdepth 2 -type f ! -name lock 2>/dev/null | sed 's/^/apt-lists /'",
    "for h in /root /home/*; do find \"$h/.cache/pip\" -mindepth 1 -maxdepth 1 2>/dev/null | sed 's/^/pip-cache /'; done",
    "true",
]), user=ROOT)
# Names of the files BuildKit secrets are mounted as (see templates/files/with-build-secrets).
SECRET_NAMES = ("ca-bundle", "pip-conf")
PIP_CONFIGS = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "/root/.pip/pip.conf", "/root/.config/pip/pip.conf")
SECRETS = Probe("secrets", "\n".join([
    # BuildKit may leave empty mount stubs; only content is a leak.
    "find /run/secrets -mindepth 1 ! -empty 2>/dev/null | sed 's/^/run-secrets /'",
    "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /etc/ssl \\) -prune -o -type f -size +0 \\( "
    + " -o ".join(f"-name {shlex.quote(n)}" for n in SECRET_NAMES) + " \\) -print 2>/dev/null | sed 's/^/secret-file /'",
    "for f in " + " ".join(PIP_CONFIGS) + " /home/*/.pip/pip.conf /home/*/.config/pip/pip.conf \"${VIRTUAL_ENV:-/nonexistent}/pip.conf\"; do"
    " [ -f \"$f\" ] && grep -Eq '://[^/@[:space:]]+:[^/@[:space:]]+@' \"$f\" && echo \"pip-credentials $f\"; done",
    "true",
]), user=ROOT, timeout=180)
_CREDENTIAL_URL = re.compile(r"://[^/@\s]+:[^/@\s]+@")
_CA_ENV = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "CONDA_SSL_VERIFY", "PIP_CONFIG_FILE", "NODE_EXTRA_CA_CERTS", "PIP_CLIENT_CERT")


def tagged_lines(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        tag, _, rest = line.partition(" ")
        if rest:
            out.setdefault(tag, []).append(rest)
    return out


def env_problems(env: dict[str, str]) -> list[str]:
    problems = []
    for name, value in sorted(env.items()):
        if _CREDENTIAL_URL.search(value):
            problems.append(f"ENV {name} carries credentials in a URL")
        if name in _CA_ENV and value.startswith("/run/secrets"):
            problems.append(f"ENV {name}={value} points at a build secret")
    return problems


def _summ(paths: list[str], limit: int = 3) -> str:
    return ", ".join(paths[:limit]) + (f" (+{len(paths) - limit} more)" if len(paths) > limit else "")


def _caches_probes(image: Image, params: dict) -> list[Probe]:
    probes = [CACHES]
    if params.get("python_prefix"):
        probes.append(pkgs_probe(params["python_prefix"]))
    return probes


def _caches_evaluate(image: Image, params: dict) -> str:
    found = tagged_lines(image.result(CACHES.key).stdout)
    problems = []
    if found.get("apt-lists"):
        problems.append(f"apt lists left in /var/lib/apt/lists: {_summ(found['apt-lists'])}")
    if found.get("pip-cache"):
        problems.append(f"pip cache left: {_summ(found['pip-cache'])}")
    if params.get("python_prefix"):
        left = leftover_pkgs(image.result(pkgs_probe(params["python_prefix"]).key).stdout)
        if left:
            problems.append(f"conda package cache left: {_summ(left)}")
    if problems:
        raise CheckFailed("; ".join(problems))
    return "no apt lists, pip or conda caches"


def _secrets_probes(image: Image, params: dict) -> list[Probe]:
    return [SECRETS]


def _secrets_evaluate(image: Image, params: dict) -> str:
    found = tagged_lines(image.result(SECRETS.key).stdout)
    problems = []
    if found.get("run-secrets"):
        problems.append(f"/run/secrets is not empty: {_summ(found['run-secrets'])}")
    if found.get("secret-file"):
        problems.append(f"build secret files left: {_summ(found['secret-file'])}")
    if found.get("pip-credentials"):
        problems.append(f"pip config with credentials: {_summ(found['pip-credentials'])}")
    problems += env_problems(image.env)
    if problems:
        raise CheckFailed("; ".join(problems))
    return "no secret mounts, CA bundle copies or credentials"


CHECKS = {
    "no-caches": CheckImpl(_caches_probes, _caches_evaluate, "no apt lists, pip caches, conda pkgs"),
    "no-build-secrets": CheckImpl(_secrets_probes, _secrets_evaluate, "/run/secrets empty, no ca-bundle/pip-conf files, no credentials"),
}
