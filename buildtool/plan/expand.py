"""Axes product - excludes + includes, filtered by rules, named by the tag template. Pure."""

from __future__ import annotations

import fnmatch
import itertools
import re
from dataclasses import dataclass
from typing import Any

from ..components import SYSTEM, flavor
from ..config.model import AXES, LAYER_AXES, Base, Config, Dropped, Selector, Variant
from ..config.templating import TemplateSyntaxError, fill
from ..errors import Location, UserError
from ..lock.format import Lock
from .rules import first_violation, rule_facts
from .tags import render_image_name

Combo = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Expansion:
    variants: tuple[Variant, ...]
    dropped: tuple[Dropped, ...]


def variant_facts(config: Config, combo: Combo, lock: Lock) -> dict[str, Any]:
    """Every fact about one combination: os.*, system.*, and <axis>.* from each flavor."""
    chosen = dict(combo)
    base = config.bases[chosen["os"]]
    apt = lock.apt.get(base.key, {})
    facts = _os_facts(config, base, apt, _refreshed(lock, base.key))
    for axis in LAYER_AXES:
        facts.update(_axis_facts(config, axis, chosen[axis], base, apt))
    return facts


def _refreshed(lock: Lock, base: str) -> str:
    locked = lock.bases.get(base)
    return "; ".join(locked.refreshed) if locked is not None else ""


def _os_facts(config: Config, base: Base, apt: dict[str, str], refreshed: str = "") -> dict[str, Any]:
    """The os.* and system.* part of a variant's facts."""
    facts: dict[str, Any] = {
        "os": base.key,
        "os.family": base.family,
        "os.version": base.version,
        "os.codename": base.codename,
        "os.python": base.python,
        "os.tag": base.tag,
        "os.apt_refreshed": refreshed,
        "system.user": config.system.user,
        "system.uid": config.system.uid,
        "system.workdir": config.system.workdir,
        "system.uv": config.system.uv,
        "system.uv_sha256": " ".join(config.system.uv_sha256),
        "system.locale": config.system.locale,
    }
    facts.update({f"os.{k}": v for k, v in base.provides})
    facts.update({f"system.{k}": v for k, v in SYSTEM.facts(None, base, apt).items()})  # type: ignore[arg-type]
    return facts


def _axis_facts(config: Config, axis: str, key: str, base: Base, apt: dict[str, str]) -> dict[str, Any]:
    """The <axis> and <axis>.* part of a variant's facts: one component on one base."""
    component = config.component(axis, key)
    fl = flavor(component.flavor)
    own = {"key": component.key, "flavor": component.flavor, **fl.properties(), **fl.facts(component, base, apt)}
    own["tag"] = _component_tag(config, component.axis, component.key, component.fields.get("tag", ""), own)
    facts: dict[str, Any] = {axis: component.key}
    facts.update({f"{axis}.{k}": v for k, v in own.items()})
    return facts


def _component_tag(config: Config, axis: str, key: str, template: str, own: dict[str, Any]) -> str:
    try:
        return fill(template, own)
    except (KeyError, TemplateSyntaxError) as exc:
        raise UserError(
            f"tag template {template!r} names an unknown field {exc}" if isinstance(exc, KeyError) else f"tag template {template!r}: {exc}",
            where=config.doc.where(("components", axis, key, "tag")),
            key=f"components.{axis}.{key}.tag",
            expected="placeholders among: " + ", ".join("{" + k + "}" for k in sorted(own)),
        ) from None


def facts_parts(config: Config, lock: Lock) -> dict[tuple[str, ...], dict[str, Any]]:
    """Every base's part of the facts and every (axis, component, base)'s: made once up front, so that a bad tag
    template is reported before any combination is walked (the first one a walk over the axes product would meet)
    and the rules' fact names are checked against what the flavors provide."""
    parts: dict[tuple[str, ...], dict[str, Any]] = {}
    for key in config.axes["os"]:
        base, apt = config.bases[key], lock.apt.get(key, {})
        parts[(key,)] = _os_facts(config, base, apt, _refreshed(lock, key))
        order = [(a, config.axes[a][0]) for a in LAYER_AXES] + [(a, v) for a in reversed(LAYER_AXES) for v in config.axes[a][1:]]
        for axis, value in order:
            parts[(axis, value, key)] = _axis_facts(config, axis, value, base, apt)
    return parts


