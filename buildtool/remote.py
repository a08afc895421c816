"""Registry-side lookups: which content-hash tags a registry already has, and pulling parents from it.

The content-hash tag (`buildtool/<node>:h-<hash20>`) names a node's rendered content
and its parent's hash, so a tag that exists in the registry is a node nobody needs to
build again. Two uses:

- CI: a job asks the registry (HTTP API v2, `HEAD /v2/<ns>/<node>/manifests/h-...`,
  TLS with the registry CA, basic or bearer auth) which tags exist, and prints a job
  matrix of only the missing nodes per DAG level (`missing_matrix`). A changed node
  changes every hash below it, so "missing" is exactly "changed, plus its subtree".
- Runners with an empty cache (`plan_against_registry`, `ensure_parent`): a node that
  the registry has is not built; a missing node's ancestors are pulled by content-hash
  tag and retagged locally (`<registry>/<ns>/<node>:h-...` -> `buildtool/<node>:h-...`),
  never rebuilt. When nothing is missing, nothing is pulled either.

Settings: the site overlay's `registry` and `namespace` (BUILDTOOL_REGISTRY,
BUILDTOOL_NAMESPACE); credentials from BUILDTOOL_REGISTRY_USER and
BUILDTOOL_REGISTRY_PASSWORD (or BUILDTOOL_REGISTRY_PASSWORD_FILE); the registry CA from
BUILDTOOL_REGISTRY_CA, else /etc/docker/certs.d/<host>/ca.crt (where the Docker Engine
looks for it), else the system trust store. Credentials are never printed.

`python -m buildtool.remote --help` gives the command-line entry points CI uses.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cli_types import level, positive_int
from .credpolicy import keeps_authorization, mask_url, may_send_basic, realm_problem
from .errors import OperationError

LOCAL_NAMESPACE = "buildtool"
CERTS_D = Path("/etc/docker/certs.d")
MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))
DEFAULT_LOOKUPS = 8  # HEAD requests in flight


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Registry:
    """Where content-hash tags are published, and how to reach it."""

    host: str  # host[:port]
    namespace: str = LOCAL_NAMESPACE
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    ca: Path | None = None
    scheme: str = "https"
    insecure: bool = False  # plain HTTP allowed for credentials (loopback only) and for bearer realms

    @classmethod
    def from_env(cls, host: str | None = None, namespace: str | None = None, env: Mapping[str, str] | None = None,
                 insecure: bool | None = None) -> Registry:
        env = os.environ if env is None else env
        if insecure is None:
            insecure = env.get("BUILDTOOL_INSECURE_REGISTRY", "") in ("1", "true")
        host = host or env.get("BUILDTOOL_REGISTRY") or "127.0.0.1:5000"
        scheme = "https"
        if "://" in host:
            scheme, host = host.split("://", 1)
        host = host.rstrip("/")
        password = env.get("BUILDTOOL_REGISTRY_PASSWORD")
        pw_file = env.get("BUILDTOOL_REGISTRY_PASSWORD_FILE")
        if not password and pw_file:
            try:
                password = Path(pw_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise OperationError(f"cannot read BUILDTOOL_REGISTRY_PASSWORD_FILE {pw_file}: {exc.strerror}") from None
        ca_env = env.get("BUILDTOOL_REGISTRY_CA")
        ca: Path | None = Path(ca_env) if ca_env else None
        if ca is None and (CERTS_D / host / "ca.crt").is_file():
            ca = CERTS_D / host / "ca.crt"
        return cls(host=host, namespace=namespace or env.get("BUILDTOOL_NAMESPACE") or LOCAL_NAMESPACE,
                   username=env.get("BUILDTOOL_REGISTRY_USER") or None, password=password or None, ca=ca, scheme=scheme,
                   insecure=insecure)

    def repository(self, local_tag: str) -> tuple[str, str]:
        """'buildtool/<node>:h-x' -> ('<ns>/<node>', 'h-x'), the registry-side repository and tag."""
        repo, tag = split_tag(local_tag)
        name = repo.split("/", 1)[1] if repo.startswith(LOCAL_NAMESPACE + "/") else repo
        return f"{self.namespace}/{name}", tag

    def remote_ref(self, local_tag: str) -> str:
        repo, tag = self.repository(local_tag)
        return f"{self.host}/{repo}:{tag}"

    def auth_config(self) -> dict[str, str] | None:
        """For the Docker SDK's pull/push (the engine talks to the registry)."""
        if not self.username:
            return None
        return {"username": self.username, "password": self.password or "", "serveraddress": self.host}


