"""The synthetic matrices of bench/bench_generate.py, and expand's drops against the plain product walk.

Correctness only: no timings are asserted here (run `python bench/bench_generate.py` for figures).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import pytest

from buildtool.config.loader import load_config
from buildtool.config.model import AXES
from buildtool.jsonfmt import to_json
from buildtool.lock.format import dump_lock, load_lock
from buildtool.plan.expand import expand, variant_facts
from buildtool.plan.rules import first_violation
from buildtool.render.generate import generate

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "bench_generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


bench = _bench()


@pytest.fixture(scope="module")
def synthetic_100(tmp_path_factory):
    inputs = bench.write_inputs(100, tmp_path_factory.mktemp("bench100"))
    return load_config(inputs.config_path, None, {}), load_lock(inputs.lock_path)


@pytest.fixture(scope="module")
def real_matrix(tmp_path_factory):
    """The repository's images.yaml with a synthetic lock (the real lock may not exist yet)."""
    config = load_config(ROOT / "images.yaml", None, {})
    path = tmp_path_factory.mktemp("real") / "images.lock"
    path.write_text(dump_lock(bench.synthetic_lock(config)), encoding="utf-8")
    return config, load_lock(path)


@pytest.mark.parametrize("size", [100, 1_000, 10_000])
def test_shapes_give_exactly_the_asked_number_of_variants(size):
    shape = bench.shape_for(size)
    assert shape.variants == size
    assert shape.candidates > size  # excludes and rules really drop combinations
    assert min(shape.bases, shape.pythons, shape.mpis, shape.cudas, shape.ort_cpu, shape.ort_gpu) >= 1


def test_synthetic_matrix_of_100_generates_100_images(synthetic_100):
    config, lock = synthetic_100
    g = generate(config, lock)
    assert len(g.expansion.variants) == 100
    assert len({v.name for v in g.expansion.variants}) == 100
    assert len(g.expansion.dropped) == bench.shape_for(100).candidates - 100
    assert len(g.dag.variant_node) == 100
    assert len(g.rendered) == len(g.dag.nodes) - bench.shape_for(100).bases  # every node but the bases
    plan = json.loads(g.tree["plan.json"][0])
    assert len(plan["images"]) == 100
    assert g.table.count("\n") == 100 + 2  # header, rule, one row per image
    assert all(f"nodes/{nid}/Dockerfile" in g.tree for nid in g.rendered)


def _reference_expansion(config, lock):
    """expand() as first written: facts for the whole product, then excludes, then rules (no includes here)."""
    kept, dropped = [], []
    for values in itertools.product(*(config.axes[a] for a in AXES)):
        combo = tuple(zip(AXES, values))
        facts = variant_facts(config, combo, lock)
        excl = next((i for i, sel in enumerate(config.exclude) if sel.matches(dict(combo))), None)
        if excl is not None:
            dropped.append((combo, f"matrix.exclude[{excl}] ({config.path}:{config.exclude[excl].line})"))
            continue
        rule = first_violation(config.rules, facts)
        if rule is not None:
            dropped.append((combo, f"rule {rule.id} ({config.path}:{rule.line}): {rule.reason}"))
            continue
        kept.append((combo, facts))
    return kept, dropped


@pytest.mark.parametrize("matrix", ["synthetic_100", "real_matrix"])
def test_expand_matches_the_plain_product_walk(matrix, request):
    config, lock = request.getfixturevalue(matrix)
    if config.include:
        pytest.skip("the reference walk leaves includes out")
    kept, dropped = _reference_expansion(config, lock)
    e = expand(config, lock)
    assert [(v.combo, v.facts, list(v.facts)) for v in e.variants] == [(c, f, list(f)) for c, f in kept]
    assert [(d.combo, d.reason) for d in e.dropped] == dropped


def test_generated_json_is_one_line_per_entry_and_loads_back(synthetic_100):
    g = generate(*synthetic_100)
    for name, (text, _) in g.tree.items():
        if not name.endswith(".json"):
            continue
        data = json.loads(text)
        assert text == to_json(data), name  # what it writes is a fixed point: sorted keys, same layout
        lines = text.splitlines()
        collections = [v for v in data.values() if isinstance(v, (list, dict)) and v]
        # "{", a key line per top-level key, one line per entry of each non-empty collection, its closing line, "}"
        assert len(lines) == 2 + len(data) + sum(len(c) + 1 for c in collections), name
    odd = {"a": [1, 2.5, None, True, False, "x\u00e9\n\"", {"b": {}}, []], "B": (1,), "z": [{"q": float("nan"), "t": 1e300}] * 3}
    back = json.loads(to_json(odd))
    assert back["a"] == odd["a"] and back["B"] == [1] and back["z"][0]["t"] == 1e300
    assert to_json({"k": {"deep": {"x": [1, {"y": 2}]}}}) == '{\n  "k": {\n    "deep": {"x": [1, {"y": 2}]}\n  }\n}\n'
    with pytest.raises(TypeError):
        to_json({"a": object()})
