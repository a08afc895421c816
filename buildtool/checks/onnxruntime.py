"""ONNX Runtime: the expected execution provider is listed, one ONNX Runtime distribution is installed,
and a tiny model (tests/images/models/tiny_linear.onnx) runs on the CPU path with the right numbers."""

from __future__ import annotations

import json
import math
import re
import shlex

from .base import CheckFailed, CheckImpl, Image, Probe, expect
from .cuda import parse_report
from .probes import source

ORT_INFO = Probe("ort-info", "python -c " + shlex.quote(
    "import json, onnxruntime as o; "
    "print(json.dumps({'version': o.__version__, 'providers': o.get_available_providers(), 'device': o.get_device()}))"))
MODEL = "tiny_linear"
MODEL_PATH = f"/tmp/buildtool-verify-{MODEL}.onnx"
# Distributions that each ship the `onnxruntime` module; two of them in one environment overwrite each other.
_ORT_DIST = re.compile(r"^onnxruntime(-gpu|-openvino|-directml|-training|-qnn|-rocm|-migraphx)?$")


def ort_distributions(pip: dict[str, str]) -> dict[str, str]:
    return {name: version for name, version in pip.items() if _ORT_DIST.match(name)}


def model_spec(image: Image) -> dict:
    return json.loads(image.asset(f"{MODEL}.json").read_text(encoding="utf-8"))


def tiny_model_probe(image: Image, provider: str) -> Probe:
    spec = model_spec(image)
    payload = json.dumps({"x": spec["x"], "input": spec["input"], "output": spec["output"]}, separators=(",", ":"))
    command = f"python -c {shlex.quote(source('ort_tiny_model.py'))} {shlex.quote(provider)} {MODEL_PATH} {shlex.quote(payload)}"
    return Probe(f"ort-tiny-model:{provider}", command, files=((f"{MODEL}.onnx", MODEL_PATH),))


def outputs_match(got: list, want: list, rtol: float = 0.0, atol: float = 1e-4) -> list[str]:
    """What differs between a model's outputs and the expected rows (empty when every value is finite and within
    atol + rtol * |expected|): the check of ONNX Runtime in the images and the model-serving smoke use this one."""
    if len(got) != len(want):
        return [f"{len(got)} output rows, expected {len(want)}"]
    problems = []
    bound = f"|diff| > {atol}" + (f" + {rtol} * |expected|" if rtol else "")
    for r, (grow, wrow) in enumerate(zip(got, want)):
        if len(grow) != len(wrow):
            problems.append(f"row {r} has {len(grow)} values, expected {len(wrow)}")
            continue
        for c, (g, w) in enumerate(zip(grow, wrow)):
            if not (math.isfinite(g) and math.isclose(g, w, rel_tol=rtol, abs_tol=atol)):
                problems.append(f"y[{r}][{c}] = {g!r}, expected {w!r} ({bound})")
    return problems


def _listed_probes(image: Image, params: dict) -> list[Probe]:
    return [ORT_INFO]


def _listed_evaluate(image: Image, params: dict) -> str:
    dists = ort_distributions(image.pip)
    expect(len(dists) <= 1, f"several ONNX Runtime distributions installed side by side: {dists} (they overwrite one another's files)")
    result = image.result(ORT_INFO.key)
    expect(result.ok, f"`import onnxruntime` failed: {result.brief()}")
    info = parse_report(result.stdout)
    providers = list(info.get("providers") or [])
    expect(params["provider"] in providers, f"{params['provider']} is not in get_available_providers(): {providers}")
    return f"onnxruntime {info.get('version')} ({', '.join(f'{k} {v}' for k, v in dists.items())}): {', '.join(providers)}"


def _model_probes(image: Image, params: dict) -> list[Probe]:
    return [tiny_model_probe(image, params["provider"])]


def _model_evaluate(image: Image, params: dict) -> str:
    return model_evaluate(image, params["provider"])


def model_evaluate(image: Image, provider: str) -> str:
    """The tiny model ran on `provider` (ONNX Runtime did not fall back) and returned the expected numbers."""
    result = image.result(tiny_model_probe(image, provider).key)
    expect(result.ok, f"InferenceSession on {provider} failed (exit {result.rc}): {result.brief()}")
    out = parse_report(result.stdout)
    used = list(out.get("providers") or [])
    expect(used and used[0] == provider, f"the session runs on {used}, not on {provider} (ONNX Runtime fell back)")
    spec = model_spec(image)
    problems = outputs_match(out.get("y") or [], spec["y"], spec.get("rtol", 1e-5), spec.get("atol", 1e-4))
    if problems:
        raise CheckFailed(f"{MODEL} on {provider}: " + "; ".join(problems[:4]))
    return f"{MODEL} on {', '.join(used)}: {len(spec['y'])} rows match"


CHECKS = {
    "provider-listed": CheckImpl(_listed_probes, _listed_evaluate, "the provider is in get_available_providers(); one ORT distribution"),
    "tiny-model-cpu": CheckImpl(_model_probes, _model_evaluate, "tiny_linear.onnx on the CPU path returns the expected numbers"),
}
