"""Load YAML while remembering the line of every key, so errors can point at it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import Location, UserError

KeyPath = tuple[Any, ...]


@dataclass
class SourceDoc:
    """Plain data from one YAML file plus a map from key path to line number."""

    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def where(self, path: KeyPath) -> Location:
        """The line of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return Location(self.file, self.lines[path])
            path = path[:-1]
        return Location(self.file, self.lines.get((), 1))


@dataclass
class JsonDoc(SourceDoc):
    """A file that buildtool writes as JSON (which is YAML too): read with the json module, and its
    lines found by the YAML loader only when an error needs one (the YAML loader is ~50x slower)."""

    text: str = ""

    def where(self, path: KeyPath) -> Location:
        if not self.lines:
            try:
                self.lines = parse_yaml(self.text, self.file).lines
            except UserError:  # pragma: no cover - JSON the YAML parser rejects: point at the file
                self.lines = {(): 1}
        return super().where(path)


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_yaml(path: Path, display: str | None = None) -> SourceDoc:
    name = display or str(path)
    return parse_yaml(_read_text(path, name), name)


def load_json_or_yaml(path: Path) -> SourceDoc:
    """A machine-written file: JSON on the fast path, any other YAML (or broken JSON) through load_yaml's
    parser, which names the line of a syntax error."""
    name = str(path)
    text = _read_text(path, name)
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            try:
                return parse_yaml(text, name)  # YAML in flow style is not JSON, and may still be fine
            except UserError:
                raise UserError(f"JSON syntax error: {exc.msg}", where=Location(name, exc.lineno),
                                found=Said(f"column {exc.colno}: {_line(text, exc.lineno)!r}"),
                                hint="check the commas and brackets near this line "
                                     "(buildtool writes this file: writing it again also fixes it)") from None
        except ValueError:
            pass  # a duplicate key or NaN: the YAML parser says which and where
        else:
            return JsonDoc(file=name, data=data, text=text)
    return parse_yaml(text, name)


def _line(text: str, number: int) -> str:
    lines = text.split("\n")
    return lines[number - 1].strip() if 0 < number <= len(lines) else ""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not YAML")


def _read_text(path: Path, name: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError("file not found", where=Location(name), hint="check the path (images.yaml is given with --config, a site overlay with --site or $BUILDTOOL_SITE)") from None
    except IsADirectoryError:
        raise UserError("is a folder, not a file", where=Location(name), expected="a YAML file") from None
    except OSError as exc:
        raise UserError(f"cannot read file: {exc.strerror or exc}", where=Location(name)) from None
    try:
        return raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text() would
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise UserError(
            "the file is not valid UTF-8 text",
            where=Location(name, line),
            expected="UTF-8 encoded YAML",
            found=Said(f"byte 0x{raw[exc.start]:02x} at column {column}"),
            hint="save the file as UTF-8",
        ) from None


# Limits: what a hand-written images.yaml or a machine-written images.lock never comes near, and what
# stops an alias bomb (a few KB naming 10^9 items) or a self-referring alias before they cost anything.
MAX_NODES = 2_000_000  # scalars, lists and mappings after aliases are expanded
MAX_ALIAS_NODES = 10_000  # of those, reached through aliases
MAX_DEPTH = 200  # nesting of lists and mappings
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


def parse_yaml(text: str, name: str) -> SourceDoc:
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise UserError("the file contains a control character", where=Location(name, line),
                        expected="YAML text: printable characters, tabs and newlines (write others as escapes in a double-quoted string)",
                        found=Said(f"U+{ord(bad.group()):04X} at column {column}"))
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, name) from None
    except yaml.YAMLError as exc:  # a reader error (a character YAML does not allow): it carries a position, not a mark
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        raise UserError(f"YAML error: {getattr(exc, 'reason', None) or exc}", where=Location(name, line)) from None
    except RecursionError:
        raise UserError("YAML nested too deeply", where=Location(name), expected=f"at most {MAX_DEPTH} levels of lists and mappings") from None
    doc = SourceDoc(file=name, data=None)
    if node is None:
        doc.lines[()] = 1
        return doc
    doc.lines[()] = node.start_mark.line + 1
    doc.data = _Converter(doc).convert(node, ())
    return doc


