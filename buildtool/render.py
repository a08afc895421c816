"""DAG + lock -> each node's Dockerfile, build context and content hash. Pure (reads templates only)."""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, is_dataclass
from functools import lru_cache, partial
from typing import Any

import jinja2
from jinja2 import meta
from jinja2 import nodes as jnodes
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS

from .components import SYSTEM, Flavor, flavor
from .errors import UserError
from .lock import Lock, PipPin
from .model import Config
from .plan import Dag, Node
from .templates_files import TEMPLATES_DIR

EXECUTABLE = frozenset({"with-build-secrets", "register-libs"})


@dataclass(frozen=True)
class RenderedNode:
    id: str
    dockerfile: str
    files: tuple[tuple[str, str], ...]  # build context besides the Dockerfile: (name, text)
    hash: str  # sha256 over parent hash, Dockerfile and context files
    parent_ref: str

    @property
    def tag(self) -> str:
        """Content-hash tag: an unchanged node keeps it, so it is never rebuilt."""
        return f"buildtool/{self.id}:h-{self.hash[:20]}"


class _Environment(jinja2.Environment):
    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A plain dict instead of Jinja's ChainMap: every context creation copies a template's globals,
        and a ChainMap makes that several times slower. (Jinja asks not to change globals after a
        template is loaded, and this environment's never change.)"""
        return {**self.globals, **(d or {})}


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    # auto_reload is off so that rendering thousands of nodes does not stat every template for every
    # node; render_dag drops changed templates from the cache once per call instead (fresh_templates).
    return _Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        auto_reload=False,
    )


def fresh_templates() -> jinja2.Environment:
    """The environment, its template cache emptied when any template changed on disk since it was loaded.

    All of it, not just the changed file: memoised partials hold text made with the macros they
    import, and skeletons hold text made with the partials they include."""
    env = environment()
    cache = env.cache
    if cache is not None and not all(template.is_up_to_date for template in list(cache.values())):
        cache.clear()
        _ANALYSED.clear()
    return env


# --- Memoised partials ------------------------------------------------------------------------
# A partial's text is a function of the few context values it reads (apt pins, a fact or two, the
# component's fields), and thousands of nodes share them: render each distinct input once. A
# partial is memoised only when static analysis shows its output can depend on nothing else: no
# include/extends, imports only without context (and of templates that pass the same checks), the
# stock filters and tests bar `random`, no calls but macros and read-only methods, no namespace
# assignments. The key holds the value of every context name the partial reads (or of
# name["const"] / name.attr when that is all it reads of a name), frozen into a hashable value.

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


class _NotMemoisable(Exception):
    pass


_ANALYSED: dict[tuple[int, str], set[tuple[str, str | None, Any]] | None] = {}  # emptied with the template cache


def _analyse(env: jinja2.Environment, name: str, seen: frozenset[str] = frozenset()) -> set[tuple[str, str | None, Any]]:
    """(context name, None | "item" | "attr", key) for everything the template reads; raises _NotMemoisable."""
    if name in seen:
        return set()
    key = (id(env), name)
    if key not in _ANALYSED:
        try:
            _ANALYSED[key] = _analyse_source(env, name, seen)
        except _NotMemoisable:
            _ANALYSED[key] = None
    found = _ANALYSED[key]
    if found is None:
        raise _NotMemoisable
    return found


