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

from ..errors import UserError
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
    max_len: int | None = None
    validator: Callable[[str], str | None] | None = None  # returns what is wrong, or None

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
        if self.max_len is not None and len(value) > self.max_len:
            raise fail(doc, path, f"value is too long ({len(value)} characters)", f"{self.what}, at most {self.max_len} characters", value)
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise fail(doc, path, f"malformed value {value!r}", self.what, value)
        if self.validator is not None:
            problem = self.validator(value)
            if problem:
                raise fail(doc, path, f"malformed value {value!r}: {problem}", self.what, value)
        return value


def Version() -> Str:
    return Str(pattern=EXACT_VERSION, max_len=64, what="an exact version such as '4.1.4' (quoted)")


def Sha256() -> Str:
    return Str(pattern=SHA256, what="a sha256 checksum: 64 lowercase hex digits")


def Url() -> Str:
    return HttpUrl()


def Name() -> Str:
    return Str(pattern=NAME, what="a lowercase name (letters, digits, '.', '_', '-')", max_len=128)


# Grammar types ---------------------------------------------------------------------------------
# Every value that reaches a generated file (a RUN line, requirements.txt, a LABEL) or a command
# line has one of these types: its grammar admits no whitespace, quote, `$`, `;`, backslash or
# newline unless the value is free text, which the writer quotes for its context.

DEB_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
# Debian policy 5.6.12: [epoch:]upstream[-revision]; upstream starts with a digit; a hyphen only with a revision.
DEB_VERSION = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~]*(?:-[A-Za-z0-9.+~-]*[A-Za-z0-9.+~])?")
PIP_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")  # PEP 508 names
ABS_PATH = re.compile(r"/[A-Za-z0-9._+@%=,:/-]*")
URL = re.compile(r"https?://(?:[A-Za-z0-9._~%!+,=:-]+@)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
                 r"(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~%+,=:@/-]*)?")
LOCALE = re.compile(r"(?:C|POSIX|[a-z]{2,3}(?:_[A-Z]{2})?)(?:\.[A-Za-z0-9-]+)?(?:@[a-z]+)?")
USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")  # useradd's default NAME_REGEX, without the trailing '$'
CONDA_CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(?:/[A-Za-z0-9][A-Za-z0-9_.-]*)*")
REPO_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REPO = re.compile(rf"{REPO_COMPONENT}(?:/{REPO_COMPONENT})*")
IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
HOST_PORT = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
MAX_IMAGE_NAME = 255
MAX_UID = 2**31 - 2  # the kernel's uid_t is 32 bits; -1 (4294967295) means "no change" to chown


def no_control(value: str) -> str | None:
    for c in value:
        if ord(c) < 32 or ord(c) == 127 or 0x80 <= ord(c) < 0xA0 or c in "\u2028\u2029":
            return f"it contains the control character {c!r}"
    return None


def _pip_version(value: str) -> str | None:
    from packaging.version import InvalidVersion
    from packaging.version import Version as Pep440

    try:
        Pep440(value)
    except InvalidVersion:
        return "not a PEP 440 version"
    return None


def _url_port(value: str) -> str | None:
    import urllib.parse

    try:
        port = urllib.parse.urlsplit(value).port
    except ValueError:
        return "the port is not a number from 1 to 65535"
    return "the port is not a number from 1 to 65535" if port == 0 else None


def _host_port(value: str) -> str | None:
    _, sep, port = value.rpartition(":")
    if sep and "]" not in port and not 0 < int(port) <= 65535:
        return "the port is not a number from 1 to 65535"
    return None


def _image_repo(value: str) -> str | None:
    return f"longer than {MAX_IMAGE_NAME} characters" if len(value) > MAX_IMAGE_NAME else None


def DebPackage() -> Str:
    return Str(pattern=DEB_PACKAGE, max_len=128,
               what="a Debian package name: lowercase letters, digits, '+', '-', '.', at least 2 characters, starting with a letter or digit")


