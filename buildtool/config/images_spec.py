"""The shape of images.yaml: one schema object per section, checked by loader.py and turned into a JSON Schema by schema_json.py."""

from __future__ import annotations

import re

from ..components import property_names
from .extras import APT_REPOSITORY, ARCHIVE_KEY, extra_spec
from .model import AXES, LAYER_AXES, PLATFORMS
from .schema import (
    AbsPath,
    Any_,
    Bool,
    Dict,
    Either,
    FreeText,
    Int,
    List,
    Locale,
    Map,
    Name,
    Scalar,
    Sha256,
    Spec,
    Str,
    Template,
    Uid,
    Url,
    UserName,
    Version,
    no_control,
)

DIGEST_REF = re.compile(r"^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$")
ABS_PATH = re.compile(r"^/[^\s]*$")
FACT = re.compile(r"^(os|python|mpi|accelerator|onnxruntime|system)(\.[a-z_][a-z0-9_]*)?$")

SCHEMA_VERSION = 1
FACT_WHAT = "a fact <axis>.<field>, axis one of os, system, python, mpi, accelerator, onnxruntime"

BOOTSTRAP = Map(
    {
        "tool": Str(choices=("debootstrap", "debuerreotype")),
        "suite": Name(),
        "mirror": Url(),
        "variant": Str(choices=("minbase", "buildd", "fakechroot")),
        "components": List(Name(), min_items=1, unique=True),
        "security_mirror": Url(),
        "script": Name(),
    },
    required=("tool", "suite", "mirror"),
    defaults={"variant": "minbase", "components": ["main"]},
    what="a bootstrap recipe",
)

BASE = Map(
    {
        "family": Str(choices=("debian", "ubuntu")),
        "version": Version(),
        "codename": Name(),
        "image": Str(pattern=DIGEST_REF, what="a registry reference pinned by digest: name:tag@sha256:<64 hex>"),
        "python": Version(),
        "tag": Str(what="the base's part of image names, e.g. 'ubuntu22.04'"),
        "bootstrap": BOOTSTRAP,
        "provides": Dict(Version(), what="a mapping of what the image ships to its exact version (cuda, cudnn, nccl)"),
        "resolve_on": Name(),
        "platforms": List(Str(choices=PLATFORMS), min_items=1, unique=True),
    },
    required=("family", "version", "codename", "image", "python", "tag"),
    what="a base",
)

SYSTEM = Map(
    {
        "user": UserName(),
        "uid": Uid(),
        "locale": Locale(),
        "workdir": AbsPath(),
    },
    required=("user", "uid"),
    defaults={"locale": "C.UTF-8"},
    what="the system layer",
)

PROJECT = Map(
    {"name": Name(), "source": Url(), "vendor": FreeText(), "licenses": FreeText(), "description": FreeText()},
    required=("name",),
    what="project metadata",
)

AXIS_VALUES = Either((Str(), List(Str(), min_items=1, unique=True)), description="a name or a list of names")
# A selector names axes (component keys) and flavor properties (`accelerator.kind: cuda`: the keys whose flavor has it).
SELECTOR_KEYS = AXES + tuple(f"{axis}.{name}" for axis in LAYER_AXES for name in property_names(axis))
SELECTOR = Dict(AXIS_VALUES, key=Str(choices=SELECTOR_KEYS, noun="axis"),
                what="a selector: axis (or <axis>.<flavor property>) -> value or list of values")

MATCHER = Either(
    (
        Scalar(),
        List(Scalar(), min_items=1),
        Map(
            {"not": Either((Scalar(), List(Scalar(), min_items=1))), "version": Str(what="a version range such as '>=3.8,<3.13'"),
             "same": Str(pattern=FACT, what=FACT_WHAT + " (e.g. 'accelerator.cuda')"), "parts": Int(minimum=1)},
            what="a matcher",
        ),
    ),
    description="a value, a list of values, or a mapping with one of not/version/same",
)
RULE = Map(
    {
        "id": Name(),
        "reason": FreeText(),
        "when": Dict(MATCHER, key=Str(pattern=FACT, what=FACT_WHAT + " (e.g. 'accelerator.flavor')")),
        "require": Dict(MATCHER, key=Str(pattern=FACT, what=FACT_WHAT + " (e.g. 'python.version')"), min_items=1),
    },
    required=("id", "reason", "require"),
    defaults={"when": {}},
    what="a rule",
)

