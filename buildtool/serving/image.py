"""The serving image: which CPU leaves are served, and the Dockerfile and build context FROM each."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ..components import flavor
from ..components.support_files import TEMPLATES_DIR
from .model import MODEL_NAME, ModelCase

SERVING_TEMPLATES = TEMPLATES_DIR / "serving"
PORT = 5001
APP_ROOT = "/var/azureml-app"
MODEL_DIR = f"{APP_ROOT}/azureml-models/{MODEL_NAME}/1"  # AzureML's models/<name>/<version> layout


@dataclass(frozen=True)
class Target:
    """One CPU leaf to serve from: its image name and tag, and how its scoring script computes."""

    image: str
    tag: str
    backend: str  # onnxruntime | python
    provider: str  # the ORT execution provider, or "python"
    uid: int = 1000


def is_cpu_leaf(variant: Any) -> bool:
    """The variant's accelerator flavor needs no device (a variant without an accelerator fact is not a leaf of this matrix)."""
    name = variant.facts.get("accelerator.flavor")
    return name is not None and not flavor(str(name)).needs_device


def target_for(variant: Any, tag: str) -> Target:
    facts = variant.facts
    uid = int(facts.get("system.uid", 1000))
    if facts.get("onnxruntime.flavor", "none") != "none":
        return Target(variant.name, tag, "onnxruntime", str(facts.get("onnxruntime.provider") or "CPUExecutionProvider"), uid)
    return Target(variant.name, tag, "python", "python", uid)


def serving_targets(g: Any, variants: Iterable[Any]) -> list[Target]:
    """The CPU leaves among `variants` (a selection from buildtool.plan.expand.select), in order."""
    return [target_for(v, g.rendered[g.dag.variant_node[v.name]].tag) for v in variants if is_cpu_leaf(v)]


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(SERVING_TEMPLATES)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False)


def render_dockerfile(target: Target) -> str:
    """The serving image's Dockerfile (no `# syntax=` line, bash pipefail SHELL, COPY only, ends as the uid)."""
    model_file = f"{MODEL_NAME}.onnx" if target.backend == "onnxruntime" else "linear.json"
    return _environment().get_template("Dockerfile.j2").render(
        image=target.image, base=target.tag, port=PORT, app_root=APP_ROOT, model_dir=MODEL_DIR, backend=target.backend,
        provider=target.provider, model_file=model_file, uid=target.uid)



def write_context(target: Target, dest: Path, case: ModelCase, linear: dict[str, Any] | None = None) -> Path:
    """The build context: Dockerfile, score.py, serve.py and model/ (the .onnx, or linear.json).

    `linear` replaces linear.json's content (a deliberately broken model in the tests)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "Dockerfile").write_text(render_dockerfile(target), encoding="utf-8")
    for name in ("score.py", "serve.py"):
        shutil.copyfile(SERVING_TEMPLATES / name, dest / name)
    model = dest / "model"
    model.mkdir(exist_ok=True)
    if target.backend == "onnxruntime":
        shutil.copyfile(case.onnx, model / case.onnx.name)
    else:
        spec = linear if linear is not None else case.linear.to_json()
        (model / "linear.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return dest
