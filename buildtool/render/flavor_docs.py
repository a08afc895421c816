"""docs/flavors.md: every flavor's fields and every fact a template can read, written from the code.

`buildtool docs --flavors` prints it; a unit test keeps the committed docs/flavors.md equal to it.
Fields come from each flavor's `fields`/`required` (the schema objects the loader checks with);
facts from calling the flavor's own `facts()` on a sample component, so a new field or fact shows
up here the moment the code has it.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..components import FLAVORS, SYSTEM, Flavor, flavors_for
from ..config.model import LAYER_AXES, Base, Component
from ..config.schema import ABS_PATH, Any_, Bool, Dict, Either, Int, List, Map, Scalar, Spec, Str

# The facts every variant has besides its components' own (expand._os_facts): what each means.
OS_FACTS: dict[str, str] = {
    "os": "the base's key in images.yaml (`bases.<key>`)",
    "os.family": "`debian` or `ubuntu`",
    "os.version": "the release's version (`12`, `24.04`)",
    "os.codename": "the release's codename (`bookworm`, `noble`)",
    "os.python": "the version of the distribution's python3 (`bases.<key>.python`)",
    "os.tag": "the base's part of image names (`bases.<key>.tag`)",
    "os.apt_refreshed": "what an automatic `lock --refresh-stale` moved on this base, '; '-joined ('' after a deliberate lock)",
    "os.<name>": "one per entry of `bases.<key>.provides` (NVIDIA bases: `os.cuda`, `os.cudnn`, `os.nccl`)",
    "system.user": "the non-root user (`system.user`)",
    "system.uid": "its uid (`system.uid`)",
    "system.workdir": "its working directory (`system.workdir`, default /home/<user>)",
    "system.uv": "`tools.uv.version` ('' when the images install with pip)",
    "system.uv_sha256": "`tools.uv.sha256`, space-separated",
    "system.locale": "`system.locale`",
    "system.version": "the base's version again (the system layer's own fact)",
}

# The facts expand adds for every axis besides the flavor's own (expand._axis_facts).
AXIS_FACTS: dict[str, str] = {
    "<axis>": "the component's key (`components.<axis>.<key>`)",
    "<axis>.key": "the same key",
    "<axis>.flavor": "the component's flavor",
    "<axis>.tag": "the component's `tag` template filled from its own facts (its part of image names)",
    "<axis>.kind": "the flavor's kind property (none, cuda, ...; selectors and rules can name it)",
    "<axis>.device": "the device kind the flavor's checks need (none, nvidia, ...)",
    "python.venv": "'true' when the Python environment is a venv (a property selectors and rules can name), else 'false'",
}

_SAMPLE_BASE = Base(key="debian12", family="debian", version="12", codename="bookworm", image="debian@sha256:" + "0" * 64,
                    python="3.11.2", tag="debian12", bootstrap=None)


def grammar(spec: Spec) -> str:
    """A value's type and grammar in words."""
    if isinstance(spec, Str):
        return spec.description + (f" (at most {spec.max_len} characters)" if spec.max_len and not spec.choices else "")
    if isinstance(spec, Int):
        return spec.description
    if isinstance(spec, (Bool, Scalar, Any_)):
        return spec.description
    if isinstance(spec, List):
        words = f"a list of: {grammar(spec.item)}"
        extra = [f"at least {spec.min_items}"] if spec.min_items else []
        extra += ["no duplicates"] if spec.unique else []
        return words + (f" ({', '.join(extra)})" if extra else "")
    if isinstance(spec, Dict):
        least = f", at least {spec.min_items} entr{'y' if spec.min_items == 1 else 'ies'}" if spec.min_items else ""
        return f"a mapping{least}; keys: {grammar(spec.key)}; values: {grammar(spec.value)}"
    if isinstance(spec, Map):
        keys = "; ".join(f"`{k}`{' (required)' if k in spec.required else ''}: {grammar(v)}" for k, v in spec.fields.items())
        return f"{spec.description}, keys: {keys}"
    if isinstance(spec, Either):
        return " or ".join(grammar(o) for o in spec.options)
    return spec.description  # pragma: no cover - every Spec type is named above


def _type(spec: Spec) -> str:
    return {Str: "string", Int: "integer", Bool: "boolean", List: "list", Dict: "mapping", Map: "mapping",
            Either: "one of several", Scalar: "scalar", Any_: "any"}.get(type(spec), type(spec).__name__)


def _sample(spec: Spec, name: str, index: int) -> Any:
    """A value for a field, distinct per field, shaped like a version (or a path) so that facts derived from it read well."""
    if isinstance(spec, Str):
        if spec.choices:
            return spec.choices[0]
        return f"/sample/{name}" if spec.pattern is ABS_PATH else f"{index + 1}{index + 1}.{index + 2}.{index + 3}"
    if isinstance(spec, Int):
        return spec.minimum or 1
    if isinstance(spec, (List, Dict, Map)):
        return [] if isinstance(spec, List) else {}
    return ""


APT_SAMPLE = "1:9.8.7-1"


