"""Labels: the image's labels (docker inspect) include every expected label with the expected value."""

from __future__ import annotations

from .base import CheckFailed, CheckImpl, Image, Probe


def label_problems(found: dict[str, str], wanted: dict[str, str]) -> list[str]:
    problems = []
    for name, value in sorted(wanted.items()):
        if name not in found:
            problems.append(f"{name} missing (want {value!r})")
        elif found[name] != str(value):
            problems.append(f"{name}={found[name]!r}, want {value!r}")
    return problems


def _probes(image: Image, params: dict) -> list[Probe]:
    return []


def _evaluate(image: Image, params: dict) -> str:
    problems = label_problems(image.labels, params["labels"])
    if problems:
        raise CheckFailed(f"{len(problems)} of {len(params['labels'])} labels differ: " + "; ".join(problems))
    return f"{len(params['labels'])} labels match"


CHECKS = {"labels-match": CheckImpl(_probes, _evaluate, "docker inspect labels include the expected ones")}