def DebVersion() -> Str:
    return Str(pattern=DEB_VERSION, max_len=128,
               what="an exact Debian version [epoch:]upstream[-revision] such as '12.8.90-1' (starts with a digit; letters, digits, '.', '+', '~', '-')")


def PipName() -> Str:
    return Str(pattern=PIP_NAME, max_len=128, what="a PyPI package name (PEP 508: letters, digits, '.', '_', '-', starting and ending with a letter or digit)")


def PipVersion() -> Str:
    return Str(pattern=re.compile(r"[A-Za-z0-9.+!_-]+"), max_len=64, validator=_pip_version,
               what="an exact PEP 440 version such as '1.23.2' (quoted)")


def AbsPath() -> Str:
    return Str(pattern=ABS_PATH, max_len=1024,
               what="an absolute POSIX path: '/' then letters, digits, '.', '_', '-', '+', '@', '%', '=', ',', ':' (no whitespace, quotes, $, ;, backslash)")


def HttpUrl() -> Str:
    return Str(pattern=URL, max_len=2048, validator=_url_port,
               what="an http(s) URL: http:// or https://, a host, then letters, digits and . _ ~ % + , = : @ / - (no whitespace, quotes, $, ;, &, ?, backslash)")


def Locale() -> Str:
    return Str(pattern=LOCALE, max_len=64, what="a locale name such as 'C.UTF-8' or 'en_US.UTF-8' (language[_TERRITORY][.codeset][@modifier])")


def UserName() -> Str:
    return Str(pattern=USER_NAME, what="a user name as useradd takes it: a lowercase letter or '_', then lowercase letters, digits, '_', '-' (at most 32)")


def Uid() -> Int:
    return Int(minimum=1, maximum=MAX_UID, description=f"an integer uid from 1 to {MAX_UID}")


def CondaChannel() -> Str:
    return Str(pattern=CONDA_CHANNEL, max_len=256, what="a conda channel name such as 'conda-forge' or 'nvidia/label/cuda-12.8.0' (letters, digits, '.', '_', '-', '/')")


def ImageRepo() -> Str:
    return Str(pattern=IMAGE_REPO, max_len=MAX_IMAGE_NAME, validator=_image_repo,
               what="an image repository (OCI): '/'-separated lowercase components of letters and digits joined by '.', '_', '__' or '-', "
                    f"at most {MAX_IMAGE_NAME} characters")


def ImageTag() -> Str:
    return Str(pattern=IMAGE_TAG, what="an image tag (OCI): a letter, digit or '_', then letters, digits, '_', '.', '-', at most 128 characters")


def RegistryHost() -> Str:
    return Str(pattern=HOST_PORT, max_len=255, validator=_host_port,
               what="a registry host[:port] such as 'registry.example.com' or '127.0.0.1:5000' (no scheme, path or spaces)")


def FreeText(max_len: int = 1024) -> Str:
    """Text for people (a description, a vendor): any printable characters on one line. The writer
    quotes it for where it goes (LABEL value, JSON)."""
    return Str(max_len=max_len, validator=no_control, what="text on one line (no newline or other control characters)")


def Template() -> Str:
    """A tag template: literal text and plain {name} placeholders (checked again where the names are known)."""
    from .templating import EXPECTED, syntax_problem

    return Str(max_len=512, validator=lambda v: no_control(v) or syntax_problem(v), what=f"a template on one line: {EXPECTED}")


@dataclass
class Int(Spec):
    minimum: int | None = None
    maximum: int | None = None
    description: str = "an integer"

    def check(self, doc, path, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(doc, path, "wrong type", self.description, type_name(value))
        if self.minimum is not None and value < self.minimum:
            raise fail(doc, path, f"value {value} is too small", self._range(), value)
        if self.maximum is not None and value > self.maximum:
            raise fail(doc, path, f"value {value} is too large", self._range(), value)
        return value

    def _range(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"an integer from {self.minimum} to {self.maximum}"
        return f"an integer >= {self.minimum}" if self.minimum is not None else f"an integer <= {self.maximum}"


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
