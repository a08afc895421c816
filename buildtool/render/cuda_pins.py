"""cuBLAS / NVRTC / nvJitLink / cuFFT / cuRAND pins belong to the image's CUDA line (major.minor). Pure.

Which library versions a line ships comes from NVIDIA's `cuda-toolkit` meta-package on PyPI
(components/cuda_lines.json, written by scripts/cuda-lines.py): a CUDA 13.0 image may carry cuBLAS
13.0.x or 13.1.0 (13.0.2 ships that), not the 13.10 that an unpinned cuDNN pulls in. Checked on the pins
images.yaml configures and on the versions the lock resolved, at validate time (every command that
generates), before anything is built."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config.model import Config
from ..errors import Location, UserError
from ..lock.format import Lock
from ..plan.dag import Dag, Node
from .pins import node_pip_set_id

LINES_FILE = Path(__file__).resolve().parent.parent / "components" / "cuda_lines.json"
_SUFFIX = re.compile(r"-cu\d+$")  # CUDA 11/12 names carry -cu11/-cu12; CUDA 13's have none


@lru_cache(maxsize=1)
def cuda_lines() -> dict[str, dict[str, tuple[str, ...]]]:
    """CUDA major.minor -> library (PyPI name without -cuNN) -> the first three parts of each version it ships."""
    raw = json.loads(LINES_FILE.read_text(encoding="utf-8"))["lines"]
    return {line: {lib: tuple(v) for lib, v in libs.items()} for line, libs in raw.items()}


def library_of(name: str) -> str | None:
    lib = _SUFFIX.sub("", re.sub(r"[-_.]+", "-", name).lower())
    return lib if any(lib in libs for libs in cuda_lines().values()) else None


def line_problem(name: str, version: str, line: str) -> str | None:
    """Why `name==version` does not belong to CUDA `line`, or None (also when the table does not know the pair)."""
    lib = library_of(name)
    shipped = cuda_lines().get(line, {}).get(lib or "")
    if not shipped:
        return None
    prefix = ".".join(version.split(".")[:3])
    if prefix in shipped:
        return None
    owners = [other for other, libs in cuda_lines().items() if prefix in libs.get(lib or "", ())]
    return (f"{name}=={version} is not of the image's CUDA {line}, which ships {lib} {', '.join(v + '.*' for v in shipped)}"
            + (f" ({version} is CUDA {', '.join(owners)}'s)" if owners else ""))


def _cuda_line(node: Node) -> str:
    return str(node.facts.get("accelerator.cuda_mm") or "") if node.facts.get("accelerator.kind") == "cuda" else ""


def _configured_path(fields: dict[str, Any], name: str) -> tuple[str, ...]:
    """The key path (under the component) of a configured wheel pin: the mapping field that names it."""
    for field_name, value in fields.items():
        if isinstance(value, dict) and name in value:
            return (field_name, name)
    return ()


def configured_problems(config: Config, dag: Dag) -> list[UserError]:
    """Wheel pins images.yaml configures (a CUDA component's wheels, an ONNX Runtime component's extra wheels)."""
    from ..components import flavor

    out, seen = [], set()
    for node in dag.nodes.values():
        line, component = _cuda_line(node), node.component
        if not line or component is None or (component.axis, component.key, line) in seen:
            continue
        seen.add((component.axis, component.key, line))
        for requirement in flavor(component.flavor).pip_requirements(component, node.facts):
            name, _, version = requirement.partition("==")
            problem = line_problem(name, version, line) if version else None
            if problem:
                path = ("components", component.axis, component.key) + _configured_path(component.fields, name)
                out.append(UserError(f"{problem} (node {node.id})", where=config.doc.where(path), key=".".join(path),
                                     expected=f"a {library_of(name)} version that CUDA {line} ships (components/cuda_lines.json)",
                                     found=f"{name}=={version}",
                                     hint="pin the library to the image's CUDA line (a pin of the cuda-toolkit release of that line)"))
    return out


def locked_problems(dag: Dag, lock: Lock) -> list[UserError]:
    """Versions the lock resolved for the nodes of a CUDA image (what an unpinned dependency moved to)."""
    out = []
    for node in dag.nodes.values():
        line = _cuda_line(node)
        set_id = node_pip_set_id(dag, node) if line else None
        pip_set = lock.pip.get(set_id) if set_id is not None else None
        if pip_set is None:
            continue
        for i, pin in enumerate(pip_set.pins):
            problem = line_problem(pin.name, pin.version, line)
            if problem:
                where = lock.doc.where(("pip", set_id, "pins", i)) if lock.doc is not None else Location(lock.path)
                out.append(UserError(f"locked {problem} (pip set {set_id} of node {node.id})", where=where, key=f"pip.{set_id}.pins[{i}]",
                                     expected=f"a {library_of(pin.name)} version that CUDA {line} ships (components/cuda_lines.json)",
                                     found=f"{pin.name}=={pin.version}",
                                     hint=f"pin {pin.name} in the images.yaml component of this node to the CUDA {line} line, then `buildtool lock`"))
    return out


def check_cuda_pins(config: Config, dag: Dag, lock: Lock | None) -> None:
    """Raise the first problem (configured pins first): exit 2 naming file, line and key."""
    problems = configured_problems(config, dag) + (locked_problems(dag, lock) if lock is not None else [])
    if problems:
        raise problems[0]
