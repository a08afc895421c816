"""Model-serving smoke on a real engine: every CPU leaf of the smoke group serves tiny_linear.

A serving image (templates/serving/: AzureML-style score.py behind a standard-library HTTP
server on port 5001, as uid 1000) is built FROM each CPU leaf, started, sent two rows of 10
numbers on POST /score, and its reply compared with tests/images/models/tiny_linear.json
within 1e-4. Skipped, with the reason, when no engine answers or a smoke CPU leaf's image is
not built. Network: $BUILDTOOL_SERVING_NETWORK (auto | bridge | host; default auto: the
default bridge, or the host network with a free port when the bridge is broken).

Negative case, for real: a serving image whose linear.json has a wrong b answers, and the
smoke (and the comparator) fail on its numbers.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from buildtool.engine import client as engine

REPO = Path(__file__).resolve().parents[2]
NETWORK = os.environ.get("BUILDTOOL_SERVING_NETWORK", "auto")

pytestmark = [pytest.mark.engine]


@pytest.fixture(scope="module")
def leaves(docker_ok):
    """(config, g, smoke variants, the CPU leaves as serving targets); skips when one is not built."""
    from buildtool.config.loader import load_config
    from buildtool.lock.format import load_lock
    from buildtool.plan.expand import select
    from buildtool.render.generate import generate
    from buildtool.serving.image import serving_targets
    from buildtool.verify.runner import image_present

    if not (REPO / "images.lock").exists():
        pytest.skip("no images.lock (run `buildtool lock`)")
    config = load_config(REPO / "images.yaml")
    g = generate(config, load_lock(REPO / "images.lock"))
    variants = select(config, g.expansion.variants, "smoke", ())
    targets = serving_targets(g, variants)
    if not targets:
        pytest.skip("the smoke group has no CPU leaf")
    missing = [f"{t.image} ({t.tag})" for t in targets if not image_present(t.tag)]
    if missing:
        pytest.skip(f"smoke CPU leaves not built: {', '.join(missing)}; run `make build GROUP=smoke` (or `buildtool build --group smoke`)")
    return config, g, variants, targets


def _leftovers(label: str) -> tuple[list[str], list[str]]:
    cli = engine.docker_cli()
    ps = subprocess.run([cli, "ps", "-aq", "--filter", f"label=io.buildtool.serving={label}"], capture_output=True, text=True)
    images = subprocess.run([cli, "images", "-q", "--filter", f"label=io.buildtool.serving={label}"], capture_output=True, text=True)
    return ps.stdout.split(), images.stdout.split()


def test_every_cpu_smoke_leaf_serves_the_model(leaves, capsys):
    from buildtool.serving.model import load_model_case
    from buildtool.serving.replies import assert_outputs
    from buildtool.serving.smoke import serving_smoke

    config, g, variants, targets = leaves
    label = "test-" + secrets.token_hex(4)
    results = serving_smoke(config, g, variants, docker_cli=engine.docker_cli(), network=NETWORK, run_label=label)
    table = capsys.readouterr().out
    with capsys.disabled():
        print("\n" + table)
    assert [r.image for r in results] == [t.image for t in targets]
    failed = {r.image: r.error for r in results if not r.passed}
    assert not failed, f"serving smoke failed:\n{table}\n" + "\n".join(f"{k}: {v}" for k, v in failed.items())
    expected = load_model_case().expected
    for result, target in zip(results, targets):
        assert_outputs(result.response["predictions"], expected)
        assert (result.response["backend"], result.response["provider"]) == (target.backend, target.provider)
        assert result.uid == 1000
        assert 0 < result.seconds_to_healthy <= 30
    assert _leftovers(label) == ([], []), "serving containers or images were left behind"


def test_a_serving_image_with_wrong_numbers_fails(leaves):
    from buildtool.serving.model import load_model_case
    from buildtool.serving.replies import assert_outputs
    from buildtool.serving.smoke import smoke_one

    _, _, _, targets = leaves
    plain = next((t for t in targets if t.backend == "python"), None)
    if plain is None:
        pytest.skip("no CPU smoke leaf without ONNX Runtime (the python backend reads linear.json)")
    case = load_model_case()
    broken = case.linear.to_json()
    broken["b"] = [v + 1.0 for v in broken["b"]]  # every output off by 1
    label = "test-" + secrets.token_hex(4)
    result = smoke_one(plain, docker_cli=engine.docker_cli(), case=case, network=NETWORK, linear=broken, run_label=label)
    assert result.seconds_to_healthy is not None, f"the broken serving image did not even start: {result.error}"
    assert not result.passed
    assert result.error.startswith("wrong outputs: y[0][0]"), result.error
    got = result.response["predictions"]
    assert all(abs(g - y - 1.0) < 1e-9 for grow, yrow in zip(got, case.expected) for g, y in zip(grow, yrow))
    with pytest.raises(AssertionError, match=r"y\[1\]\[2\]"):
        assert_outputs(got, case.expected)
    assert _leftovers(label) == ([], []), "the broken serving container or image was left behind"


def test_a_scoring_script_whose_init_fails_is_reported_at_once(leaves):
    """ONNX Runtime's CPU package asked for OpenVINO's provider: init() raises, the container exits,
    and the smoke says so (with the log) instead of waiting out the health deadline."""
    from dataclasses import replace

    from buildtool.serving.smoke import smoke_one

    _, _, _, targets = leaves
    ort_cpu = next((t for t in targets if t.provider == "CPUExecutionProvider"), None)
    if ort_cpu is None:
        pytest.skip("no CPU smoke leaf with ONNX Runtime's CPU package")
    label = "test-" + secrets.token_hex(4)
    result = smoke_one(replace(ort_cpu, provider="OpenVINOExecutionProvider"), docker_cli=engine.docker_cli(), network=NETWORK,
                       run_label=label)
    assert not result.passed and result.seconds_to_healthy is None
    assert "exited" in result.error and "OpenVINOExecutionProvider is not available" in result.error, result.error
    assert result.seconds < 25, f"took {result.seconds}s: the exit was not noticed before the deadline"
    assert _leftovers(label) == ([], [])
