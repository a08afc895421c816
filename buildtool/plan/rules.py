"""Evaluate compatibility rules and selectors against a variant's facts. Pure."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from ..config.model import Matcher, Rule


def _release(value: str, parts: int) -> tuple[str, ...]:
    segments = tuple(value.split("."))
    return segments[:parts] if parts else segments


@lru_cache(maxsize=4096)
def _in_range(value: str, spec: str) -> bool:
    """Version(value) in SpecifierSet(spec); parsing both is the costly part of a rule, so remember it."""
    try:
        return Version(value) in SpecifierSet(spec)
    except InvalidVersion:
        return False


def matches(facts: dict[str, Any], fact: str, matcher: Matcher) -> bool:
    value = str(facts.get(fact, "") or "")
    if matcher.kind == "eq":
        return value == matcher.value
    if matcher.kind == "in":
        return value in matcher.value
    if matcher.kind == "not_in":
        return value not in matcher.value
    if matcher.kind == "version":
        if not value:
            return False
        return _in_range(value, matcher.value)
    if matcher.kind == "same":
        other = str(facts.get(matcher.value, "") or "")
        return bool(value) and _release(value, matcher.parts) == _release(other, matcher.parts)
    raise ValueError(f"unknown matcher kind {matcher.kind}")  # pragma: no cover - config rejects it


def applies(rule: Rule, facts: dict[str, Any]) -> bool:
    return all(matches(facts, fact, m) for fact, m in rule.when)


def violated(rule: Rule, facts: dict[str, Any]) -> bool:
    return applies(rule, facts) and not all(matches(facts, fact, m) for fact, m in rule.require)


def first_violation(rules: tuple[Rule, ...], facts: dict[str, Any]) -> Rule | None:
    for rule in rules:
        if violated(rule, facts):
            return rule
    return None


def rule_facts(rule: Rule) -> set[str]:
    names = {fact for fact, _ in rule.when + rule.require}
    names |= {m.value for _, m in rule.when + rule.require if m.kind == "same"}
    return names