def _analyse_source(env: jinja2.Environment, name: str, seen: frozenset[str]) -> set[tuple[str, str | None, Any]]:
    source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
    ast = env.parse(source, name)
    if any(True for _ in ast.find_all(_UNSAFE_NODES)):
        raise _NotMemoisable
    local_modules: set[str] = set()
    for node in ast.find_all((jnodes.Import, jnodes.FromImport)):
        if node.with_context or not isinstance(node.template, jnodes.Const) or not isinstance(node.template.value, str):
            raise _NotMemoisable
        _analyse(env, node.template.value, seen | {name})  # imported without context: only its purity matters
        if isinstance(node, jnodes.Import):
            local_modules.add(node.target)
        else:
            local_modules.update(n if isinstance(n, str) else n[1] for n in node.names)
    for f in ast.find_all(jnodes.Filter):
        if f.name == "random" or env.filters.get(f.name) is not DEFAULT_FILTERS.get(f.name, _MISSING):
            raise _NotMemoisable
    for t in ast.find_all(jnodes.Test):
        if env.tests.get(t.name) is not DEFAULT_TESTS.get(t.name, _MISSING):
            raise _NotMemoisable
    macros = {m.name for m in ast.find_all(jnodes.Macro)} | local_modules | {"caller", "loop", "self", "super"}
    for call in ast.find_all(jnodes.Call):
        fn = call.node
        if isinstance(fn, jnodes.Name) and (fn.name in macros or fn.name in _PURE_GLOBALS):
            continue
        if isinstance(fn, jnodes.Getattr) and (
            (isinstance(fn.node, jnodes.Name) and fn.node.name in macros) or fn.attr in _READ_ONLY_METHODS
        ):
            continue
        raise _NotMemoisable
    undeclared = meta.find_undeclared_variables(ast)
    if "lipsum" in undeclared:
        raise _NotMemoisable
    whole: set[str] = set()
    parts: set[tuple[str, str | None, Any]] = set()

    def walk(node: jnodes.Node, parent: jnodes.Node | None, grandparent: jnodes.Node | None) -> None:
        if isinstance(node, jnodes.Name) and node.ctx == "load" and node.name in undeclared:
            called = isinstance(grandparent, jnodes.Call) and grandparent.node is parent
            if isinstance(parent, jnodes.Getitem) and parent.node is node and isinstance(parent.arg, jnodes.Const) \
                    and isinstance(parent.arg.value, (str, int)) and not called:
                parts.add((node.name, "item", parent.arg.value))
            elif isinstance(parent, jnodes.Getattr) and parent.node is node and not called:
                parts.add((node.name, "attr", parent.attr))
            else:
                whole.add(node.name)
        for child in node.iter_child_nodes():
            walk(child, node, parent)

    walk(ast, None, None)
    whole |= undeclared - {p[0] for p in parts} - whole
    return {(n, None, None) for n in whole} | {p for p in parts if p[0] not in whole}


def _freeze(value: Any, env: jinja2.Environment) -> Any:
    """A hashable stand-in that is equal for two values only when they render the same."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int or kind is float or kind is bool or value is None:
        return (kind, value)
    if kind is tuple or kind is list:
        return (kind, tuple([_freeze(v, env) for v in value]))
    if kind is dict:
        return (kind, tuple([(_freeze(k, env), _freeze(v, env)) for k, v in value.items()]))
    if is_dataclass(value) and not isinstance(value, type) and hasattr(value, "__dict__"):
        return (kind, tuple([(k, _freeze(v, env)) for k, v in vars(value).items()]))
    for name in _PURE_GLOBALS:
        if env.globals.get(name) is value:
            return ("global", name)
    raise _NotMemoisable


class _MemoisedRoot:
    """Stands in for a Template's root render function: one render per distinct input."""

    TRIAL = 256  # renders before deciding whether memoising pays (at least one hit in four)

    def __init__(self, env: jinja2.Environment, template: jinja2.Template, reads: set[tuple[str, str | None, Any]]) -> None:
        self.env = env
        self.template = template
        self.render = template.root_render_func
        self.reads = tuple(sorted(reads, key=repr))
        self.texts: dict[tuple[Any, ...], str] = {}
        self.calls = self.hits = 0

    def key(self, context: jinja2.runtime.Context) -> tuple[Any, ...]:
        env, out = self.env, []
        for name, how, arg in self.reads:
            value = context.resolve_or_missing(name)
            if value is jinja2.utils.missing:
                out.append(_MISSING)
                continue
            if how == "item":
                value = env.getitem(value, arg)
            elif how == "attr":
                value = env.getattr(value, arg)
            if isinstance(value, jinja2.Undefined):
                raise _NotMemoisable
            out.append(_freeze(value, env))
        return tuple(out)

    def __call__(self, context: jinja2.runtime.Context):
        self.calls += 1
        if self.calls == self.TRIAL and self.hits * 4 < self.calls:
            self.template.root_render_func = self.render  # inputs rarely repeat: stop paying for keys
        try:
            key = self.key(context)
        except _NotMemoisable:
            yield from self.render(context)
            return
        text = self.texts.get(key)
        if text is None:
            text = self.texts[key] = self.env.concat(self.render(context))  # type: ignore[attr-defined]
        else:
            self.hits += 1
        yield text