def sample_facts(fl: Flavor) -> tuple[dict[str, Any], dict[str, Any], tuple[str, ...], tuple[str, ...]]:
    """(fields, facts, apt packages, pip requirements) of a sample component of the flavor: every field set, each to a
    distinct value, every apt package it asks for locked at APT_SAMPLE."""
    fields = {name: _sample(spec, name, i) for i, (name, spec) in enumerate(fl.fields.items())}
    component = Component(axis=fl.axis, key="example", flavor=fl.name, fields=fields)
    apt = tuple(fl.apt_packages(component, _SAMPLE_BASE))
    facts = fl.facts(component, _SAMPLE_BASE, dict.fromkeys(apt, APT_SAMPLE))
    prefixed = {f"{fl.axis}.{k}": v for k, v in facts.items()}
    return fields, facts, apt, tuple(fl.pip_requirements(component, prefixed))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _doc(fl: Flavor) -> str:
    module = inspect.getmodule(type(fl))
    text = (module.__doc__ if module else None) or type(fl).__doc__ or ""
    return " ".join(text.strip().split("\n\n")[0].split())


def _flavor_section(fl: Flavor) -> list[str]:
    from ..config.images_spec import COMPONENT_COMMON

    out = [f"### `{fl.name}`", "", _doc(fl), "",
           f"Axis `{fl.axis}`; partial `templates/{fl.partial}`; class `{type(fl).__module__}.{type(fl).__name__}`.", "",
           "Platforms: " + ", ".join(f"`{p}`" for p in fl.platforms) + (f" ({_cell(fl.platforms_reason)})" if fl.platforms_reason else "") + ".", ""]
    out += ["| field | type | required | grammar |", "|---|---|---|---|"]
    for name, spec in {**COMPONENT_COMMON, **fl.fields}.items():
        required = "yes" if name == "flavor" or name in fl.required else "no"
        words = f"`{fl.name}`" if name == "flavor" else grammar(spec)
        out.append(f"| `{name}` | {_type(spec)} | {required} | {_cell(words)} |")
    fields, facts, apt, pip = sample_facts(fl)
    by_value = {str(v): k for k, v in fields.items() if isinstance(v, str)}
    out += ["", "Installs from the distribution's archive (locked in images.lock): " + (", ".join(f"`{p}`" for p in apt) or "nothing") + ".",
            "Pip requirements it asks the lock for (sample): " + (", ".join(f"`{r}`" for r in pip) or "none") + "."]
    out += ["", f"Facts (`{fl.axis}.*`, besides key/flavor/tag), with a sample component whose fields are "
            + (", ".join(f"`{k}`=`{v}`" for k, v in fields.items() if isinstance(v, str)) or "none") + ":", ""]
    out += ["| fact | sample value | where it comes from |", "|---|---|---|"]
    for name, value in facts.items():
        origin = f"the `{by_value[str(value)]}` field" if str(value) in by_value else f"computed by `{type(fl).__name__}.facts()`"
        if value == "" and name in fl.fields:
            origin = f"the `{name}` field ('' when unset)"
        elif APT_SAMPLE.split(":")[1].split("-")[0] in str(value) and apt:
            origin = f"the locked version of an apt package (sample pin `{APT_SAMPLE}`), computed by `{type(fl).__name__}.facts()`"
        out.append(f"| `{fl.axis}.{name}` | `{_cell(str(value))}` | {origin} |")
    return out + [""]


def flavor_reference() -> str:
    from .render import PARTIAL_CONTEXT

    out = [
        "# Flavor reference",
        "",
        "<!-- generated by `buildtool docs --flavors` from buildtool/components/, buildtool/config/schema.py and",
        "     buildtool/render/render.py; do not edit: tests/unit/test_flavor_docs.py fails when it is stale -->",
        "",
        "Every component in images.yaml (`components.<axis>.<key>`) names a `flavor`; the flavor decides which",
        "fields the component may have, the layer its partial renders, and the facts it adds to each variant.",
        "How to add one: [adding-a-flavor.md](adding-a-flavor.md).",
        "",
        "## What a partial can read",
        "",
        "Each partial (`templates/partials/*.Dockerfile.j2`, rendered with Jinja's StrictUndefined) gets:",
        "",
        "| name | what |",
        "|---|---|",
        *(f"| `{k}` | {_cell(v)} |" for k, v in PARTIAL_CONTEXT.items()),
        "",
        "## Facts",
        "",
        "A variant's facts are a flat mapping of names to values; rules (`matrix.rules`), tag templates and",
        "partials (`facts[\"mpi.version\"]`) read them. A node's `facts` hold the facts of its own layer and",
        "the layers below it (os, system, python, mpi, accelerator, onnxruntime in that order).",
        "",
        "Facts of every variant:",
        "",
        "| fact | what |",
        "|---|---|",
        *(f"| `{k}` | {_cell(v)} |" for k, v in OS_FACTS.items()),
        "",
        "Facts of every axis (" + ", ".join(f"`{a}`" for a in LAYER_AXES) + "), whatever the flavor:",
        "",
        "| fact | what |",
        "|---|---|",
        *(f"| `{k}` | {_cell(v)} |" for k, v in AXIS_FACTS.items()),
        "",
        "The `none` flavor (no layer; usable on every axis but python) adds only `<axis>.version` = ''.",
        "",
        "## Common fields",
        "",
        "Every component may also have `tag` (its part of image names: a template of `{fact}` placeholders",
        "over its own facts, e.g. `{version}`) and `description` (free text).",
        "",
    ]
    for axis in LAYER_AXES:
        names = [n for n in flavors_for(axis) if n != "none"]
        out += [f"## Axis `{axis}`", "", "Flavors: " + ", ".join(f"`{n}`" for n in flavors_for(axis)) + ".", ""]
        for name in names:
            out += _flavor_section(FLAVORS[name])
    out += ["## The system layer", "", _doc(SYSTEM), "",
            f"Not a component: every image has it. Partial `templates/{SYSTEM.partial}`; no fields; its facts are the `system.*` above.", ""]
    return "\n".join(out).rstrip("\n") + "\n"
