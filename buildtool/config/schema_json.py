"""images.yaml's JSON Schema (draft 2020-12), made from the schema objects config/images_spec.py holds (loader.py checks with them).

`buildtool schema` prints it; schema/images.schema.json is a committed copy (a unit test keeps the two
equal) that editors read through the `# yaml-language-server: $schema=...` line of images.yaml.
The JSON Schema says less than `buildtool validate`: grammar checks written as Python functions
(PEP 440 versions, port ranges, tag template syntax) and cross-checks (keys that must exist elsewhere,
rule facts, includes) stay with the loader; their descriptions say what they expect.
"""

from __future__ import annotations

import json
from typing import Any

from ..components import flavor, flavors_for
from .model import LAYER_AXES
from .schema import Any_, Bool, Dict, Either, Int, List, Map, Scalar, Spec, Str

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://buildtool.invalid/schema/images.schema.json"


def spec_schema(spec: Spec) -> dict[str, Any]:
    """One Spec as a JSON Schema fragment."""
    if isinstance(spec, Str):
        out: dict[str, Any] = {"type": "string", "description": spec.description}
        if spec.choices is not None:
            out["enum"] = list(spec.choices)
        if spec.pattern is not None:
            out["pattern"] = "^(?:" + spec.pattern.pattern + ")$"  # the loader uses fullmatch
        if spec.max_len is not None:
            out["maxLength"] = spec.max_len
        return out
    if isinstance(spec, Int):
        out = {"type": "integer", "description": spec.description}
        if spec.minimum is not None:
            out["minimum"] = spec.minimum
        if spec.maximum is not None:
            out["maximum"] = spec.maximum
        return out
    if isinstance(spec, Bool):
        return {"type": "boolean"}
    if isinstance(spec, Scalar):
        return {"type": ["string", "number", "boolean"], "description": spec.description}
    if isinstance(spec, Any_):
        return {}
    if isinstance(spec, List):
        out = {"type": "array", "items": spec_schema(spec.item)}
        if spec.min_items:
            out["minItems"] = spec.min_items
        if spec.unique:
            out["uniqueItems"] = True
        return out
    if isinstance(spec, Dict):
        out = {"type": "object", "description": spec.description, "propertyNames": spec_schema(spec.key),
               "additionalProperties": spec_schema(spec.value)}
        if spec.min_items:
            out["minProperties"] = spec.min_items
        return out
    if isinstance(spec, Map):
        return map_schema(spec.fields, spec.required, spec.description)
    if isinstance(spec, Either):
        return {"anyOf": [spec_schema(option) for option in spec.options], "description": spec.description}
    raise TypeError(f"no JSON Schema for {type(spec).__name__}")  # pragma: no cover - a new Spec type needs a case here


def map_schema(fields: dict[str, Spec], required: tuple[str, ...], description: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "description": description,
                           "properties": {k: spec_schema(v) for k, v in fields.items()}, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


def component_schema(axis: str) -> dict[str, Any]:
    """A component of one axis: `flavor` picks which fields it may have (the flavor's own plus tag and description)."""
    from .images_spec import COMPONENT_COMMON

    names = flavors_for(axis)
    branches = []
    for name in names:
        fl = flavor(name)
        body = map_schema({**COMPONENT_COMMON, **fl.fields}, ("flavor", *fl.required), f"a component of flavor {name}")
        body["properties"]["flavor"] = {"const": name}
        branches.append({"if": {"properties": {"flavor": {"const": name}}, "required": ["flavor"]}, "then": body})
    return {
        "type": "object",
        "description": f"a {axis} component: flavor one of " + ", ".join(names) + ", and that flavor's fields",
        "required": ["flavor"],
        "properties": {"flavor": {"enum": list(names)}},
        "allOf": branches,
    }


def images_schema() -> dict[str, Any]:
    """The whole of images.yaml."""
    from .images_spec import COMPONENT_KEY, TOP

    out = spec_schema(TOP)
    components = out["properties"]["components"]["properties"]
    for axis in LAYER_AXES:
        components[axis]["additionalProperties"] = component_schema(axis)
        components[axis]["propertyNames"] = spec_schema(COMPONENT_KEY)
    return {"$schema": DIALECT, "$id": SCHEMA_ID, "title": "buildtool images.yaml", **out}


def images_schema_text() -> str:
    return json.dumps(images_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