def memoise_template(env: jinja2.Environment, name: str) -> None:
    """Make the cached Template `name` render each distinct input once, when that is provably safe."""
    template = env.get_template(name)
    if getattr(template, "_buildtool_memo", None) is not None:
        return
    try:
        reads = _analyse(env, name)
    except (_NotMemoisable, jinja2.TemplateError):
        template._buildtool_memo = False  # type: ignore[attr-defined]
        return
    memo = _MemoisedRoot(env, template, reads)
    template.root_render_func = memo  # type: ignore[method-assign]
    template._buildtool_memo = memo  # type: ignore[attr-defined]


# --- Skeletons -------------------------------------------------------------------------------
# The node template prints a few values that differ on every node (its id, its parent's tag, the
# label values) around text that thousands of nodes share. Where static analysis shows a value is
# only ever printed as is ({{ value }}, or a loop variable over a sequence of such values), the
# template is rendered once per distinct everything-else with stand-ins in those places, and each
# node's text is that skeleton with its own values put in: str(value), which is what Jinja prints
# (no autoescape, no finalize). Anything the analysis cannot vouch for renders the ordinary way.

_DICT_ATTRS = frozenset(dir(dict))
_LOOP_ATTRS = frozenset({"first", "last", "index", "index0", "revindex", "revindex0", "length"})
_Path = tuple[str, "str | None", Any]  # (context name, None | "attr" | "item", attribute or key)