def split_tag(ref: str) -> tuple[str, str]:
    slash, colon = ref.rfind("/"), ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, "latest"


# --------------------------------------------------------------------------- HTTP API v2


class RegistryClient:
    """HEAD manifests over the registry HTTP API v2 with urllib (basic auth; bearer tokens when asked)."""

    def __init__(self, registry: Registry, timeout: float = 15.0) -> None:
        self.registry = registry
        self.timeout = timeout
        self._ctx = ssl.create_default_context(cafile=str(registry.ca)) if registry.ca else ssl.create_default_context()
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self._ctx), _SameOriginAuthRedirects())
        self._tokens: dict[str, str] = {}
        self.requests = 0

    def _basic(self, url: str) -> str | None:
        """Basic credentials for `url`: only the registry's own origin over TLS (or an insecure loopback registry)."""
        r = self.registry
        if not r.username:
            return None
        if not may_send_basic(url, r.host, r.insecure):
            raise OperationError(f"registry {r.host}: refusing to send credentials to {mask_url(url)} "
                                 "(only over https to the registry itself; plain http only to a loopback registry marked insecure "
                                 "with BUILDTOOL_INSECURE_REGISTRY=1)")
        return "Basic " + base64.b64encode(f"{r.username}:{r.password or ''}".encode()).decode()

    def _open(self, method: str, url: str, headers: dict[str, str]) -> tuple[int, Mapping[str, str]]:
        req = urllib.request.Request(url, method=method, headers=headers)
        self.requests += 1
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                resp.read()
                return resp.status, resp.headers
        except urllib.error.HTTPError as exc:
            exc.read()
            return exc.code, exc.headers
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OperationError(f"registry {self.registry.host} unreachable ({reason})") from None

    def manifest_exists(self, repository: str, tag: str) -> bool:
        """True on 200, False on 404 (or the registry's NAME_UNKNOWN); OperationError on anything else."""
        url = f"{self.registry.scheme}://{self.registry.host}/v2/{repository}/manifests/{urllib.parse.quote(tag, safe='')}"
        headers = {"Accept": MANIFEST_TYPES}
        token = self._tokens.get(repository)
        auth = f"Bearer {token}" if token else self._basic(url)
        if auth:
            headers["Authorization"] = auth
        status, resp_headers = self._open("HEAD", url, headers)
        if status == 401:
            challenge = resp_headers.get("WWW-Authenticate", "")
            if challenge.lower().startswith("bearer ") and repository not in self._tokens:
                self._tokens[repository] = self._bearer(challenge)
                return self.manifest_exists(repository, tag)
            why = "bad or missing credentials (BUILDTOOL_REGISTRY_USER / BUILDTOOL_REGISTRY_PASSWORD)"
            raise OperationError(f"registry {self.registry.host} refused {repository}:{tag}: 401 {why}")
        if status == 200:
            return True
        if status == 404:
            return False
        raise OperationError(f"registry {self.registry.host}: HEAD {repository}:{tag} answered {status}")

    def _bearer(self, challenge: str) -> str:
        params = dict(_parse_challenge(challenge[len("bearer "):]))
        realm = params.pop("realm", None)
        if not realm:
            raise OperationError(f"registry {self.registry.host}: bearer challenge without a realm")
        problem = realm_problem(realm, self.registry.insecure)
        if problem and self.registry.username:
            raise OperationError(f"registry {self.registry.host}: not sending credentials: {problem}")
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(params)
        headers = {}
        r = self.registry
        if r.username:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{r.username}:{r.password or ''}".encode()).decode()
        req = urllib.request.Request(url, headers=headers)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                doc = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise OperationError(f"registry {self.registry.host}: token request failed ({getattr(exc, 'reason', exc)})") from None
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise OperationError(f"registry {self.registry.host}: token response without a token")
        return str(token)

    def existing(self, local_tags: Iterable[str], jobs: int = DEFAULT_LOOKUPS) -> set[str]:
        """The subset of `local_tags` (buildtool/<node>:h-...) whose manifest the registry has."""
        tags = sorted(set(local_tags))
        if not tags:
            return set()

        def probe(t: str) -> tuple[str, bool]:
            return t, self.manifest_exists(*self.registry.repository(t))

        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(tags)))) as pool:
            return {t for t, ok in pool.map(probe, tags) if ok}


