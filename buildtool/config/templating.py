"""Tag templates are data: literal text and plain {name} placeholders, nothing else.

str.format would also take `{version.__class__}`, `{version[x]}`, `{version:x>99999999}` and `{version!r}`:
attribute and item access, format specs and conversions. None of these is a name, so none is accepted;
a template is parsed once into literals and names and filled by plain dictionary lookups.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

VERSION = re.compile(r"\d+(?:\.\d+)+")  # a dotted version inside an image name's text ("openmpi5.0" -> 5.0)
PLACEHOLDER_NAME = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?")
EXPECTED = "literal text and plain {name} placeholders (no '.attr', '[item]', ':spec' or '!conversion'; '{{' and '}}' for braces)"

Parsed = tuple[tuple[str, str | None], ...]


class TemplateSyntaxError(ValueError):
    """What is wrong with a template, in words (the caller adds file:line and key)."""


@lru_cache(maxsize=256)
def parse(template: str) -> Parsed:
    """[(literal, name or None), ...]; raises TemplateSyntaxError for anything but plain {name}."""
    out: list[tuple[str, str | None]] = []
    literal: list[str] = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c == "{":
            if template.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = template.find("}", i + 1)
            if end < 0:
                raise TemplateSyntaxError(f"the '{{' at column {i + 1} is not closed")
            name = template[i + 1:end]
            if not PLACEHOLDER_NAME.fullmatch(name):
                raise TemplateSyntaxError(f"placeholder {{{name}}} is not a plain name")
            out.append(("".join(literal), name))
            literal = []
            i = end + 1
        elif c == "}":
            if template.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            raise TemplateSyntaxError(f"single '}}' at column {i + 1}")
        else:
            literal.append(c)
            i += 1
    if literal:
        out.append(("".join(literal), None))
    return tuple(out)


def names(template: str) -> tuple[str, ...]:
    return tuple(name for _, name in parse(template) if name is not None)


def fill(template: str, values: Mapping[str, Any]) -> str:
    """The template with each {name} replaced by str(values[name]); KeyError names a missing one."""
    parts: list[str] = []
    for literal, name in parse(template):
        parts.append(literal)
        if name is not None:
            parts.append(str(values[name]))
    return "".join(parts)


def syntax_problem(template: str) -> str | None:
    """For schema validators: what is wrong with the template, or None."""
    try:
        parse(template)
    except TemplateSyntaxError as exc:
        return str(exc)
    return None


def name_claims(template: str, version: str) -> tuple[str, ...]:
    """The MPI versions an MPI component's tag template makes its part of image names claim: versions written literally
    ("openmpi5.0") and the layer's version where the template says {version}; other placeholders ({mpi4py}) claim
    nothing about the MPI."""
    out: list[str] = []
    for literal, name in parse(template):
        out += VERSION.findall(literal)
        if name == "version" and version:
            out.append(version)
    return tuple(dict.fromkeys(out))


def versions_agree(claim: str, found: str) -> bool:
    """Equal on every part the shorter one has: a name's 5.0 agrees with 5.0.9, Intel MPI's report 2021.17 with a pin
    2021.17.2; 5.0 and 4.1.6, or 5.0.9 and 5.0.8, do not."""
    a, b = claim.split("."), found.split(".")
    return a[:len(b)] == b[:len(a)]