class _Skeleton:
    def __init__(self, env: jinja2.Environment, name: str) -> None:
        self.env = env
        self.name = name
        source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
        ast = env.parse(source, name)
        unsafe = (jnodes.Extends, jnodes.Macro, jnodes.CallBlock, jnodes.FilterBlock, jnodes.Import, jnodes.FromImport,
                  jnodes.Assign, jnodes.AssignBlock, jnodes.With, jnodes.Scope, jnodes.OverlayScope, jnodes.Block)
        if any(True for _ in ast.find_all(unsafe + _UNSAFE_NODES[1:])):  # _UNSAFE_NODES[0] is Include, allowed here
            raise _NotMemoisable
        for f in ast.find_all(jnodes.Filter):
            if f.name == "random" or env.filters.get(f.name) is not DEFAULT_FILTERS.get(f.name, _MISSING):
                raise _NotMemoisable
        for t in ast.find_all(jnodes.Test):
            if env.tests.get(t.name) is not DEFAULT_TESTS.get(t.name, _MISSING):
                raise _NotMemoisable
        for call in ast.find_all(jnodes.Call):
            if not (isinstance(call.node, jnodes.Getattr) and call.node.attr in _READ_ONLY_METHODS):
                raise _NotMemoisable
        self.includes: list[str] = []
        for inc in ast.find_all(jnodes.Include):
            if not isinstance(inc.template, jnodes.Name) or not inc.with_context:
                raise _NotMemoisable
            self.includes.append(inc.template.name)
        undeclared = meta.find_undeclared_variables(ast)
        if "lipsum" in undeclared or "loop" in undeclared:
            raise _NotMemoisable
        whole: set[str] = set()  # names read as a whole (structure)
        reads: dict[_Path, bool] = {}  # refined path -> printed only?
        seqs: dict[str, int | None] = {}  # loop sequences whose items are only printed -> target arity
        bad_seqs: set[str] = set()

        def occurrence(node: jnodes.Name, stack: list[jnodes.Node]) -> None:
            parent = stack[-1] if stack else None
            grand = stack[-2] if len(stack) > 1 else None
            if isinstance(parent, jnodes.Output):
                reads.setdefault((node.name, None, None), True)
                return
            refined = None
            if isinstance(parent, jnodes.Getattr) and parent.node is node:
                refined = (node.name, "attr", parent.attr)
            elif isinstance(parent, jnodes.Getitem) and parent.node is node and isinstance(parent.arg, jnodes.Const) \
                    and isinstance(parent.arg.value, (str, int)):
                refined = (node.name, "item", parent.arg.value)
            if refined is not None and not (isinstance(grand, jnodes.Call) and grand.node is parent):
                reads[refined] = reads.get(refined, True) and isinstance(grand, jnodes.Output)
                return
            if isinstance(parent, jnodes.For) and parent.iter is node and parent.test is None and not parent.recursive:
                arity = _loop_arity(parent)
                if arity is not False and _items_only_printed(parent) and seqs.get(node.name, arity) == arity:
                    seqs[node.name] = arity  # type: ignore[assignment]
                    return
                bad_seqs.add(node.name)
            whole.add(node.name)

        def walk(node: jnodes.Node, stack: list[jnodes.Node], bound: frozenset[str]) -> None:
            if isinstance(node, jnodes.Name) and node.ctx == "load" and node.name in undeclared and node.name not in bound:
                occurrence(node, stack)
            if isinstance(node, jnodes.For):
                walk(node.iter, stack + [node], bound)
                inner = bound | {n.name for n in node.target.find_all(jnodes.Name)} | {"loop"}
                for child in ([node.test] if node.test is not None else []) + node.body:
                    walk(child, stack + [node], inner)
                for child in node.else_:
                    walk(child, stack + [node], bound)
                return
            for child in node.iter_child_nodes():
                walk(child, stack + [node], bound)

        walk(ast, [], frozenset())
        whole |= bad_seqs
        whole |= {n for n in seqs if any(p[0] == n for p in reads)}  # a sequence read some other way too
        for path in list(reads):
            if path[1] is None and not reads[path]:
                whole.add(path[0])
        names_by_kind: dict[str, set[str | None]] = {}
        for name, how, _ in reads:
            names_by_kind.setdefault(name, set()).add(how)
        whole |= {n for n, kinds in names_by_kind.items() if len(kinds) > 1}  # name.x and name["y"] or the name itself
        whole |= set(self.includes)
        self.whole = tuple(sorted(whole))
        self.structure = tuple(sorted((p for p, printed in reads.items() if p[0] not in whole and p[1] is not None and not printed), key=repr))
        self.slots = tuple(sorted((p for p, printed in reads.items() if p[0] not in whole and printed), key=repr))
        self.seqs = tuple(sorted((n, a) for n, a in seqs.items() if n not in whole))
        self.taken = {p[0] for p in self.slots} | {n for n, _ in self.seqs}
        self.skeletons: dict[tuple[Any, ...], tuple[str, str]] = {}
        self.tokens: dict[Any, int] = {}  # frozen value -> its number in skeleton keys
        self.partial_reads: dict[str, tuple[_Path, ...] | None] = {}

    def _value(self, context: dict[str, Any], path: _Path) -> Any:
        """What the template gets for `path`: Environment.getattr/getitem semantics (tried plainly first)."""
        name, how, arg = path
        try:
            value = context[name]
        except KeyError:
            raise _NotMemoisable from None
        if how == "attr":
            if type(value) is dict and arg not in _DICT_ATTRS and arg in value:
                value = value[arg]  # what getattr-then-item finds, without raising AttributeError first
            else:
                try:
                    value = getattr(value, arg)
                except AttributeError:
                    value = self.env.getattr(value, arg)
        elif how == "item":
            try:
                value = value[arg]
            except (AttributeError, TypeError, LookupError):
                value = self.env.getitem(value, arg)
        if isinstance(value, jinja2.Undefined):
            raise _NotMemoisable
        return value

    def _partial(self, name: Any) -> tuple[_Path, ...]:
        if type(name) is not str:
            raise _NotMemoisable
        if name not in self.partial_reads:
            try:
                reads = _analyse(self.env, name)
            except (_NotMemoisable, jinja2.TemplateError):
                reads = None
            if reads is not None and {p[0] for p in reads} & self.taken:
                reads = None  # the partial reads what the skeleton replaces
            self.partial_reads[name] = None if reads is None else tuple(sorted(reads, key=repr))
        reads = self.partial_reads[name]
        if reads is None:
            raise _NotMemoisable
        return reads

    def render(self, template: jinja2.Template, context: dict[str, Any], shared: dict[int, tuple[Any, Any]] | None) -> str:
        """_tidy(template.render(context)); `shared` remembers frozen objects by identity for one render pass."""
        env, tokens = self.env, self.tokens
        read = partial(self._value, context)
        key: list[Any] = []
        reads = self.structure
        for name in self.includes:
            reads += self._partial(context.get(name))
        for value in itertools.chain([context[name] if name in context else _MISSING for name in self.whole], map(read, reads)):
            if type(value) is str:
                key.append(value)
                continue
            if value is _MISSING:
                raise _NotMemoisable
            if shared is not None:
                hit = shared.get(id(value))
                if hit is not None and hit[0] is value:
                    key.append(hit[1])
                    continue
            token = tokens.setdefault(_freeze(value, env), len(tokens))  # a number per distinct frozen value
            if shared is not None:
                shared[id(value)] = (value, token)
            key.append(token)
        values = [str(read(path)) for path in self.slots]
        for name, arity in self.seqs:
            seq = context.get(name, _MISSING)
            if type(seq) is not tuple and type(seq) is not list:
                raise _NotMemoisable
            if arity is None:
                values += map(str, seq)
            else:
                if not all(type(item) is tuple and len(item) == arity for item in seq):
                    raise _NotMemoisable  # lists or other shapes: not worth a second path
                values += [str(v) for item in seq for v in item]
            key.append(len(seq))
        frozen = tuple(key)
        skeleton = self.skeletons.get(frozen)
        if skeleton is None:
            skeleton = self.skeletons[frozen] = self._skeleton(template, context, len(values))
        # Tidying commutes with putting the values in when each is one line, not empty and without
        # whitespace at either end: then lines, blank lines and line ends are those of the skeleton.
        if all(values) and [v.strip() for v in values] == values and len("".join(values).splitlines()) <= 1:
            return skeleton[1].format(*values)
        return _tidy(skeleton[0].format(*values))

    def _skeleton(self, template: jinja2.Template, context: dict[str, Any], count: int) -> tuple[str, str]:
        """The template rendered with stand-ins for the values, as is and tidied, as format strings."""
        stand_ins = iter(f"\0{_NONCE}:{i}\0" for i in range(count))
        ctx = dict(context)
        proxies: dict[str, dict[Any, Any]] = {}
        for name, how, arg in self.slots:
            if how is None:
                ctx[name] = next(stand_ins)
            else:
                proxies.setdefault(name, {})[arg] = next(stand_ins)
        for name, how, arg in self.structure:
            if name in proxies:
                proxies[name][arg] = self._value(context, (name, how, arg))
        for name, attrs in proxies.items():
            how = next(p[1] for p in self.slots if p[0] == name)
            ctx[name] = attrs if how == "item" else _Proxy(attrs)
        for name, arity in self.seqs:
            seq = context[name]
            ctx[name] = tuple(next(stand_ins) if arity is None else tuple(next(stand_ins) for _ in range(arity)) for _ in seq)
        text = template.render(ctx)
        return _parse_skeleton(text, count), _parse_skeleton(_tidy(text), count)


