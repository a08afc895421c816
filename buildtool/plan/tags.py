"""Image names from the tag template: empty parts collapse, results are valid Docker names."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from ..config.model import Config
from ..config.templating import EXPECTED, TemplateSyntaxError, names, parse
from ..errors import Location, UserError

REPO_NAME = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
MAX_NAME = 200  # leaves room for <registry>/<namespace>/ within the 255 of a full name


def placeholders(template: str) -> list[str]:
    return list(names(template))


@lru_cache(maxsize=64)
def _compiled(template: str) -> tuple[tuple[str, ...], str]:
    """The template's fact names, and a str.format string with a {} where each goes."""
    fields, fmt = [], []
    for literal, field in parse(template):
        fmt.append(literal.replace("{", "{{").replace("}", "}}"))
        if field is not None:
            fields.append(field)
            fmt.append("{}")
    return tuple(fields), "".join(fmt)


def render_image_name(config: Config, facts: dict[str, Any]) -> str:
    template = config.tags.image
    try:
        fields, fmt = _compiled(template)
    except TemplateSyntaxError as exc:
        raise _template_error(config, f"tag template: {exc}", template, EXPECTED) from None
    try:
        values = [facts[field] for field in fields]
    except KeyError:
        field = next(f for f in fields if f not in facts)
        raise _template_error(config, f"tag template names an unknown fact {{{field}}}", template,
                              "facts such as {os.tag}, {mpi.tag}, {python.tag}, {accelerator.tag}, {onnxruntime.tag}") from None
    name = fmt.format(*values)  # format(value, "") is str(value)
    # Parts that render empty (no MPI, no ONNX Runtime) collapse with their separators.
    if "--" in name or name.startswith("-") or name.endswith("-"):
        name = re.sub(r"-{2,}", "-", name).strip("-")
    if not REPO_NAME.fullmatch(name):
        raise _template_error(config, f"tag template renders an invalid image name {name!r}", name,
                              "lowercase letters, digits and single '.', '_' or '-' between them")
    if len(name) > MAX_NAME:
        raise _template_error(config, f"tag template renders an image name of {len(name)} characters", name,
                              f"an image name of at most {MAX_NAME} characters (with the registry and namespace in front, the OCI limit is 255)")
    return name


def _template_error(config: Config, message: str, found: str, expected: str) -> UserError:
    return UserError(message, where=Location(config.path, config.tags.line), key="tags.image", expected=expected, found=found)