class _SameOriginAuthRedirects(urllib.request.HTTPRedirectHandler):
    """urllib copies every header into a redirected request, Authorization included: keep it only
    within the same origin (so never to another host, and never from https down to http)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and not keeps_authorization(req.full_url, new.full_url):
            for name in list(new.headers):
                if name.lower() == "authorization":
                    del new.headers[name]
            new.unredirected_hdrs.pop("Authorization", None)
        return new


def _parse_challenge(text: str) -> Iterable[tuple[str, str]]:
    for part in text.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            yield k.strip(), v.strip().strip('"')


# --------------------------------------------------------------------------- pure planning


@dataclass(frozen=True)
class RemotePlan:
    """What a runner does given its local tags and the registry's."""

    to_build: list[str]  # not local, not in the registry: build (topological order)
    to_pull: list[str]  # not local, in the registry, an ancestor of a node to build: pull + retag
    from_registry: list[str]  # in the registry and not needed locally: neither pulled nor built
    local: list[str]  # already tagged on this engine


def plan_against_registry(nodes: Sequence[str], parents: Mapping[str, str | None], tag_of: Mapping[str, str],
                          local_tags: Iterable[str], remote_tags: Iterable[str]) -> RemotePlan:
    """Decide from tag sets alone; `nodes` in topological order, parents outside `nodes` (bases) are ignored."""
    local, remote = set(local_tags), set(remote_tags)
    in_sel = set(nodes)
    is_local = {n for n in nodes if tag_of[n] in local}
    to_build = [n for n in nodes if n not in is_local and tag_of[n] not in remote]
    need: set[str] = set()
    for n in to_build:
        p = parents.get(n)
        while p is not None and p in in_sel:
            if p not in is_local and p not in to_build:
                need.add(p)
            p = parents.get(p)
    to_pull = [n for n in nodes if n in need]
    from_registry = [n for n in nodes if n not in is_local and n not in need and n not in to_build]
    return RemotePlan(to_build=to_build, to_pull=to_pull, from_registry=from_registry, local=[n for n in nodes if n in is_local])


def missing_levels(levels: Sequence[Sequence[str]], tag_of: Mapping[str, str], remote_tags: Iterable[str]) -> list[list[str]]:
    """Per DAG level, the nodes whose content-hash tag the registry does not have."""
    remote = set(remote_tags)
    return [[n for n in ids if tag_of[n] not in remote] for ids in levels]


# --------------------------------------------------------------------------- engine edge