MATRIX = Map(
    {
        "axes": Map({a: List(Name(), min_items=1, unique=True) for a in AXES}, required=AXES, what="the axes"),
        "exclude": List(SELECTOR),
        "include": List(SELECTOR),
        "rules": List(RULE),
    },
    required=("axes",),
    defaults={"exclude": [], "include": [], "rules": []},
    what="the matrix",
)

PUBLISH_ENTRY = Map(
    {"on": SELECTOR, "group": Name(), "repository": Template(), "release": Template(), "moving": List(Template(), unique=True)},
    what="a publish entry (on / group -> repository, release, moving)",
)

TAGS = Map(
    {"image": Template(), "release": Template(), "moving": List(Template(), min_items=1, unique=True), "repository": Template(),
     "publish": List(PUBLISH_ENTRY)},
    required=("image",),
    defaults={"release": "{date}.v{n}", "moving": ["latest"], "repository": "{image}", "publish": []},
    what="tag templates",
)

GROUP = Map(
    {"select": List(SELECTOR, min_items=1), "exclude": List(SELECTOR), "except": List(Name(), unique=True), "description": FreeText()},
    required=("select",),
    defaults={"exclude": [], "except": []},
    what="a group",
)

CHECK = Map(
    {
        "name": Name(),
        "on": SELECTOR,
        "command": FreeText(4096),
        "exit": Int(),
        "stdout": Str(max_len=1024, validator=lambda v: no_control(v) or _regex_problem(v), what="a regular expression the output must match, on one line"),
        "user": UserName(),
        "file": AbsPath(),
        "mode": Str(pattern=re.compile(r"^0?[0-7]{3,4}$"), what="an octal mode such as '0755'"),
        "owner": Str(pattern=re.compile(r"[a-z_][a-z0-9_-]{0,31}(?::[a-z_][a-z0-9_-]{0,31})?"), what="user[:group] (useradd names)"),
        "exists": Bool(),
        "env": Dict(FreeText(), key=Str(pattern=re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$"), what="an environment variable name")),
        "label": Dict(FreeText(), key=Str(pattern=re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*"), max_len=256, what="a label name (letters, digits, '.', '_', '/', '-')")),
    },
    required=("name",),
    what="a declared check",
)

COMPONENT_COMMON: dict[str, Spec] = {"flavor": Str(), "tag": Template(), "description": FreeText()}
# Node ids are '<base key>.sys[.<component key>...]': with dot-free component keys and no 'sys' part in a
# base key, two different chains can never spell the same id.
COMPONENT_KEY = Str(pattern=re.compile(r"[a-z0-9][a-z0-9_-]*"), max_len=64,
                    what="a component key: lowercase letters, digits, '_', '-' (no '.': keys are joined with '.' into node ids)")
BASE_KEY = Str(pattern=re.compile(r"[a-z0-9][a-z0-9_.-]*"), max_len=64, validator=lambda k: "'sys' is reserved for system layers in node ids" if "sys" in k.split(".") else None,
               what="a base key: lowercase letters, digits, '.', '_', '-', without a '.sys' part")

TOOLS = Map(
    {"uv": Map({"version": Version(), "sha256": List(Sha256(), min_items=1, unique=True)}, required=("version", "sha256"),
               what="uv from PyPI: its exact version and the sha256 of each platform's wheel")},
    what="build tools the images are built with (not part of what they ship)",
)

TOP = Map(
    {
        "schema": Int(minimum=1),
        "tools": TOOLS,
        "project": PROJECT,
        "system": SYSTEM,
        "bases": Dict(BASE, key=BASE_KEY, min_items=1),
        "components": Map({a: Dict(Any_(), key=COMPONENT_KEY, min_items=1) for a in LAYER_AXES}, required=LAYER_AXES, what="components per axis"),
        "matrix": MATRIX,
        "tags": TAGS,
        "groups": Dict(GROUP, min_items=1),
        "default_group": Name(),
        "checks": List(CHECK),
        "apt_repositories": Dict(APT_REPOSITORY, key=ARCHIVE_KEY),
        "extras": List(extra_spec(SELECTOR)),
    },
    required=("schema", "project", "system", "bases", "components", "matrix", "tags", "groups", "default_group"),
    defaults={"checks": [], "tools": {}, "apt_repositories": {}, "extras": []},
    what="images.yaml",
)



def _regex_problem(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"not a regular expression ({exc})"
    return None