def _parse_skeleton(text: str, count: int) -> str:
    """The skeleton as a str.format template: text with braces doubled, {i} where stand-in i was."""
    pieces = text.split("\0")
    if len(pieces) % 2 != 1:
        raise _NotMemoisable
    out = []
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            out.append(piece.replace("{", "{{").replace("}", "}}"))
            continue
        nonce, _, index = piece.partition(":")  # a stray NUL in the text breaks this: render the ordinary way
        if nonce != _NONCE or not index.isdigit() or int(index) >= count:
            raise _NotMemoisable
        out.append("{" + str(int(index)) + "}")
    return "".join(out)


class _Proxy:
    """Stands in for an object the node template reads only through a few attributes."""

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.__dict__.update(attrs)


def _loop_arity(loop: jnodes.For) -> int | None | bool:
    """Items unpacked into a tuple of names: its length; one name: None; anything else: False."""
    target = loop.target
    if isinstance(target, jnodes.Name):
        return None
    if isinstance(target, jnodes.Tuple) and all(isinstance(t, jnodes.Name) for t in target.items):
        return len(target.items)
    return False


def _items_only_printed(loop: jnodes.For) -> bool:
    """The loop's variables are only printed as is, and `loop` only asked about its position."""
    targets = {n.name for n in loop.target.find_all(jnodes.Name)}
    ok = True

    def walk(node: jnodes.Node, parent: jnodes.Node | None) -> None:
        nonlocal ok
        if isinstance(node, jnodes.For):
            ok = False  # nested loops: keep it simple
        if isinstance(node, jnodes.Name) and node.ctx == "load":
            if node.name in targets and not isinstance(parent, jnodes.Output):
                ok = False
            if node.name == "loop" and not (isinstance(parent, jnodes.Getattr) and parent.attr in _LOOP_ATTRS):
                ok = False
        for child in node.iter_child_nodes():
            walk(child, node)

    for child in loop.body:
        walk(child, None)
    return ok and not loop.else_


