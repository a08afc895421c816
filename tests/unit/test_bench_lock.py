"""bench/bench_lock.py cannot rot: its requests are the lock's own, and its diff verdict is right (offline)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from buildtool.lock.format import load_lock

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_lock", ROOT / "bench" / "bench_lock.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


bench = _bench()


def test_pair_requests_are_the_shipped_sets() -> None:
    lock = load_lock(ROOT / "images.lock")
    for node, request in zip(bench.PAIR, bench.pair_requests()):
        found = next(s for s in lock.pip.values() if node in s.nodes)
        assert found.request == request
    assert any(r.startswith("onnxruntime-gpu==") for r in request.requires) and request.constraints


def test_only_package_sees_pins_and_constraints_of_that_package_only() -> None:
    pin = lambda name, version: "        " + json.dumps({"name": name, "sha256": "0" * 64, "version": version}) + ","  # noqa: E731
    before = "\n".join([pin("numpy", "2.3.1"), pin("packaging", "26.3"), '        "packaging==26.3",'])
    after = "\n".join([pin("numpy", "2.3.1"), pin("packaging", "26.4"), '        "packaging==26.4",'])
    lines = bench.changed_lines(before, after)
    assert len(lines) == 4 and bench.only_package(lines, "packaging")
    moved = bench.changed_lines(before, after.replace("2.3.1", "2.4.0"))
    assert not bench.only_package(moved, "packaging")
