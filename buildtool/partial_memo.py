"""Render each component partial once per distinct input.

A partial's text is a function of the few context values it reads (apt pins, a fact or two, the
component's fields), and thousands of nodes share them. Static analysis of the partial's Jinja AST
finds what it reads; the rendered text is kept under the values of exactly those reads. A partial
the analysis cannot vouch for (include/extends, imports with context, filters or tests that are not
the stock ones, `random`, calls other than macros and read-only methods, namespace assignments)
is rendered the ordinary way for every node: slower, never wrong.
"""

from __future__ import annotations

from dataclasses import is_dataclass
from typing import Any

import jinja2
from jinja2 import meta
from jinja2 import nodes as jnodes
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS

Read = tuple[str, "str | None", Any]  # (context name, None | "item" | "attr", key or attribute)

_UNSAFE_NODES = (
    jnodes.Include, jnodes.Extends, jnodes.NSRef, jnodes.ContextReference, jnodes.DerivedContextReference,
    jnodes.ExtensionAttribute, jnodes.ImportedName, jnodes.InternalName, jnodes.EvalContextModifier,
)
_PURE_GLOBALS = frozenset({"range", "dict", "cycler", "joiner", "namespace"})
_READ_ONLY_METHODS = frozenset({
    "items", "keys", "values", "get", "count", "index", "split", "rsplit", "splitlines", "join", "strip", "lstrip", "rstrip",
    "startswith", "endswith", "lower", "upper", "title", "capitalize", "replace", "format", "find", "rfind", "partition",
    "rpartition", "zfill", "center", "ljust", "rjust", "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper",
    "removeprefix", "removesuffix", "casefold", "encode",
})
_MISSING = object()


class NotMemoisable(Exception):
    """The template (or this context) is outside what the analysis can vouch for."""


_ANALYSED: dict[tuple[int, str], tuple[jinja2.Template, frozenset[Read] | None]] = {}


def template_reads(env: jinja2.Environment, name: str) -> frozenset[Read]:
    """Everything template `name` reads from its context; raises NotMemoisable.

    Remembered for as long as the environment keeps the same compiled template (it drops them
    all when any template changes on disk, see render.fresh_templates)."""
    template = env.get_template(name)
    known = _ANALYSED.get((id(env), name))
    if known is None or known[0] is not template:
        try:
            reads: frozenset[Read] | None = _analyse(env, name, frozenset())
        except NotMemoisable:
            reads = None
        known = _ANALYSED[(id(env), name)] = (template, reads)
    if known[1] is None:
        raise NotMemoisable
    return known[1]


def _analyse(env: jinja2.Environment, name: str, seen: frozenset[str]) -> frozenset[Read]:
    if name in seen:
        return frozenset()
    source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
    ast = env.parse(source, name)
    if any(True for _ in ast.find_all(_UNSAFE_NODES)):
        raise NotMemoisable
    local_modules: set[str] = set()
    for node in ast.find_all((jnodes.Import, jnodes.FromImport)):
        if node.with_context or not isinstance(node.template, jnodes.Const) or not isinstance(node.template.value, str):
            raise NotMemoisable
        _analyse(env, node.template.value, seen | {name})  # imported without context: only its purity matters
        if isinstance(node, jnodes.Import):
            local_modules.add(node.target)
        else:
            local_modules.update(n if isinstance(n, str) else n[1] for n in node.names)
    for f in ast.find_all(jnodes.Filter):
        if f.name == "random" or env.filters.get(f.name) is not DEFAULT_FILTERS.get(f.name, _MISSING):
            raise NotMemoisable
    for t in ast.find_all(jnodes.Test):
        if env.tests.get(t.name) is not DEFAULT_TESTS.get(t.name, _MISSING):
            raise NotMemoisable
    macros = {m.name for m in ast.find_all(jnodes.Macro)} | local_modules | {"caller", "loop", "self", "super"}
    for call in ast.find_all(jnodes.Call):
        fn = call.node
        if isinstance(fn, jnodes.Name) and (fn.name in macros or fn.name in _PURE_GLOBALS):
            continue
        if isinstance(fn, jnodes.Getattr) and (
            (isinstance(fn.node, jnodes.Name) and fn.node.name in macros) or fn.attr in _READ_ONLY_METHODS
        ):
            continue
        raise NotMemoisable
    undeclared = meta.find_undeclared_variables(ast)
    if "lipsum" in undeclared:
        raise NotMemoisable
    whole: set[str] = set()
    parts: set[Read] = set()

    def walk(node: jnodes.Node, parent: jnodes.Node | None, grandparent: jnodes.Node | None) -> None:
        if isinstance(node, jnodes.Name) and node.ctx == "load" and node.name in undeclared:
            called = isinstance(grandparent, jnodes.Call) and grandparent.node is parent
            if isinstance(parent, jnodes.Getitem) and parent.node is node and isinstance(parent.arg, jnodes.Const) \
                    and isinstance(parent.arg.value, (str, int)) and not called:
                parts.add((node.name, "item", parent.arg.value))  # name["key"]: only that key matters
            elif isinstance(parent, jnodes.Getattr) and parent.node is node and not called:
                parts.add((node.name, "attr", parent.attr))  # name.attr: only that attribute matters
            else:
                whole.add(node.name)
        for child in node.iter_child_nodes():
            walk(child, node, parent)

    walk(ast, None, None)
    whole |= undeclared - {p[0] for p in parts}
    return frozenset({(n, None, None) for n in whole} | {p for p in parts if p[0] not in whole})