_NONCE = secrets.token_hex(8)  # stand-ins are NUL + this + index + NUL: no input can mimic them by accident


def render_tidy(template: jinja2.Template, context: dict[str, Any], shared: dict[int, tuple[Any, Any]] | None = None) -> str:
    """_tidy(template.render(context)), through the template's skeleton when it has one."""
    skeleton = getattr(template, "_buildtool_skeleton", _MISSING)
    if skeleton is _MISSING:
        try:
            skeleton = _Skeleton(template.environment, template.name)  # type: ignore[arg-type]
        except (_NotMemoisable, jinja2.TemplateError):
            skeleton = None
        template._buildtool_skeleton = skeleton  # type: ignore[attr-defined]
    if skeleton is not None:
        try:
            return skeleton.render(template, context, shared)  # type: ignore[union-attr]
        except _NotMemoisable:
            pass
    return _tidy(template.render(context))


class _Pass:
    """What one render_dag call remembers across its nodes (objects stay alive and unchanged meanwhile)."""

    def __init__(self) -> None:
        self.memoised: set[str] = set()  # partials made memoising
        self.apt: dict[tuple[Any, ...], tuple[tuple[str, str], ...]] = {}  # pinned apt packages per flavor, component, base
        self.frozen: dict[int, tuple[Any, Any]] = {}  # for skeleton keys
        self.envs: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}  # one object per distinct env


def node_flavor(node: Node) -> Flavor:
    return SYSTEM if node.component is None else flavor(node.component.flavor)