def _syntax_error(exc: yaml.MarkedYAMLError, name: str) -> UserError:
    """One paragraph for a YAML syntax error, pointing at the line the user must fix."""
    problem = exc.problem or str(exc)
    problem_line = exc.problem_mark.line + 1 if exc.problem_mark else None
    context_line = exc.context_mark.line + 1 if exc.context_mark else None
    if exc.context and "flow" in exc.context and context_line and problem_line and context_line != problem_line:
        # An unclosed [ or { is noticed lines later; the bracket's own line is the one to fix.
        bracket = "[" if "sequence" in exc.context else "{"
        closing = "]" if bracket == "[" else "}"
        return UserError(
            f"YAML syntax error: the '{bracket}' opened on this line is not closed (or an item lacks a ',')",
            where=Location(name, context_line),
            expected=f"'{closing}' to close it, and ',' between items",
            found=Said(f"{problem} on line {problem_line}"),
        )
    if "\t" in problem or "'\\t'" in problem:
        hint = "YAML indents with spaces only; replace the tab with spaces"
    elif "<block end>" in problem and context_line:
        hint = f"this line's indentation does not match the lines above it ({exc.context} started on line {context_line})"
    elif exc.context and context_line:
        hint = f"{exc.context} (started on line {context_line})"
    else:
        hint = exc.context or None
    return UserError(f"YAML syntax error: {problem}", where=Location(name, problem_line or context_line), hint=hint)


class Said(str):
    """Text shown as it is after 'found:' (other values are shown with repr)."""

    def __repr__(self) -> str:
        return str(self)


class _Converter:
    """Composed nodes -> plain data with the line of every key, within the limits above."""

    def __init__(self, doc: SourceDoc) -> None:
        self.doc = doc
        self.nodes = 0
        self.alias_nodes = 0
        self.seen: set[int] = set()  # collection nodes converted once: meeting one again is an alias
        self.open: set[int] = set()  # collection nodes being converted: meeting one of these is a loop

    def _count(self, node: yaml.Node, via_alias: bool, depth: int) -> None:
        self.nodes += 1
        if via_alias:
            self.alias_nodes += 1
        where = Location(self.doc.file, node.start_mark.line + 1)
        if self.alias_nodes > MAX_ALIAS_NODES:
            raise UserError("YAML aliases expand to too many values (an alias bomb?)", where=where,
                            expected=f"at most {MAX_ALIAS_NODES} values reached through aliases (*name); write the values out",
                            found=Said(f"more than {MAX_ALIAS_NODES}"))
        if self.nodes > MAX_NODES:
            raise UserError("the YAML document has too many values", where=where, expected=f"at most {MAX_NODES} values", found=Said(f"more than {MAX_NODES}"))
        if depth > MAX_DEPTH:
            raise UserError("YAML nested too deeply", where=where, expected=f"at most {MAX_DEPTH} levels of lists and mappings",
                            found=Said(f"more than {MAX_DEPTH} levels"))

    def convert(self, node: yaml.Node, path: KeyPath, via_alias: bool = False, depth: int = 0) -> Any:
        doc = self.doc
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            ident = id(node)
            if ident in self.open:
                raise UserError("a YAML alias refers to the list or mapping that contains it", where=Location(doc.file, node.start_mark.line + 1),
                                key=dotted(path), expected="aliases (*name) to values defined before and outside them", found=Said("a loop"))
            via_alias = via_alias or ident in self.seen
            self.seen.add(ident)
            self.open.add(ident)
            try:
                self._count(node, via_alias, depth)
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, path, via_alias, depth)
                return self._sequence(node, path, via_alias, depth)
            finally:
                self.open.discard(ident)
        self._count(node, via_alias, depth)
        return _scalar(node)

    def _mapping(self, node: yaml.MappingNode, path: KeyPath, via_alias: bool, depth: int) -> dict[Any, Any]:
        doc = self.doc
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise UserError(
                    "YAML merge keys (<<) are not supported",
                    where=Location(doc.file, key_node.start_mark.line + 1),
                    key=dotted(path),
                )
            if not isinstance(key_node, yaml.ScalarNode):
                raise UserError(
                    "mapping keys must be plain scalars",
                    where=Location(doc.file, key_node.start_mark.line + 1),
                    key=dotted(path),
                )
            # Keys are names: keep their text (YAML 1.1 would read `on:` as True).
            key = key_node.value
            if key in out:
                raise UserError(
                    f"duplicate key {key!r}",
                    where=Location(doc.file, key_node.start_mark.line + 1),
                    key=dotted(path + (key,)),
                    hint=f"first defined on line {doc.lines[path + (key,)]}",
                )
            doc.lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = self.convert(value_node, path + (key,), via_alias, depth + 1)
        return out

    def _sequence(self, node: yaml.SequenceNode, path: KeyPath, via_alias: bool, depth: int) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            self.doc.lines[path + (index,)] = item.start_mark.line + 1
            items.append(self.convert(item, path + (index,), via_alias, depth + 1))
        return items


_loader = yaml.SafeLoader("")
# libyaml's composer (when PyYAML was built with it) reads images.lock several times faster.
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return node
    # SafeLoader's resolver already tagged the node (int, float, bool, str, ...).
    return _loader.construct_object(node, deep=True)
