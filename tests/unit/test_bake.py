"""generated/docker-bake.json (for users who have buildx): valid JSON, one target per layer node,
each target's context its node folder, tagged with the node's content-hash tag, and the parent
wired in through `contexts` (the FROM reference -> `target:<parent target>`), so `docker buildx
bake` builds the DAG in order and never pulls a parent tag from a registry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "generated"


@pytest.fixture(scope="module")
def bake() -> dict:
    return json.loads((GENERATED / "docker-bake.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def plan() -> dict:
    return json.loads((GENERATED / "plan.json").read_text(encoding="utf-8"))


def _from_line(node_id: str) -> str:
    text = (GENERATED / "nodes" / node_id / "Dockerfile").read_text(encoding="utf-8")
    (ref,) = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    return ref


def test_one_target_per_node(bake, plan):
    targets = bake["target"]
    layer_nodes = [n for n in plan["nodes"] if n["stage"] != "base"]
    assert len(targets) == len(layer_nodes)
    by_context = {t["context"]: name for name, t in targets.items()}
    assert len(by_context) == len(targets), "two targets build the same context"
    for n in layer_nodes:
        assert n["context"] in by_context, f"no target for {n['id']}"
        t = targets[by_context[n["context"]]]
        assert t["dockerfile"] == "Dockerfile"
        assert t["tags"][0] == n["tag"], "the content-hash tag first"
        if not n["images"]:
            assert t["tags"] == [n["tag"]], "an inner node carries only its content-hash tag"
        assert (ROOT / t["context"] / "Dockerfile").is_file()
        assert re.fullmatch(r"[A-Za-z0-9_-]+", by_context[n["context"]]), "bake target names: letters, digits, _ and -"


def test_contexts_wired_to_parents(bake, plan):
    targets = bake["target"]
    nodes = {n["id"]: n for n in plan["nodes"]}
    by_context = {t["context"]: name for name, t in targets.items()}
    for n in nodes.values():
        if n["stage"] == "base":
            continue
        t = targets[by_context[n["context"]]]
        parent = nodes.get(n["parent"]) if n["parent"] else None
        if parent is None or parent["stage"] == "base":
            # a system layer: FROM the base image (made by `buildtool bases`), no target to wire
            assert "contexts" not in t or not any(v.startswith("target:") for v in t["contexts"].values())
            continue
        assert _from_line(n["id"]) == parent["tag"], f"{n['id']}: FROM must name the parent's content-hash tag"
        assert t["contexts"] == {parent["tag"]: f"target:{by_context[parent['context']]}"}


def test_secrets_not_build_args(bake):
    for name, t in bake["target"].items():
        assert "args" not in t or not any("ca" in k.lower() or "pass" in k.lower() for k in t["args"]), name
        assert all(s.startswith("id=") for s in t.get("secret", [])), name


def test_default_group_names_existing_targets(bake, plan):
    targets = set(bake["target"])
    default = bake["group"]["default"]["targets"]
    assert default and set(default) <= targets
    # every target is reachable from the default group through contexts
    reach = set(default)
    stack = list(default)
    while stack:
        for v in bake["target"][stack.pop()].get("contexts", {}).values():
            dep = v.removeprefix("target:")
            if dep not in reach:
                reach.add(dep)
                stack.append(dep)
    assert reach == targets
