"""Axes product - excludes + includes, filtered by rules, named by the tag template. Pure."""

from __future__ import annotations

import fnmatch
import itertools
import re
from dataclasses import dataclass
from typing import Any

from .components import SYSTEM, flavor
from .errors import Location, UserError
from .lock import Lock
from .model import AXES, LAYER_AXES, Config, Dropped, Selector, Variant
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
    facts: dict[str, Any] = {
        "os": base.key,
        "os.family": base.family,
        "os.version": base.version,
        "os.codename": base.codename,
        "os.python": base.python,
        "os.tag": base.tag,
        "system.user": config.system.user,
        "system.uid": config.system.uid,
        "system.workdir": config.system.workdir,
        "system.locale": config.system.locale,
    }
    facts.update({f"os.{k}": v for k, v in base.provides})
    facts.update({f"system.{k}": v for k, v in SYSTEM.facts(None, base, apt).items()})  # type: ignore[arg-type]
    for axis in LAYER_AXES:
        component = config.component(axis, chosen[axis])
        own = flavor(component.flavor).facts(component, base, apt)
        own = {"key": component.key, "flavor": component.flavor, **own}
        own["tag"] = _component_tag(config, component.axis, component.key, component.fields.get("tag", ""), own)
        facts[axis] = component.key
        facts.update({f"{axis}.{k}": v for k, v in own.items()})
    return facts


def _component_tag(config: Config, axis: str, key: str, template: str, own: dict[str, Any]) -> str:
    try:
        return template.format(**own)
    except (KeyError, IndexError, ValueError) as exc:
        raise UserError(
            f"tag template {template!r} names an unknown field {exc}",
            where=config.doc.where(("components", axis, key, "tag")),
            key=f"components.{axis}.{key}.tag",
            expected="placeholders among: " + ", ".join("{" + k + "}" for k in sorted(own)),
        ) from None


def expand(config: Config, lock: Lock) -> Expansion:
    candidates: list[Combo] = [tuple(zip(AXES, values)) for values in itertools.product(*(config.axes[a] for a in AXES))]
    facts_of = {combo: variant_facts(config, combo, lock) for combo in candidates}
    _check_rule_facts(config, facts_of)
    kept: list[Combo] = []
    dropped: list[Dropped] = []
    for combo in candidates:
        as_dict = dict(combo)
        excl = next((i for i, sel in enumerate(config.exclude) if sel.matches(as_dict)), None)
        if excl is not None:
            dropped.append(Dropped(combo, f"matrix.exclude[{excl}] ({config.path}:{config.exclude[excl].line})"))
            continue
        rule = first_violation(config.rules, facts_of[combo])
        if rule is not None:
            dropped.append(Dropped(combo, f"rule {rule.id} ({config.path}:{rule.line}): {rule.reason}"))
            continue
        kept.append(combo)
    for i, sel in enumerate(config.include):
        combo = tuple((a, dict(sel.values)[a][0]) for a in AXES)
        facts = facts_of.get(combo) or variant_facts(config, combo, lock)
        rule = first_violation(config.rules, facts)
        if rule is not None:
            raise UserError(
                f"matrix.include[{i}] breaks rule {rule.id!r}: {rule.reason}",
                where=Location(config.path, sel.line),
                key=f"matrix.include[{i}]",
                expected=f"a combination allowed by rule {rule.id} (line {rule.line})",
                found=_combo_text(combo),
            )
        facts_of[combo] = facts
        if combo not in kept:
            kept.append(combo)
            dropped = [d for d in dropped if d.combo != combo]
    if not kept:
        raise UserError(
            "the matrix is empty: every combination was excluded or broke a rule",
            where=config.doc.where(("matrix",)),
            key="matrix",
            expected="at least one combination",
            hint="run `buildtool list --why-excluded` to see what dropped each combination",
        )
    variants = tuple(Variant(combo, facts_of[combo], render_image_name(config, facts_of[combo])) for combo in kept)
    _check_collisions(config, variants)
    return Expansion(variants=variants, dropped=tuple(dropped))


def _combo_text(combo: Combo) -> str:
    return " ".join(f"{a}={v}" for a, v in combo)


def _check_rule_facts(config: Config, facts_of: dict[Combo, dict[str, Any]]) -> None:
    known: set[str] = set()
    for facts in facts_of.values():
        known.update(facts)
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
    name = group or config.default_group
    if name != "all" and name not in config.groups:
        raise UserError(f"unknown group {name!r}", where=Location("--group"), key="--group",
                        expected="one of " + ", ".join(["all", *sorted(config.groups)]))
    chosen = variants if name == "all" else tuple(v for v in variants if in_group(config, name, dict(v.combo)))
    for term in filters:
        chosen = tuple(v for v in chosen if filter_matches(term, v))
    return chosen


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


FILTER = re.compile(r"^(os|python|mpi|accelerator|onnxruntime|name)=([^=]+)$")


def parse_filter(term: str) -> tuple[str, tuple[str, ...]]:
    m = FILTER.match(term)
    if not m:
        raise UserError(f"bad --filter {term!r}", where=Location("command line"), key="--filter",
                        expected="AXIS=VALUE[,VALUE] with AXIS one of os, python, mpi, accelerator, onnxruntime, or name=GLOB")
    return m.group(1), tuple(m.group(2).split(","))


def filter_matches(term: str, variant: Variant) -> bool:
    axis, values = parse_filter(term)
    if axis == "name":
        return any(fnmatch.fnmatchcase(variant.name, v) for v in values)
    return variant.get(axis) in values


__all__ = ["Expansion", "expand", "select", "in_group", "variant_facts", "parse_filter", "Selector"]