def expand(config: Config, lock: Lock, check_rule_facts: bool = True) -> Expansion:
    """`check_rule_facts=False`: a platform's view (plan/platforms.py), whose fewer bases may lack a fact a rule
    names (os.cuda of the NVIDIA base); the whole matrix was checked, and a missing fact reads as ''."""
    parts = facts_parts(config, lock)
    if check_rule_facts:
        _check_rule_facts(config, {name for part in parts.values() for name in part})
    kept: dict[Combo, dict[str, Any]] = {}
    dropped: list[Dropped] = []
    for values in itertools.product(*(config.axes[a] for a in AXES)):
        combo = tuple(zip(AXES, values))
        chosen = dict(combo)
        excluded = next((i for i, sel in enumerate(config.exclude) if sel.matches(chosen)), None)
        if excluded is not None:
            dropped.append(Dropped(combo, f"matrix.exclude[{excluded}] ({config.path}:{config.exclude[excluded].line})"))
            continue
        facts = variant_facts(config, combo, lock)
        rule = first_violation(config.rules, facts)
        if rule is not None:
            dropped.append(Dropped(combo, f"rule {rule.id} ({config.path}:{rule.line}): {rule.reason}"))
            continue
        kept[combo] = facts
    for i, sel in enumerate(config.include):
        combo = tuple((a, dict(sel.values)[a][0]) for a in AXES)
        facts = kept.get(combo) or variant_facts(config, combo, lock)
        rule = first_violation(config.rules, facts)
        if rule is not None:
            raise UserError(
                f"matrix.include[{i}] breaks rule {rule.id!r}: {rule.reason}",
                where=Location(config.path, sel.line),
                key=f"matrix.include[{i}]",
                expected=f"a combination allowed by rule {rule.id} (line {rule.line})",
                found=_combo_text(combo),
            )
        if combo not in kept:
            kept[combo] = facts
            dropped = [d for d in dropped if d.combo != combo]
    if not kept:
        raise UserError(
            "the matrix is empty: every combination was excluded or broke a rule",
            where=config.doc.where(("matrix",)),
            key="matrix",
            expected="at least one combination",
            hint="run `buildtool list --why-excluded` to see what dropped each combination",
        )
    variants = tuple(Variant(combo, facts, render_image_name(config, facts)) for combo, facts in kept.items())
    _check_collisions(config, variants)
    return Expansion(variants=variants, dropped=tuple(dropped))


def _combo_text(combo: Combo) -> str:
    return " ".join(f"{a}={v}" for a, v in combo)


def _check_rule_facts(config: Config, known: set[str]) -> None:
    for index, rule in enumerate(config.rules):
        for name in sorted(rule_facts(rule)):
            if name not in known:
                import difflib

                close = difflib.get_close_matches(name, sorted(known), n=1)
                raise UserError(
                    f"rule {rule.id!r} names an unknown fact {name!r}",
                    where=Location(config.path, rule.line),
                    key=f"matrix.rules[{index}]",
                    expected="a fact such as " + ", ".join(sorted(k for k in known if k.startswith(name.split('.')[0] + "."))[:8]),
                    hint=f"did you mean {close[0]!r}?" if close else None,
                )


def _check_collisions(config: Config, variants: tuple[Variant, ...]) -> None:
    seen: dict[str, Variant] = {}
    for v in variants:
        if v.name in seen:
            raise UserError(
                f"tag collision: two images would be named {v.name!r}",
                where=Location(config.path, config.tags.line),
                key="tags.image",
                expected="a template that tells every image apart",
                found=f"{_combo_text(seen[v.name].combo)}  and  {_combo_text(v.combo)}",
                hint="add the differing axis to tags.image or give the components distinct `tag` values",
            )
        seen[v.name] = v


def select(config: Config, variants: tuple[Variant, ...], group: str | None, filters: tuple[str, ...] = ()) -> tuple[Variant, ...]:
    """The variants of a group (default group when None), narrowed by --filter terms."""
    name = config.default_group if group is None else group
    if name != "all" and name not in config.groups:
        raise UserError(f"unknown group {name!r}", where=Location("--group"), key="--group",
                        expected="one of " + ", ".join(["all", *sorted(config.groups)]), found=name)
    chosen = variants if name == "all" else tuple(v for v in variants if in_group(config, name, dict(v.combo)))
    for term in filters:
        check_filter(config, term)
    for term in filters:
        chosen = tuple(v for v in chosen if filter_matches(term, v))
    return chosen


def check_filter(config: Config, term: str) -> None:
    """A --filter names an axis and values it has (a misspelt value would silently select nothing)."""
    axis, values = parse_filter(term)
    if axis == "name":
        return
    known = config.axes[axis]
    for value in values:
        if value not in known:
            raise UserError(f"unknown {axis} {value!r} in --filter {term!r}", where=Location("--filter"), key="--filter",
                            expected=f"values of matrix.axes.{axis}: " + ", ".join(known), found=value)


def in_group(config: Config, name: str, combo: dict[str, str], _stack: tuple[str, ...] = ()) -> bool:
    if name in _stack:
        raise UserError(f"groups {' -> '.join(_stack + (name,))} refer to each other in a cycle",
                        where=config.doc.where(("groups", name, "except")), key=f"groups.{name}.except", expected="no cycles")
    group = config.groups[name]
    if not any(sel.matches(combo) for sel in group.select):
        return False
    if any(sel.matches(combo) for sel in group.exclude):
        return False
    return not any(in_group(config, other, combo, _stack + (name,)) for other in group.except_groups)


FILTER = re.compile(r"(os|python|mpi|accelerator|onnxruntime|name)=([^=\s]+)")


def parse_filter(term: str) -> tuple[str, tuple[str, ...]]:
    m = FILTER.fullmatch(term)
    if not m or "" in m.group(2).split(","):
        raise UserError(f"bad --filter {term!r}", where=Location("--filter"), key="--filter", found=term,
                        expected="AXIS=VALUE[,VALUE] with AXIS one of os, python, mpi, accelerator, onnxruntime, or name=GLOB")
    return m.group(1), tuple(m.group(2).split(","))


def filter_matches(term: str, variant: Variant) -> bool:
    axis, values = parse_filter(term)
    if axis == "name":
        return any(fnmatch.fnmatchcase(variant.name, v) for v in values)
    return variant.get(axis) in values


__all__ = ["Expansion", "expand", "select", "in_group", "variant_facts", "parse_filter", "Selector"]