def ensure_parent(client: Any, parent_tag: str, registry: Registry) -> str:
    """Make `parent_tag` (buildtool/<node>:h-...) exist on the engine: pull it from the registry by
    content-hash tag and retag it locally. Returns the image id. No-op when it is already local."""
    from docker.errors import APIError, ImageNotFound, NotFound

    from . import engine

    existing = engine.image_id(client, parent_tag)
    if existing:
        return existing
    ref = registry.remote_ref(parent_tag)
    repo, tag = split_tag(ref)
    try:
        for ev in client.api.pull(repo, tag=tag, stream=True, decode=True, auth_config=registry.auth_config()):
            if isinstance(ev, dict) and ev.get("error"):
                raise OperationError(f"pull {ref}: {ev['error']}")
        image = client.images.get(ref)
    except (APIError, ImageNotFound, NotFound) as exc:
        raise OperationError(f"pull {ref}: {getattr(exc, 'explanation', None) or exc}") from None
    engine.tag(client, image.id, parent_tag)
    return image.id


def push_tag(client: Any, local_tag: str, registry: Registry) -> str:
    """Push a local content-hash tag to the registry under the same name; returns the pushed digest,
    or "present" when the registry already has that content-hash tag (nothing is pushed)."""
    from docker.errors import APIError

    from . import engine

    ref = registry.remote_ref(local_tag)
    if RegistryClient(registry).manifest_exists(*registry.repository(local_tag)):
        return "present"  # content-addressed: the registry's copy is this node already
    image = engine.image_id(client, local_tag)
    if not image:
        raise OperationError(f"push {local_tag}: no such local image")
    engine.tag(client, image, ref)
    repo, tag = split_tag(ref)
    digest = ""
    try:
        for ev in client.api.push(repo, tag=tag, stream=True, decode=True, auth_config=registry.auth_config()):
            if ev.get("error"):
                raise OperationError(f"push {ref}: {ev['error']}")
            aux = ev.get("aux") or {}
            digest = aux.get("Digest", digest)
    except APIError as exc:
        raise OperationError(f"push {ref}: {exc.explanation or exc}") from None
    return digest


@dataclass
class PullReport:
    pulled: dict[str, str]  # local tag -> image id
    seconds: float


def pull_for_build(client: Any, plan: RemotePlan, tag_of: Mapping[str, str], registry: Registry) -> PullReport:
    """Pull every node of `plan.to_pull` (the ancestors of what will be built), parents first."""
    t0 = time.monotonic()
    pulled = {tag_of[n]: ensure_parent(client, tag_of[n], registry) for n in plan.to_pull}
    return PullReport(pulled=pulled, seconds=time.monotonic() - t0)


def _local_tags(host: str | None = None) -> set[str]:
    from .build import _local_tags, _local_tags_quick

    if host is None:
        quick = _local_tags_quick()
        if quick is not None:
            return set(quick)
    from . import engine

    return set(_local_tags(engine.docker_client()))


# --------------------------------------------------------------------------- selection helpers


def _selection(args: argparse.Namespace) -> tuple[Any, Any, list[str], list[list[str]]]:
    """(config, generated, needed nodes in topological order, levels restricted to them)."""
    from .config import load_config
    from .expand import select
    from .generate import generate
    from .lock import load_lock

    config = load_config(args.config, args.site)
    lock = load_lock(args.lock or args.config.with_name("images.lock"))
    g = generate(config, lock)
    chosen = select(config, g.expansion.variants, args.group, tuple(args.filter))
    nodes = selected_nodes(g, chosen, getattr(args, "node", None))
    wanted = set(nodes)
    levels = [ids for ids in ([nid for nid in ids if nid in wanted] for ids in g.dag.levels()) if ids]
    return config, g, nodes, levels


def selected_nodes(g: Any, chosen: Sequence[Any], node: str | None = None) -> list[str]:
    """The layer nodes (no bases) of the chosen images' chains, topological order; with `node`, only
    the part of them on that node's chain (the node and its ancestors)."""
    wanted: set[str] = set()
    for v in chosen:
        wanted.update(n.id for n in g.dag.chain(g.dag.variant_node[v.name]) if n.stage != "base")
    if node:
        if node not in g.dag.nodes:
            raise OperationError(f"no node {node!r} in the plan")
        wanted &= {n.id for n in g.dag.chain(node)}
        if node not in wanted:
            raise OperationError(f"node {node!r} is not in the selected images' chains")
    return [nid for nid in g.dag.nodes if nid in wanted]


