"""The serving smoke's model: tiny_linear read from its .onnx with the standard library, and the rows it must answer."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OperationError
from .replies import compare_outputs

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "images" / "models"
MODEL_NAME = "tiny_linear"


@dataclass(frozen=True)
class LinearModel:
    w: list[list[float]]  # features x outputs
    b: list[float]
    input: str = "x"
    output: str = "y"

    def to_json(self) -> dict[str, Any]:
        return {"model": MODEL_NAME, "input": self.input, "output": self.output, "W": self.w, "b": self.b}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message; value is an int or bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated protobuf message")
        yield number, wire, value


def _tensor(buf: bytes) -> tuple[str, list[int], list[float]]:
    """A TensorProto of FLOATs: (name, dims, values). dims=1, data_type=2, float_data=4, name=8, raw_data=9."""
    name, dims, values, raw, dtype = "", [], [], None, None
    for number, wire, value in _fields(buf):
        if number == 1:
            if wire == 2:  # packed
                pos = 0
                while pos < len(value):
                    dim, pos = _varint(value, pos)
                    dims.append(dim)
            else:
                dims.append(value)
        elif number == 2:
            dtype = value
        elif number == 4:
            values.extend(struct.unpack(f"<{len(value) // 4}f", value))
        elif number == 8:
            name = value.decode("utf-8")
        elif number == 9:
            raw = value
    if dtype != 1:
        raise ValueError(f"initializer {name!r} is not FLOAT (data_type {dtype})")
    if raw is not None:
        values = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if math.prod(dims) != len(values):
        raise ValueError(f"initializer {name!r}: dims {dims} but {len(values)} values")
    return name, dims, values


def read_linear_onnx(data: bytes) -> LinearModel:
    """W and b of a MatMul(x, W) -> Add(., b) ONNX model (ModelProto.graph = 7; GraphProto: node = 1,
    initializer = 5, input = 11, output = 12; NodeProto: input = 1, output = 2, op_type = 4)."""
    graph = next((v for n, w, v in _fields(data) if n == 7 and w == 2), None)
    if graph is None:
        raise ValueError("no graph in the ONNX model")
    nodes, inits, inputs, outputs = [], {}, [], []
    for number, _, value in _fields(graph):
        if number == 1:
            node = {"input": [], "output": [], "op": ""}
            for n, _, v in _fields(value):
                if n in (1, 2):
                    node["input" if n == 1 else "output"].append(v.decode("utf-8"))
                elif n == 4:
                    node["op"] = v.decode("utf-8")
            nodes.append(node)
        elif number == 5:
            name, dims, values = _tensor(value)
            inits[name] = (dims, values)
        elif number in (11, 12):
            name = next((v.decode("utf-8") for n, _, v in _fields(value) if n == 1), "")
            (inputs if number == 11 else outputs).append(name)
    ops = [n["op"] for n in nodes]
    if ops != ["MatMul", "Add"]:
        raise ValueError(f"not a linear model: nodes {ops}, expected ['MatMul', 'Add']")
    matmul, add = nodes
    w_name = next((i for i in matmul["input"] if i in inits), None)
    b_name = next((i for i in add["input"] if i in inits), None)
    if w_name is None or b_name is None:
        raise ValueError("MatMul/Add do not take W and b from initializers")
    (wdims, wvals), (bdims, bvals) = inits[w_name], inits[b_name]
    if len(wdims) != 2 or bdims != [wdims[1]]:
        raise ValueError(f"W has dims {wdims} and b {bdims}: not (n, m) and (m,)")
    rows, cols = wdims
    w = [[float(wvals[r * cols + c]) for c in range(cols)] for r in range(rows)]
    real_inputs = [i for i in inputs if i not in inits]
    return LinearModel(w, [float(v) for v in bvals], real_inputs[0] if real_inputs else "x", outputs[0] if outputs else "y")


def linear_predict(model: LinearModel, rows: list[list[float]]) -> list[list[float]]:
    """y = x @ W + b in float64 (what the python backend serves; ORT computes it in float32)."""
    width = len(model.w)
    out = []
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row of {len(row)} numbers; the model takes {width}")
        out.append([math.fsum(row[i] * model.w[i][j] for i in range(width)) + model.b[j] for j in range(len(model.b))])
    return out


@dataclass(frozen=True)
class ModelCase:
    """The request rows and the outputs they must give (tests/images/models/tiny_linear.json)."""

    linear: LinearModel
    rows: list[list[float]]
    expected: list[list[float]]
    onnx: Path


def load_model_case(models: Path = MODELS) -> ModelCase:
    """tiny_linear.json's rows and outputs, and the model read from tiny_linear.onnx; they must agree."""
    onnx = models / f"{MODEL_NAME}.onnx"
    try:
        spec = json.loads((models / f"{MODEL_NAME}.json").read_text(encoding="utf-8"))
        linear = read_linear_onnx(onnx.read_bytes())
    except (OSError, ValueError) as exc:
        raise OperationError(f"cannot read the serving model from {models}: {exc}") from exc
    problems = compare_outputs(linear_predict(linear, spec["x"]), spec["y"], 1e-6)
    if problems:
        raise OperationError(f"{onnx.name} does not reproduce {MODEL_NAME}.json's outputs: {'; '.join(problems[:3])}")
    return ModelCase(linear, spec["x"], spec["y"], onnx)
