"""images.yaml (+ site overlay) -> a validated, typed Config. Every error names file:line and key."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..components import FLAVORS, flavor, flavors_for, property_values
from .extras import extras, repositories
from .images_spec import COMPONENT_COMMON, SCHEMA_VERSION, TOP
from .model import AXES, DEFAULT_PLATFORM, LAYER_AXES, Base, Bootstrap, Component, Config, Group, Matcher, Rule, Selector, SystemSpec, TagSpec
from .publish_tags import publish_rules
from .schema import Map, Str, fail, type_name
from .site import load_site
from .source import KeyPath, Said, SourceDoc, load_yaml

Props = dict[str, dict[str, dict[str, str]]]  # axis -> component key -> its flavor's properties


def load_config(path: Path, site_path: Path | None = None, env: dict[str, str] | None = None) -> Config:
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        what = "the file is empty" if doc.data is None else type_name(doc.data)
        raise fail(doc, (), "images.yaml must be a mapping at the top level", "a mapping with keys " + ", ".join(TOP.fields), Said(what))
    raw = TOP.check(doc, (), doc.data)
    if raw["schema"] != SCHEMA_VERSION:
        raise fail(doc, ("schema",), f"unsupported schema version {raw['schema']}", f"schema: {SCHEMA_VERSION}", raw["schema"])
    _check_tag_templates(doc, raw["tags"])
    bases = {k: _base(doc, k, v) for k, v in raw["bases"].items()}
    components = _components(doc, raw["components"])
    _check_unique_keys(doc, bases, components)
    axes = _axes(doc, raw["matrix"]["axes"], bases, components)
    props = _properties(axes, components)
    selectors = lambda key: tuple(_selector(doc, ("matrix", key, i), s, axes, props) for i, s in enumerate(raw["matrix"][key]))  # noqa: E731
    include = selectors("include")
    for index, (sel, item) in enumerate(zip(include, raw["matrix"]["include"])):
        missing = [a for a in AXES if a not in item]
        if missing:
            raise fail(doc, ("matrix", "include", index), "an include must name every axis",
                       "a value for each of " + ", ".join(AXES), Said(f"no {', '.join(missing)}"))
        lists = [a for a, vals in sel.values if len(vals) != 1]
        if lists:
            raise fail(doc, ("matrix", "include", index, lists[0]), "an include names exactly one combination",
                       "one value per axis, not a list (use one include per combination)", item[lists[0]])
    rules = tuple(_rule(doc, ("matrix", "rules", i), r) for i, r in enumerate(raw["matrix"]["rules"]))
    _check_unique(doc, ("matrix", "rules"), [r.id for r in rules], "rule id")
    groups = {name: _group(doc, name, g, axes, props) for name, g in raw["groups"].items()}
    for name, group in groups.items():
        for i, other in enumerate(group.except_groups):
            if other == name:
                raise fail(doc, ("groups", name, "except", i), f"group {name!r} cannot except itself",
                           "another group's name: " + ", ".join(sorted(set(groups) - {name})), other)
            if other not in groups:
                raise _unknown(doc, ("groups", name, "except", i), other, sorted(set(groups) - {name}), "another group's name", "group")
    _check_group_cycles(doc, groups)
    if raw["default_group"] not in groups:
        raise _unknown(doc, ("default_group",), raw["default_group"], sorted(groups), "one of the groups", "group")
    checks = tuple(_declared_check(doc, ("checks", i), c, axes, props) for i, c in enumerate(raw["checks"]))
    _check_unique(doc, ("checks",), [c["name"] for c in checks], "check name")
    system = raw["system"]
    site = load_site(site_path, env if env is not None else dict(os.environ))
    return Config(
        path=str(path),
        doc=doc,
        project=raw["project"],
        system=SystemSpec(user=system["user"], uid=system["uid"], locale=system["locale"], workdir=system.get("workdir", f"/home/{system['user']}"),
                          uv=raw["tools"].get("uv", {}).get("version", ""), uv_sha256=tuple(raw["tools"].get("uv", {}).get("sha256", ()))),
        bases=bases,
        components=components,
        axes=axes,
        exclude=selectors("exclude"),
        include=include,
        rules=rules,
        tags=TagSpec(image=raw["tags"]["image"], release=raw["tags"]["release"], moving=tuple(raw["tags"]["moving"]), line=doc.where(("tags", "image")).line or 0,
                     repository=raw["tags"]["repository"], moving_line=doc.where(("tags", "moving")).line or 0,
                     repository_line=doc.where(("tags", "repository")).line or 0,
                     publish=publish_rules(doc, raw["tags"], lambda p, r: _selector(doc, p, r, axes, props), set(groups))),
        groups=groups,
        default_group=raw["default_group"],
        checks=checks,
        site=site,
        apt_repositories=(repos := repositories(doc, raw["apt_repositories"], {"debian", "debian-security", "ubuntu"})),
        extras=extras(doc, raw["extras"], repos, lambda p, r: _selector(doc, p, r, axes, props)),
    )


def _base(doc: SourceDoc, key: str, raw: dict[str, Any]) -> Base:
    boot = raw.get("bootstrap")
    return Base(
        key=key,
        family=raw["family"],
        version=raw["version"],
        codename=raw["codename"],
        image=raw["image"],
        python=raw["python"],
        tag=raw["tag"],
        bootstrap=Bootstrap(boot["tool"], boot["suite"], boot["mirror"], boot["variant"], tuple(boot["components"]),
                            boot.get("security_mirror", ""), boot.get("script", "")) if boot else None,
        provides=tuple(sorted(raw.get("provides", {}).items())),
        resolve_on=raw.get("resolve_on", ""),
        platforms=tuple(raw.get("platforms", (DEFAULT_PLATFORM,))),
    )


def _components(doc: SourceDoc, raw: dict[str, dict[str, Any]]) -> dict[str, dict[str, Component]]:
    out: dict[str, dict[str, Component]] = {}
    for axis, entries in raw.items():
        out[axis] = {}
        for key, body in entries.items():
            path: KeyPath = ("components", axis, key)
            if not isinstance(body, dict):
                raise fail(doc, path, "wrong type", "a mapping with 'flavor' and the flavor's fields", type_name(body))
            name = body.get("flavor")
            choices = flavors_for(axis)
            if isinstance(name, str) and name not in choices and name in FLAVORS:
                raise fail(doc, path + ("flavor",), f"flavor {name!r} belongs on the {FLAVORS[name].axis} axis, not {axis}",
                           f"a flavor for {axis}: " + ", ".join(choices), name,
                           f"move this component under components.{FLAVORS[name].axis}")
            Str(choices=choices).check(doc, path + ("flavor",), name) if "flavor" in body else None
            if name is None:
                raise fail(doc, path, "missing required key 'flavor'", f"{_a(axis)} component with flavor: one of " + ", ".join(choices))
            fl = flavor(name)
            spec = Map({**COMPONENT_COMMON, **fl.fields}, required=fl.required, what=f"{_a(name)} component")
            fields = spec.check(doc, path, body)
            fields.pop("flavor")
            out[axis][key] = Component(axis=axis, key=key, flavor=name, fields=fields)
    return out


def _check_unique_keys(doc: SourceDoc, bases: dict[str, Base], components: dict[str, dict[str, Component]]) -> None:
    """Node ids are made of these keys, so a key may name one thing only (bases and every axis)."""
    seen: dict[str, KeyPath] = {k: ("bases", k) for k in bases}
    for axis, entries in components.items():
        empty = [key for key, c in entries.items() if not c.is_layer]
        if len(empty) > 1:
            # Two "nothing" choices would yield the same layer chain, i.e. the same node twice.
            raise fail(doc, ("components", axis, empty[1]), f"axis {axis!r} has two components with flavor 'none' ({empty[0]!r} and {empty[1]!r})",
                       "at most one 'none' component per axis", empty[1])
        for key, component in entries.items():
            if not component.is_layer:
                continue
            if key in seen:
                raise fail(doc, ("components", axis, key), f"key {key!r} is already used at {'.'.join(map(str, seen[key]))}",
                           "a key unique across bases and all axes (it becomes part of node ids)", key)
            seen[key] = ("components", axis, key)


def _axes(doc: SourceDoc, raw: dict[str, list[str]], bases: dict[str, Base], components: dict[str, dict[str, Component]]) -> dict[str, tuple[str, ...]]:
    for axis, values in raw.items():
        known = list(bases) if axis == "os" else list(components[axis])
        where = "bases" if axis == "os" else f"components.{axis}"
        for i, value in enumerate(values):
            if value not in known:
                raise _unknown(doc, ("matrix", "axes", axis, i), value, known, f"a key of {where}")
    return {a: tuple(raw[a]) for a in AXES}


def _unknown(doc: SourceDoc, path: KeyPath, value: Any, known: list[str], what: str, noun: str = "value"):
    import difflib

    close = difflib.get_close_matches(str(value), known, n=1)
    return fail(doc, path, f"unknown {noun} {value!r}", f"{what}: " + ", ".join(known), value, f"did you mean {close[0]!r}?" if close else None)


def _check_group_cycles(doc: SourceDoc, groups: dict[str, Group]) -> None:
    """`except` refers to other groups; a cycle would make membership undefined."""
    done: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in stack:
            cycle = stack[stack.index(name):] + (name,)
            raise fail(doc, ("groups", cycle[0], "except"), f"groups {' -> '.join(cycle)} refer to each other in a cycle",
                       "groups whose `except` lists never lead back to themselves", Said(" -> ".join(cycle)))
        if name in done:
            return
        for other in groups[name].except_groups:
            visit(other, stack + (name,))
        done.add(name)

    for name in groups:
        visit(name, ())


def _properties(axes: dict[str, tuple[str, ...]], components: dict[str, dict[str, Component]]) -> Props:
    return {axis: {key: {k: str(v) for k, v in flavor(components[axis][key].flavor).properties().items()} for key in keys}
            for axis, keys in axes.items() if axis in LAYER_AXES}


def _selector(doc: SourceDoc, path: KeyPath, raw: dict[str, Any], axes: dict[str, tuple[str, ...]], props: Props) -> Selector:
    """Axis values as given; a `<axis>.<property>` key becomes the axis's keys whose flavor has one of the values
    (intersected with the axis's own entry when both are given), so expansion only ever sees component keys."""
    values = []
    for axis in AXES:
        allowed: tuple[str, ...] | None = None
        if axis in raw:
            items = raw[axis] if isinstance(raw[axis], list) else [raw[axis]]
            for i, item in enumerate(items):
                if item not in axes[axis]:
                    sub = path + (axis, i) if isinstance(raw[axis], list) else path + (axis,)
                    raise _unknown(doc, sub, item, list(axes[axis]), f"a value of matrix.axes.{axis}")
            allowed = tuple(items)
        for key in raw:
            if not key.startswith(axis + "."):
                continue
            name = key.split(".", 1)[1]
            items = raw[key] if isinstance(raw[key], list) else [raw[key]]
            wanted = [_fact_text(item) for item in items]
            known = sorted({p[name] for p in props.get(axis, {}).values() if name in p} | set(property_values(axis, name)))
            for i, item in enumerate(wanted):
                if item not in known:
                    sub = path + (key, i) if isinstance(raw[key], list) else path + (key,)
                    raise _unknown(doc, sub, items[i], known, f"a {name} of a flavor on matrix.axes.{axis}")
            chosen = tuple(k for k in axes[axis] if props[axis][k].get(name) in wanted)
            allowed = chosen if allowed is None else tuple(k for k in allowed if k in chosen)
        if allowed is not None:
            values.append((axis, allowed))
    return Selector(values=tuple(values), line=doc.where(path).line or 0)


def _fact_text(value: Any) -> str:
    """A matcher's value as facts spell it: YAML's true/false match the flavor properties "true"/"false" (python.venv)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _matcher(doc: SourceDoc, path: KeyPath, raw: Any) -> Matcher:
    if isinstance(raw, list):
        return Matcher("in", tuple(_fact_text(v) for v in raw))
    if not isinstance(raw, dict):
        return Matcher("eq", _fact_text(raw))
    ops = [k for k in ("not", "version", "same") if k in raw]
    if len(ops) != 1:
        raise fail(doc, path, "a matcher mapping needs exactly one of not, version, same", "one of not/version/same", raw)
    op = ops[0]
    if "parts" in raw and op != "same":
        raise fail(doc, path + ("parts",), "'parts' goes with 'same' only", "same: <fact> with parts: N", raw)
    if op == "not":
        value = raw["not"]
        return Matcher("not_in", tuple(_fact_text(v) for v in (value if isinstance(value, list) else [value])))
    if op == "version":
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            SpecifierSet(raw["version"])
        except InvalidSpecifier:
            raise fail(doc, path + ("version",), f"invalid version range {raw['version']!r}", "a PEP 440 range such as '>=3.8,<3.13'",
                       raw["version"]) from None
        return Matcher("version", raw["version"])
    return Matcher("same", raw["same"], raw.get("parts", 0))


def _rule(doc: SourceDoc, path: KeyPath, raw: dict[str, Any]) -> Rule:
    when = tuple((k, _matcher(doc, path + ("when", k), v)) for k, v in raw["when"].items())
    require = tuple((k, _matcher(doc, path + ("require", k), v)) for k, v in raw["require"].items())
    return Rule(id=raw["id"], reason=raw["reason"], when=when, require=require, line=doc.where(path).line or 0)


def _group(doc: SourceDoc, name: str, raw: dict[str, Any], axes: dict[str, tuple[str, ...]], props: Props) -> Group:
    path: KeyPath = ("groups", name)
    return Group(
        name=name,
        select=tuple(_selector(doc, path + ("select", i), s, axes, props) for i, s in enumerate(raw["select"])),
        exclude=tuple(_selector(doc, path + ("exclude", i), s, axes, props) for i, s in enumerate(raw["exclude"])),
        except_groups=tuple(raw["except"]),
    )


CHECK_KINDS = ("command", "file", "env", "label")


def _declared_check(doc: SourceDoc, path: KeyPath, raw: dict[str, Any], axes: dict[str, tuple[str, ...]], props: Props) -> dict[str, Any]:
    kinds = [k for k in CHECK_KINDS if k in raw]
    if len(kinds) != 1:
        raise fail(doc, path, "a check tests exactly one thing", "exactly one of command, file, env, label",
                   Said(", ".join(kinds) if kinds else "none of them"))
    kind = kinds[0]
    allowed = {"command": {"exit", "stdout", "user"}, "file": {"mode", "owner", "exists"}, "env": set(), "label": set()}[kind]
    for extra in set(raw) - {"name", "on", kind} - allowed:
        raise fail(doc, path + (extra,), f"{extra!r} does not apply to {_a(kind)} check",
                   f"keys of {_a(kind)} check: " + ", ".join(["name", "on", kind, *sorted(allowed)]), extra)
    out = dict(raw)
    out["kind"] = kind
    if "on" in raw:
        out["on"] = _selector(doc, path + ("on",), raw["on"], axes, props)
    return out


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _check_unique(doc: SourceDoc, path: KeyPath, names: list[str], what: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise fail(doc, path + (i,), f"duplicate {what} {name!r}", f"each {what} once", name, f"also at index {seen[name]}")
        seen[name] = i


TAG_TEXT = re.compile(r"[A-Za-z0-9_.-]*")


def _check_tag_templates(doc: SourceDoc, tags: dict[str, Any]) -> None:
    """Release and moving tags are OCI tags once filled: their literal text must be tag text, and a
    release tag names only {date} and {n} (with {n}, the counter of one day's releases)."""
    from .schema import IMAGE_TAG
    from .templating import fill, parse

    release = tags["release"]
    names = [n for _, n in parse(release) if n is not None]
    extra = [n for n in names if n not in ("date", "n")]
    if extra or "n" not in names:
        raise fail(doc, ("tags", "release"), "tags.release may use {date} and {n} only, and must use {n}" + (f" (found {{{extra[0]}}})" if extra else ""),
                   "a template such as {date}.v{n}", release)
    sample = fill(release, {"date": "20260101", "n": 1})
    if not IMAGE_TAG.fullmatch(sample):
        raise fail(doc, ("tags", "release"), f"tags.release renders an invalid image tag {sample!r}",
                   "a tag (OCI): a letter, digit or '_', then letters, digits, '_', '.', '-', at most 128 characters", release)
    for i, template in enumerate(tags["moving"]):
        parsed = parse(template)
        bad = next((lit for lit, _ in parsed if not TAG_TEXT.fullmatch(lit)), None)
        if bad is not None or (not any(n for _, n in parsed) and not IMAGE_TAG.fullmatch(template)):
            raise fail(doc, ("tags", "moving", i), f"moving tag {template!r} is not a valid image tag",
                       "a tag (OCI): a letter, digit or '_', then letters, digits, '_', '.', '-', at most 128 characters (placeholders allowed)", template)
