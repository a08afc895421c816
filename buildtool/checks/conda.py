"""conda: `conda --version` equals the pin, `conda info --json` works, python is conda's, no package cache left."""

from __future__ import annotations

import json
import re
import shlex

from .base import ROOT, CheckFailed, CheckImpl, Image, Probe
from .python import PYTHON_VERSION

CONDA_VERSION = Probe("conda-version", "conda --version 2>&1")
CONDA_INFO = Probe("conda-info", "conda info --json")
# What `conda clean --all` may leave in pkgs/: the index of where packages came from.
PKGS_KEEP = {"urls", "urls.txt", "cache", ".trash"}


def pkgs_probe(prefix: str) -> Probe:
    return Probe(f"pkgs:{prefix}", f"find {shlex.quote(prefix.rstrip('/') + '/pkgs')} -mindepth 1 -maxdepth 1 2>/dev/null; true", user=ROOT)


def leftover_pkgs(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line.strip() and line.rsplit("/", 1)[-1] not in PKGS_KEEP)


def _probes(image: Image, params: dict) -> list[Probe]:
    return [CONDA_VERSION, CONDA_INFO, PYTHON_VERSION, pkgs_probe(params["prefix"])]


def _evaluate(image: Image, params: dict) -> str:
    prefix = params["prefix"].rstrip("/")
    problems = []
    version = image.result(CONDA_VERSION.key)
    m = re.search(r"conda (\S+)", version.stdout)
    if not version.ok or not m:
        problems.append(f"`conda --version` failed: {version.brief()}")
    elif m.group(1) != params["version"]:
        problems.append(f"conda is {m.group(1)}, the pin is {params['version']}")
    info = image.result(CONDA_INFO.key)
    try:
        data = json.loads(info.stdout) if info.ok else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        problems.append(f"`conda info --json` failed: {info.brief()}")
    elif str(data.get("root_prefix", "")).rstrip("/") != prefix:
        problems.append(f"conda's root_prefix is {data.get('root_prefix')!r}, expected {prefix!r}")
    python = image.result(PYTHON_VERSION.key).stdout.splitlines()
    if not python or not python[0].startswith(prefix + "/"):
        problems.append(f"the python on PATH ({python[0] if python else 'none'}) is not conda's ({prefix}/bin/python)")
    left = leftover_pkgs(image.result(pkgs_probe(prefix).key).stdout)
    if left:
        problems.append(f"{len(left)} entries left in {prefix}/pkgs (e.g. {', '.join(left[:3])}); run `conda clean --all` in the same layer")
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"conda {params['version']} at {prefix}"


CHECKS = {"conda-version": CheckImpl(_probes, _evaluate, "conda --version, conda info --json, conda's python, empty pkgs/")}