def _registry(args: argparse.Namespace, config: Any) -> Registry:
    return Registry.from_env(host=args.registry or os.environ.get("BUILDTOOL_REGISTRY") or config.site.registry,
                             namespace=os.environ.get("BUILDTOOL_NAMESPACE") or config.site.namespace, insecure=config.site.insecure)


def _matrix_entry(g: Any, nid: str) -> dict[str, str]:
    return {"node": nid, "tag": g.rendered[nid].tag, "parent_tag": g.rendered[nid].parent_ref,
            "context": f"generated/nodes/{nid}", "base": g.dag.nodes[nid].base.key}


def cmd_missing(args: argparse.Namespace) -> int:
    """JSON job matrix of the nodes the registry lacks: one level (`{"include": [...]}`), or all levels."""
    config, g, nodes, levels = _selection(args)
    reg = _registry(args, config)
    tag_of = {n: g.rendered[n].tag for n in nodes}
    remote = RegistryClient(reg).existing(tag_of.values(), jobs=args.lookups)
    missing = missing_levels(levels, tag_of, remote)
    if args.level is not None:
        if not 0 <= args.level < len(levels):
            raise OperationError(f"no DAG level {args.level} (0..{len(levels) - 1})")
        print(json.dumps({"include": [_matrix_entry(g, n) for n in missing[args.level]]}, sort_keys=True))
        return 0
    doc: dict[str, Any] = {f"level{i}": json.dumps({"include": [_matrix_entry(g, n) for n in ids]}, sort_keys=True)
                           for i, ids in enumerate(missing)}
    doc["levels"] = len(levels)
    doc["missing"] = sum(len(ids) for ids in missing)
    doc["present"] = len(nodes) - doc["missing"]
    if args.github_output:
        with open(args.github_output, "a", encoding="utf-8") as fh:
            for i, ids in enumerate(missing):
                fh.write(f"level{i}={doc[f'level{i}']}\n")
                fh.write(f"any{i}={'true' if ids else 'false'}\n")
            fh.write(f"missing={doc['missing']}\n")
    print(json.dumps(doc, indent=2, sort_keys=True))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """What a runner would do: build / pull / leave in the registry, from the registry and local tags alone."""
    t0 = time.monotonic()
    config, g, nodes, _ = _selection(args)
    reg = _registry(args, config)
    tag_of = {n: g.rendered[n].tag for n in nodes}
    parents = {n: g.dag.nodes[n].parent for n in nodes}
    client = RegistryClient(reg)
    remote = client.existing(tag_of.values(), jobs=args.lookups)
    local = _local_tags()
    plan = plan_against_registry(nodes, parents, tag_of, local, remote)
    pulled: dict[str, str] = {}
    if args.pull and plan.to_pull:
        from . import engine

        pulled = pull_for_build(engine.docker_client(), plan, tag_of, reg).pulled
    out = {"to_build": plan.to_build, "to_pull": plan.to_pull, "from_registry": plan.from_registry, "local": plan.local,
           "pulled": pulled, "registry": reg.host, "requests": client.requests, "seconds": round(time.monotonic() - t0, 3)}
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    """Pull content-hash tags (e.g. a matrix entry's parent_tag) from the registry and retag them locally."""
    from . import engine
    from .config import load_config

    config = load_config(args.config, args.site)
    reg = _registry(args, config)
    client = engine.docker_client()
    for t in args.tags:
        print(json.dumps({"tag": t, "image": ensure_parent(client, t, reg), "from": reg.remote_ref(t)}, sort_keys=True))
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Push local content-hash tags to the registry under the same content-hash tag."""
    from . import engine
    from .config import load_config

    config = load_config(args.config, args.site)
    reg = _registry(args, config)
    client = engine.docker_client()
    for t in args.tags:
        print(json.dumps({"tag": t, "digest": push_tag(client, t, reg), "to": reg.remote_ref(t)}, sort_keys=True))
    return 0


def leaves(nodes: Sequence[str], parents: Mapping[str, str | None]) -> list[str]:
    """The nodes of `nodes` that are no other node's parent within `nodes`."""
    inner = {parents.get(n) for n in nodes}
    return [n for n in nodes if n not in inner]


