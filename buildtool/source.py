"""Load YAML while remembering the line of every key, so errors can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Location, UserError

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


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_yaml(path: Path, display: str | None = None) -> SourceDoc:
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError("file not found", where=Location(name), hint="pass --config with the path of images.yaml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read file: {exc}", where=Location(name)) from None
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> SourceDoc:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise UserError(
            f"YAML syntax error: {exc.problem or exc}",
            where=Location(name, line),
            hint=(exc.context or None),
        ) from None
    except yaml.YAMLError as exc:  # pragma: no cover - other YAML errors carry no mark
        raise UserError(f"YAML error: {exc}", where=Location(name)) from None
    doc = SourceDoc(file=name, data=None)
    if node is None:
        doc.lines[()] = 1
        return doc
    doc.lines[()] = node.start_mark.line + 1
    doc.data = _convert(node, (), doc)
    return doc


def _convert(node: yaml.Node, path: KeyPath, doc: SourceDoc) -> Any:
    if isinstance(node, yaml.MappingNode):
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
            out[key] = _convert(value_node, path + (key,), doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            doc.lines[path + (index,)] = item.start_mark.line + 1
            items.append(_convert(item, path + (index,), doc))
        return items
    return _scalar(node)


_loader = yaml.SafeLoader("")


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return node
    # SafeLoader's resolver already tagged the node (int, float, bool, str, ...).
    return _loader.construct_object(node, deep=True)