def pip_set_id(node: Node) -> str:
    return node.id


def ancestor_pins(dag: Dag, node: Node, lock: Lock) -> tuple[str, ...]:
    """name==version of every pip pin installed by the node's ancestors (constraints for its own set)."""
    pins: dict[str, str] = {}
    for ancestor in dag.chain(node.id)[:-1]:
        resolved = lock.pip.get(pip_set_id(ancestor)) if ancestor.component is not None else None
        for pin in resolved.pins if resolved else ():
            pins[pin.name] = pin.version
    return tuple(f"{n}=={v}" for n, v in sorted(pins.items()))


def python_line(facts: dict[str, Any]) -> str:
    return ".".join(str(facts.get("python.version", "")).split(".")[:2])


def requirements_text(pins: tuple[PipPin, ...]) -> str:
    lines = ["# Generated by buildtool from images.lock: exact versions with hashes, installed with --no-deps."]
    lines += [f"{p.name}=={p.version} --hash=sha256:{p.sha256}" for p in sorted(pins, key=lambda p: p.name.lower())]
    return "\n".join(lines) + "\n"


def node_labels(config: Config, node: Node, parent_ref: str, fl: Flavor) -> dict[str, str]:
    project = config.project
    title = node.variants[0] if node.variants else node.id
    labels = {
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.description": project["description"] if "description" in project else f"{project['name']} image {title}",
        "org.opencontainers.image.base.name": parent_ref,
        "io.buildtool.node": node.id,
    }
    for key in ("source", "vendor", "licenses"):
        if key in project:
            labels[_PROJECT_LABELS[key]] = project[key]
    labels.update(fl.labels(node.component, node.facts))
    return dict(sorted(labels.items()))


_PROJECT_LABELS = {key: f"org.opencontainers.image.{key}" for key in ("source", "vendor", "licenses")}


def render_node(config: Config, lock: Lock, dag: Dag, node: Node, parent_ref: str) -> tuple[str, dict[str, str]]:
    return _render_node(config, lock, node, parent_ref, lambda: ancestor_pins(dag, node, lock), None)


def _render_node(config: Config, lock: Lock, node: Node, parent_ref: str, constraints: Callable[[], tuple[str, ...]],
                 state: _Pass | None) -> tuple[str, dict[str, str]]:
    fl = node_flavor(node)
    component = node.component
    apt_key = (fl.name, component.axis, component.key, node.base.key) if component is not None else (fl.name, node.base.key)
    apt = state.apt.get(apt_key) if state is not None else None
    if apt is None:
        apt_names = fl.apt_packages(component, node.base)
        apt = tuple((name, lock.apt_pin(node.base.key, name)) for name in apt_names)
        if state is not None:
            state.apt[apt_key] = apt
    files = dict(fl.context_files(component, node.facts))
    requires = fl.pip_requirements(component, node.facts) if component is not None else ()
    if requires:
        set_id, python, wanted, ancestors = pip_set_id(node), python_line(node.facts), tuple(requires), constraints()
        pip_set = lock.pip.get(set_id)
        if pip_set is None or pip_set.requires != wanted or pip_set.python != python or pip_set.constraints != ancestors:
            pip_set = lock.pip_set(set_id, python, wanted, ancestors)  # raises the missing/stale error
        files["requirements.txt"] = requirements_text(pip_set.pins)
    env = fl.env(component, node.facts) if component is not None else {}
    env_items = tuple(env.items())
    if state is not None:
        env_items = state.envs.setdefault(env_items, env_items)  # equal envs, one object: frozen once per pass
    context = {
        "node": node,
        "component": component,
        "fields": component.fields if component is not None else {},
        "facts": node.facts,
        "apt": apt,
        "has_requirements": bool(requires),
        "system": config.system,
        "parent_ref": parent_ref,
        "partial": fl.partial,
        "env": env_items,
        "labels": tuple(node_labels(config, node, parent_ref, fl).items()),
    }
    templates = environment()
    try:
        if state is None or fl.partial not in state.memoised:
            memoise_template(templates, fl.partial)
            if state is not None:
                state.memoised.add(fl.partial)
        text = render_tidy(templates.get_template("node.Dockerfile.j2"), context, state.frozen if state is not None else None)
    except jinja2.TemplateNotFound as exc:  # a flavor without its partial is a developer error
        raise UserError(f"template not found: {exc.name}", expected=f"templates/{fl.partial}") from None
    return text, files