def restrict_to_nodes(g: Any, targets: Sequence[str]) -> tuple[Any, list[Any]]:
    """A view of `g` plus stand-in images whose chains end at `targets`, so that `build.run_build`
    builds exactly those chains (an inner node alone, not the images below it)."""
    import dataclasses
    from types import SimpleNamespace

    names = {f"node:{n}": n for n in targets}
    dag = dataclasses.replace(g.dag, variant_node={**g.dag.variant_node, **names})
    return dataclasses.replace(g, dag=dag), [SimpleNamespace(name=name) for name in names]


def build_with_registry(config: Any, g: Any, nodes: Sequence[str], args: Any, registry: Registry, out: Any = None) -> int:
    """Build `nodes` (topological order) on this engine using the registry as the cache:

    nodes the registry has are neither built nor pulled unless a node to build sits below them,
    in which case they are pulled by content-hash tag and retagged locally (never rebuilt). What is
    left is handed to `build.run_build` restricted to exactly those chains. Writes the decision
    to stdout (JSON line `registry-plan: {...}`) before building; 0 when nothing needs building.
    """
    out = out or sys.stdout
    if getattr(args, "force", False):
        raise OperationError("--force rebuilds what exists; it does not go with the registry as the cache")
    t0 = time.monotonic()
    tag_of = {n: g.rendered[n].tag for n in nodes}
    parents = {n: g.dag.nodes[n].parent for n in nodes}
    lookups = RegistryClient(registry)
    remote = lookups.existing(tag_of.values(), jobs=getattr(args, "lookups", DEFAULT_LOOKUPS) or DEFAULT_LOOKUPS)
    local = _local_tags()
    plan = plan_against_registry(nodes, parents, tag_of, local, remote)
    pulled: dict[str, str] = {}
    client = None
    if plan.to_build and plan.to_pull:
        from . import engine

        client = engine.docker_client()
        pulled = pull_for_build(client, plan, tag_of, registry).pulled
    decision = {"registry": registry.host, "to_build": plan.to_build, "pulled": pulled, "from_registry": plan.from_registry,
                "local": plan.local, "requests": lookups.requests, "seconds": round(time.monotonic() - t0, 3)}
    print("registry-plan: " + json.dumps(decision, sort_keys=True), file=out, flush=True)
    if not plan.to_build:
        print(f"nothing to build: {len(plan.from_registry)} nodes in {registry.host}, {len(plan.local)} local "
              f"(decided in {decision['seconds']:.2f} s, no pulls, no builds)", file=out, flush=True)
        return 0
    from . import engine
    from .build import run_build

    client = client or engine.docker_client()
    bases = sorted({g.dag.nodes[n].base.local_ref for n in plan.to_build if g.dag.nodes[n].stage == "system"})
    unshared = share_bases(client, registry, bases, out)
    view, chosen = restrict_to_nodes(g, leaves(plan.to_build, parents))
    rc = run_build(config, view, chosen, args)
    for ref in unshared:  # bootstrapped here: the next runner pulls these bytes instead of bootstrapping again
        if engine.image_id(client, ref):
            print(f"base {ref}: pushed {push_tag(client, ref, registry)}", file=out, flush=True)
    return rc


def share_bases(client: Any, registry: Registry, base_refs: Sequence[str], out: Any) -> list[str]:
    """Pull each base a node to build stands on from the registry by its content tag (its manifest's digest),
    so runners share the same bytes; the refs the registry does not have yet (pushed after the build)."""
    unshared = []
    for ref in base_refs:
        try:
            ensure_parent(client, ref, registry)
            print(f"base {ref}: from {registry.host}", file=out, flush=True)
        except OperationError as exc:
            print(f"base {ref}: not in {registry.host} ({exc}); made here", file=out, flush=True)
            unshared.append(ref)
    return unshared


