"""Axes product - excludes + includes, filtered by rules, named by the tag template. Pure."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from .components import SYSTEM, flavor
from .errors import Location, UserError
from .lock import Lock
from .model import AXES, LAYER_AXES, Base, Config, Dropped, Selector, Variant
from .rules import RuleChecker, first_violation, rule_facts
from .tags import render_image_name
from .templating import TemplateSyntaxError, fill

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


def check_apt_pins(config: Config, lock: Lock) -> None:
    """Apt pins become facts (versions in image names) and `apt-get install name=version` words: each must
    have Debian's grammar before anything is made of it. (render checks them again where they are written.)"""
    from .render import checked_apt

    for base in config.bases:
        pins = lock.apt.get(base)
        if pins:
            checked_apt(lock, base, tuple(pins.items()))


class _FactParts:
    """Facts are the union of one os part per base and one part per (axis, component, base): compute each once.

    A variant's facts are {**os part, **python part, **mpi part, **accelerator part, **onnxruntime part},
    the same dict (keys in the same order) variant_facts builds. Parts are computed in the order a walk
    over the axes product first needs them, so a failing part (a bad tag template) raises the same
    error, for the same combination, as computing every candidate's facts in product order would.
    """

    def __init__(self, config: Config, lock: Lock) -> None:
        self.config = config
        self.lock = lock
        self.os: dict[str, dict[str, Any]] = {}
        self.axis: dict[tuple[str, str, str], dict[str, Any]] = {}
        for base_key in config.axes["os"]:
            base = config.bases[base_key]
            apt = lock.apt.get(base.key, {})
            self.os[base_key] = _os_facts(config, base, apt, _refreshed(lock, base.key))
            order = [(a, config.axes[a][0]) for a in LAYER_AXES]
            order += [(a, v) for a in reversed(LAYER_AXES) for v in config.axes[a][1:]]
            for axis, key in order:
                self.axis[(axis, key, base_key)] = _axis_facts(config, axis, key, base, apt)

    def known(self) -> set[str]:
        names: set[str] = set()
        for part in self.os.values():
            names.update(part)
        for part in self.axis.values():
            names.update(part)
        return names

    def facts(self, combo: Combo) -> dict[str, Any]:
        base = combo[0][1]
        parts = self.axis
        out = dict(self.os[base])
        for axis, key in combo[1:]:
            out.update(parts[(axis, key, base)])
        return out


def expand(config: Config, lock: Lock) -> Expansion:
    check_apt_pins(config, lock)
    parts = _FactParts(config, lock)
    _check_rule_facts(config, parts.known())
    check = RuleChecker(config.rules)
    values = [config.axes[a] for a in AXES]
    # Bit i of masks[level][value] is set when matrix.exclude[i] allows that value on that axis:
    # a combination is excluded by the lowest i set in the AND over its axes.
    everything = (1 << len(config.exclude)) - 1
    masks: list[dict[str, int]] = []
    for level, axis in enumerate(AXES):
        level_masks = {}
        for value in values[level]:
            mask = 0
            for i, sel in enumerate(config.exclude):
                allowed = dict(sel.values).get(axis)
                if allowed is None or value in allowed:
                    mask |= 1 << i
            level_masks[value] = mask
        masks.append(level_masks)
    exclude_reason = [f"matrix.exclude[{i}] ({config.path}:{sel.line})" for i, sel in enumerate(config.exclude)]
    rule_reason = {id(rule): f"rule {rule.id} ({config.path}:{rule.line}): {rule.reason}" for rule in config.rules}
    kept: list[Combo] = []
    facts_of: dict[Combo, dict[str, Any]] = {}
    dropped: list[Dropped] = []
    os_parts, axis_parts = parts.os, parts.axis
    last = len(AXES) - 1
    last_axis, last_values, last_masks = AXES[last], values[last], masks[last]
    last_of: dict[str, list[tuple[Combo, int, dict[str, Any]]]] = {}  # base -> (last axis value, mask, facts part)
    drop, first_violation_of = dropped.append, check.first_violation

    def walk(level: int, prefix: Combo, mask: int, base: str, merged: dict[str, Any]) -> None:
        axis, level_masks = AXES[level], masks[level]
        for value in values[level]:
            combo = prefix + ((axis, value),)
            m = mask & level_masks[value]
            if level == 0:
                walk(1, combo, m, value, os_parts[value])
            elif level < last - 1:
                walk(level + 1, combo, m, base, {**merged, **axis_parts[(axis, value, base)]})
            else:
                inner = {**merged, **axis_parts[(axis, value, base)]}
                lasts = last_of.get(base)
                if lasts is None:
                    lasts = last_of[base] = [(((last_axis, v),), last_masks[v], axis_parts[(last_axis, v, base)]) for v in last_values]
                for suffix, last_mask, part in lasts:
                    lm = m & last_mask
                    if lm:
                        drop(Dropped(combo + suffix, exclude_reason[(lm & -lm).bit_length() - 1]))
                        continue
                    facts = {**inner, **part}
                    rule = first_violation_of(facts)
                    if rule is not None:
                        drop(Dropped(combo + suffix, rule_reason[id(rule)]))
                        continue
                    leaf = combo + suffix
                    kept.append(leaf)
                    facts_of[leaf] = facts

    if last < 2:  # pragma: no cover - AXES is fixed at five
        raise AssertionError("expand walks at least three axes")
    walk(0, (), everything, "", {})
    kept_set = set(kept)
    for i, sel in enumerate(config.include):
        combo = tuple((a, dict(sel.values)[a][0]) for a in AXES)
        facts = facts_of.get(combo) or parts.facts(combo)
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
        if combo not in kept_set:
            kept.append(combo)
            kept_set.add(combo)
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