# Characters besides space, tab and newline that str.splitlines or str.rstrip treat specially (ASCII text).
_ODD_ASCII = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")


def _tidy(text: str) -> str:
    """Collapse runs of blank lines so partials can be written freely; end with one newline."""
    if text.isascii() and not any(c in text for c in _ODD_ASCII):
        # The common case with str methods that run in C; the same result as the general loop below.
        if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
            text = "\n".join([line.rstrip(" \t") for line in text.split("\n")])
        while "\n\n\n" in text:
            text = text.replace("\n\n\n", "\n\n")
        return text.lstrip("\n").rstrip("\n") + "\n"
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    return "\n".join(out).rstrip("\n") + "\n"


def content_hash(parent_hash: str, dockerfile: str, files: dict[str, str]) -> str:
    parts = [b"buildtool-node-v1\0", parent_hash.encode(), b"\0Dockerfile\0", dockerfile.encode(), b"\0"]
    for name in sorted(files):
        mode = b"755" if name in EXECUTABLE else b"644"
        parts += [name.encode(), b"\0", mode, b"\0", files[name].encode(), b"\0"]
    return hashlib.sha256(b"".join(parts)).hexdigest()  # one update over the concatenation: the same digest


def render_dag(config: Config, lock: Lock, dag: Dag) -> dict[str, RenderedNode]:
    """Render every non-base node in topological order; bases hash their recipe."""
    fresh_templates()
    state = _Pass()
    out: dict[str, RenderedNode] = {}
    hashes: dict[str, str] = {}
    refs: dict[str, str] = {}
    # pip pins installed by a node and its ancestors (name -> version), so that a node's constraints
    # come from its parent's map instead of a walk up its chain: the same as ancestor_pins().
    installed: dict[str, dict[str, str]] = {}
    constraints: dict[str, tuple[str, ...]] = {}  # parent id -> ancestor_pins of its children

    for node in dag.nodes.values():
        if node.stage == "base":
            hashes[node.id] = hashlib.sha256(node.base.local_ref.encode()).hexdigest()
            refs[node.id] = node.base.local_ref
            installed[node.id] = {}
            continue
        parent = node.parent
        parent_pins = installed[parent]  # type: ignore[index]
        resolved = lock.pip.get(pip_set_id(node)) if node.component is not None else None
        if resolved is not None and resolved.pins:
            mine = dict(parent_pins)
            for pin in resolved.pins:
                mine[pin.name] = pin.version
            installed[node.id] = mine
        else:
            installed[node.id] = parent_pins

        def pins_of_ancestors(parent: str = parent, pins: dict[str, str] = parent_pins) -> tuple[str, ...]:
            found = constraints.get(parent)
            if found is None:
                found = constraints[parent] = tuple(f"{n}=={v}" for n, v in sorted(pins.items()))
            return found

        parent_ref = refs[parent]  # type: ignore[index]
        dockerfile, files = _render_node(config, lock, node, parent_ref, pins_of_ancestors, state)
        digest = content_hash(hashes[parent], dockerfile, files)  # type: ignore[index]
        rendered = RenderedNode(node.id, dockerfile, tuple(sorted(files.items())), digest, parent_ref)
        out[node.id] = rendered
        hashes[node.id] = digest
        refs[node.id] = rendered.tag
    return out