def cmd_build(args: argparse.Namespace) -> int:
    """`buildtool build` with the registry as the cache (see build_with_registry)."""
    config, g, nodes, _ = _selection(args)
    if not nodes:
        raise OperationError("the selection has no images to build")
    return build_with_registry(config, g, nodes, args, _registry(args, config))


def cmd_images(args: argparse.Namespace) -> int:
    """The selected images whose leaf node is --node (all selected images without it), comma-separated;
    with --tags, their leaf nodes' content-hash tags instead, one a line."""
    config, g, nodes, _ = _selection(args)
    from .expand import select

    names = {v.name for v in select(config, g.expansion.variants, args.group, tuple(args.filter))}
    leaf_of = {name: nid for name, nid in g.dag.variant_node.items() if name in names and (not args.node or nid == args.node)}
    if args.tags:
        print("\n".join(sorted({g.rendered[nid].tag for nid in leaf_of.values()})))
    else:
        print(",".join(sorted(leaf_of)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m buildtool.remote", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp: argparse.ArgumentParser, selection: bool = True) -> None:
        sp.add_argument("--config", type=Path, default=Path("images.yaml"))
        sp.add_argument("--lock", type=Path, default=None)
        sp.add_argument("--site", type=Path, default=None)
        sp.add_argument("--registry", default=None, help="host[:port] (default: $BUILDTOOL_REGISTRY, else the site overlay)")
        if selection:
            sp.add_argument("--group", default=None)
            sp.add_argument("--filter", action="append", default=[])
            sp.add_argument("--node", default=None, help="only this node's chain")
            sp.add_argument("--lookups", type=positive_int, default=DEFAULT_LOOKUPS, help="HEAD requests in flight")

    sp = sub.add_parser("missing", help="job matrix of the nodes whose content-hash tag the registry lacks")
    common(sp)
    sp.add_argument("--level", type=level, default=None)
    sp.add_argument("--github-output", default=None, help="also append levelN=/anyN=/missing= lines to this file ($GITHUB_OUTPUT)")
    sp.set_defaults(func=cmd_missing)

    sp = sub.add_parser("plan", help="build / pull / skip decision from the registry alone")
    common(sp)
    sp.add_argument("--pull", action="store_true", help="also pull the ancestors of the nodes to build")
    sp.set_defaults(func=cmd_plan)

    sp = sub.add_parser("build", help="build the selection (or --node's chain) with the registry as the cache")
    common(sp)
    sp.add_argument("--jobs", type=positive_int, default=2)
    sp.add_argument("--ca-bundle", type=Path, default=None)
    sp.add_argument("--logs", type=Path, default=Path("logs"))
    sp.add_argument("--out", type=Path, default=Path("generated"))
    sp.add_argument("--format", choices=("table", "json"), default="table")
    sp.set_defaults(func=cmd_build)

    sp = sub.add_parser("images", help="image names whose leaf node is --node (comma-separated), or with --tags their content-hash tags")
    common(sp)
    sp.add_argument("--tags", action="store_true")
    sp.set_defaults(func=cmd_images)

    sp = sub.add_parser("pull", help="pull content-hash tags from the registry, retag locally")
    common(sp, selection=False)
    sp.add_argument("tags", nargs="+")
    sp.set_defaults(func=cmd_pull)

    sp = sub.add_parser("push", help="push local content-hash tags to the registry")
    common(sp, selection=False)
    sp.add_argument("tags", nargs="+")
    sp.set_defaults(func=cmd_push)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .errors import UserError

    try:
        return int(args.func(args))
    except UserError as exc:
        print(mask_url(exc.render()), file=sys.stderr)
        return 2
    except OperationError as exc:
        print(mask_url(f"error: {exc}"), file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
