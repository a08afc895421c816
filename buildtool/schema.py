"""A small declarative schema: validates plain YAML data and reports errors with file:line.

Component flavors declare their own fragments with these types, so the config
loader never needs to know a flavor's fields.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError
from .source import KeyPath, Said, SourceDoc, dotted

EXACT_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*([.+~-][0-9A-Za-z.+~-]+)?$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def type_name(value: Any) -> str:
    """What a value is, for 'found:' (a Said, so the error shows it without quotes)."""
    return Said(_type_name(value))


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def fail(doc: SourceDoc, path: KeyPath, message: str, expected: str | None = None, found: Any = None, hint: str | None = None) -> UserError:
    return UserError(message, where=doc.where(path), key=dotted(path), expected=expected, found=found, hint=hint)


class Spec:
    """A validator for one value. `check` returns the cleaned value or raises UserError."""

    description = "a value"

    def check(self, doc: SourceDoc, path: KeyPath, value: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class Str(Spec):
    pattern: re.Pattern[str] | None = None
    choices: tuple[str, ...] | None = None
    what: str = "a string"
    noun: str = "value"  # what an unknown choice is called in the error ("unknown axis 'gpu'")

    @property
    def description(self) -> str:  # type: ignore[override]
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return self.what

    def check(self, doc, path, value):
        if not isinstance(value, str):
            hint = None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                hint = "quote it: YAML reads 1.10 as the number 1.1 and 12.0 as 12"
            raise fail(doc, path, "wrong type", self.description, type_name(value), hint)
        if self.choices is not None and value not in self.choices:
            close = difflib.get_close_matches(value, self.choices, n=1)
            raise fail(doc, path, f"unknown {self.noun} {value!r}", self.description, value,
                       f"did you mean {close[0]!r}?" if close else None)
        if self.pattern is not None and not self.pattern.match(value):
            raise fail(doc, path, f"malformed value {value!r}", self.what, value)
        return value


def Version() -> Str:
    return Str(pattern=EXACT_VERSION, what="an exact version such as '4.1.4' (quoted)")


def Sha256() -> Str:
    return Str(pattern=SHA256, what="a sha256 checksum: 64 lowercase hex digits")


def Url() -> Str:
    return Str(pattern=re.compile(r"^https?://[^\s]+$"), what="an http(s) URL")


def Name() -> Str:
    return Str(pattern=NAME, what="a lowercase name (letters, digits, '.', '_', '-')")


@dataclass
class Int(Spec):
    minimum: int | None = None
    description: str = "an integer"

    def check(self, doc, path, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(doc, path, "wrong type", self.description, type_name(value))
        if self.minimum is not None and value < self.minimum:
            raise fail(doc, path, f"value {value} is too small", f"an integer >= {self.minimum}", value)
        return value


@dataclass
class Bool(Spec):
    description: str = "true or false"

    def check(self, doc, path, value):
        if not isinstance(value, bool):
            raise fail(doc, path, "wrong type", self.description, type_name(value))
        return value


@dataclass
class Any_(Spec):
    description: str = "any value"

    def check(self, doc, path, value):
        return value


@dataclass
class Scalar(Spec):
    description: str = "a string, number or boolean"

    def check(self, doc, path, value):
        if isinstance(value, (dict, list)) or value is None:
            raise fail(doc, path, "wrong type", self.description, type_name(value))
        return value


@dataclass
class List(Spec):
    item: Spec
    min_items: int = 0
    unique: bool = False

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"a list of {self.item.description}"

    def check(self, doc, path, value):
        if not isinstance(value, list):
            raise fail(doc, path, "wrong type", self.description, type_name(value))
        if len(value) < self.min_items:
            raise fail(doc, path, "list is empty" if not value else "list is too short",
                       f"at least {self.min_items} item(s)", Said(f"{len(value)} item(s)"))
        out = [self.item.check(doc, path + (i,), v) for i, v in enumerate(value)]
        if self.unique:
            seen: set[Any] = set()
            for i, v in enumerate(out):
                marker = repr(v)
                if marker in seen:
                    raise fail(doc, path + (i,), f"duplicate item {v!r}", "each item once")
                seen.add(marker)
        return out


@dataclass
class Dict(Spec):
    """A mapping with free keys (names) and one value spec."""

    value: Spec
    key: Spec = field(default_factory=Name)
    min_items: int = 0
    what: str | None = None

    @property
    def description(self) -> str:  # type: ignore[override]
        return self.what or f"a mapping of name to {self.value.description}"

    def check(self, doc, path, value):
        if not isinstance(value, dict):
            raise fail(doc, path, "wrong type", self.description, type_name(value))
        if len(value) < self.min_items:
            raise fail(doc, path, "mapping is empty", f"at least {self.min_items} entr{'y' if self.min_items == 1 else 'ies'}", Said("an empty mapping"))
        out = {}
        for k, v in value.items():
            self.key.check(doc, path + (k,), k)
            out[k] = self.value.check(doc, path + (k,), v)
        return out


@dataclass
class Map(Spec):
    """A mapping with fixed keys. Unknown keys are errors with a 'did you mean'."""

    fields: dict[str, Spec]
    required: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    what: str = "a mapping"
    validate: Callable[[SourceDoc, KeyPath, dict[str, Any]], None] | None = None

    @property
    def description(self) -> str:  # type: ignore[override]
        return self.what

    def check(self, doc, path, value):
        if not isinstance(value, dict):
            raise fail(doc, path, "wrong type", f"{self.what} with keys " + ", ".join(self.fields), type_name(value))
        for k in value:
            if k not in self.fields:
                close = difflib.get_close_matches(str(k), list(self.fields), n=1, cutoff=0.6)
                raise fail(doc, path + (k,), f"unknown key {k!r}", "one of " + ", ".join(sorted(self.fields)), None,
                           f"did you mean {close[0]!r}?" if close else None)
        for k in self.required:
            if k not in value:
                raise fail(doc, path, f"missing required key {k!r}", f"{self.what} with {k!r}: {self.fields[k].description}",
                           Said("keys " + ", ".join(map(str, value)) if value else "an empty mapping"))
        out = dict(self.defaults)
        for k, v in value.items():
            out[k] = self.fields[k].check(doc, path + (k,), v)
        if self.validate is not None:
            self.validate(doc, path, out)
        return out


@dataclass
class Either(Spec):
    """First spec whose type matches the value's shape (scalar, list or mapping) decides."""

    options: tuple[Spec, ...]
    description: str = "a value"

    def check(self, doc, path, value):
        for spec in self.options:
            if _shape_fits(spec, value):
                return spec.check(doc, path, value)
        raise fail(doc, path, "wrong type", self.description, type_name(value))


def _shape_fits(spec: Spec, value: Any) -> bool:
    if isinstance(spec, (Map, Dict)):
        return isinstance(value, dict)
    if isinstance(spec, List):
        return isinstance(value, list)
    if isinstance(spec, Str):
        return isinstance(value, str)
    if isinstance(spec, Scalar):
        return not isinstance(value, (dict, list)) and value is not None
    return True