def freeze(value: Any, env: jinja2.Environment) -> Any:
    """A hashable stand-in that is equal for two values only when they render the same."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int or kind is float or kind is bool or value is None:
        return (kind, value)
    if kind is tuple or kind is list:
        return (kind, tuple([freeze(v, env) for v in value]))
    if kind is dict:
        return (kind, tuple([(freeze(k, env), freeze(v, env)) for k, v in value.items()]))
    if is_dataclass(value) and not isinstance(value, type) and hasattr(value, "__dict__"):
        return (kind, tuple([(k, freeze(v, env)) for k, v in vars(value).items()]))
    for name in _PURE_GLOBALS:
        if env.globals.get(name) is value:
            return ("global", name)
    raise NotMemoisable


class PartialRenderer:
    """Renders partials for one render pass, each distinct input once.

    Objects in the contexts must not change during the pass: frozen values are remembered by
    identity (the same apt tuple or fields dict is shared by thousands of nodes)."""

    def __init__(self, env: jinja2.Environment, tidy: Any) -> None:
        self.env = env
        self.tidy = tidy
        self.reads: dict[str, tuple[Read, ...] | None] = {}
        self.texts: dict[tuple[Any, ...], str] = {}
        self.frozen: dict[int, tuple[Any, Any]] = {}  # id(value) -> (value, its frozen form)
        self.renders = 0  # how many times a template was really rendered (for tests and --profile)

    def render(self, name: str, context: dict[str, Any]) -> str:
        """tidy(env.get_template(name).render(context))."""
        reads = self._reads(name)
        if reads is not None:
            try:
                key = (name, *[self._frozen(self._lookup(context, read)) for read in reads])
            except NotMemoisable:
                pass
            else:
                text = self.texts.get(key)
                if text is None:
                    text = self.texts[key] = self._render(name, context)
                return text
        return self._render(name, context)

    def _render(self, name: str, context: dict[str, Any]) -> str:
        self.renders += 1
        return self.tidy(self.env.get_template(name).render(context))

    def _reads(self, name: str) -> tuple[Read, ...] | None:
        if name not in self.reads:
            try:
                self.reads[name] = tuple(sorted(template_reads(self.env, name), key=repr))
            except (NotMemoisable, jinja2.TemplateSyntaxError):
                self.reads[name] = None  # a syntax error surfaces from the ordinary render, with its line
        return self.reads[name]

    def _lookup(self, context: dict[str, Any], read: Read) -> Any:
        """What the template gets for `read`, with Jinja's getattr/getitem semantics (plain cases first)."""
        name, how, arg = read
        value = context.get(name, _MISSING)
        if value is _MISSING:
            return _MISSING  # undefined in the context: part of the key, the render raises or tests it
        if how == "item":
            if type(value) is dict and arg in value:
                value = value[arg]
            else:
                value = self.env.getitem(value, arg)
        elif how == "attr":
            if type(value) is dict:
                value = self.env.getattr(value, arg)  # Jinja tries the dict's own attributes first
            else:
                try:
                    value = getattr(value, arg)
                except AttributeError:
                    value = self.env.getattr(value, arg)
        if isinstance(value, jinja2.Undefined):
            raise NotMemoisable
        return value

    def _frozen(self, value: Any) -> Any:
        if type(value) is str or value is _MISSING:
            return value
        hit = self.frozen.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        frozen = freeze(value, self.env)
        self.frozen[id(value)] = (value, frozen)  # keeps value alive, so its id is not reused in this pass
        return frozen
