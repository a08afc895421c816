"""Prefetch plans: which nodes' wheels can be fetched into their uv cache while their parents still build.

A node's install step reads its wheels from a BuildKit cache mount (`render.wheel_cache_id`). Nothing
in fetching them needs the node's parent, only a layer with uv and the node's Python: the chain's
python-stage node. When that node is built and the node's parent is not yet, a throwaway build on the
python layer (templates/engine/prefetch.Dockerfile.j2) fills the cache meanwhile; the node's own
install then only copies and compiles. Pure: DAG and rendered nodes in, plans out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..plan.dag import Dag
from .render import RenderedNode, environment, wheel_cache_id

PYTHON_STAGE = "python"  # the stage whose layer installs uv (tools.uv) and the environment's Python
TEMPLATE = "engine/prefetch.Dockerfile.j2"


@dataclass(frozen=True)
class Prefetch:
    node: str  # the node whose wheels are fetched
    after: str  # the node whose image the fetch runs on (the chain's python layer)
    after_tag: str
    cache_id: str  # the node's uv cache mount, without the `buildtool-uv-` prefix
    requirements: str  # the node's requirements.txt
    dockerfile: str


def prefetch_plans(dag: Dag, rendered: dict[str, RenderedNode], nodes: Iterable[str]) -> dict[str, Prefetch]:
    """The nodes among `nodes` worth a prefetch: they install a pip set with uv, and at least one node
    lies between them and their chain's python layer (with none between, the node's own build starts
    as soon as a prefetch could, and would only wait for it)."""
    out: dict[str, Prefetch] = {}
    for nid in nodes:
        node = dag.nodes[nid]
        if nid not in rendered:  # a base: made by `buildtool bases`, never a pip layer
            continue
        files = dict(rendered[nid].files)
        if "requirements.txt" not in files or not node.facts.get("system.uv"):
            continue
        python = next((n for n in dag.chain(nid) if n.stage == PYTHON_STAGE), None)
        if python is None or python.id in (nid, node.parent):
            continue
        after_tag = rendered[python.id].tag
        cache_id = wheel_cache_id(node)
        text = environment().get_template(TEMPLATE).render(node=nid, after=python.id, after_tag=after_tag, cache_id=cache_id)
        out[nid] = Prefetch(nid, python.id, after_tag, cache_id, files["requirements.txt"], text)
    return out
