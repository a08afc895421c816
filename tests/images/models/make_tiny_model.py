"""Write tiny_linear.onnx and tiny_linear.json: y = x @ W + b with fixed W (10x3) and b (3).

Run once with the `onnx` package from PyPI (not needed at test time):

    python -m venv /tmp/onnxgen && /tmp/onnxgen/bin/pip install onnx==1.17.0 numpy
    /tmp/onnxgen/bin/python tests/images/models/make_tiny_model.py

The model uses opset 13 and IR version 7 so every ONNX Runtime the matrix ships
(1.23+, OpenVINO's build included) loads it. The JSON holds two input rows of 10
numbers (the model-serving shape) and the outputs computed here in float64.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
W = np.array([[(i + 1) * 0.1 - j * 0.25 for j in range(3)] for i in range(10)], dtype=np.float32)
B = np.array([0.5, -1.0, 2.0], dtype=np.float32)
X = [[float(i + 1) for i in range(10)], [0.5 * (i % 3) - 1.0 for i in range(10)]]


def build() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "tiny_linear",
        [x],
        [y],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "b")],
    )
    model = helper.make_model(graph, producer_name="buildtool-verify", opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def main() -> None:
    model = build()
    (HERE / "tiny_linear.onnx").write_bytes(model.SerializeToString())
    expected = (np.array(X, dtype=np.float64) @ W.astype(np.float64) + B.astype(np.float64)).tolist()
    spec = {"model": "tiny_linear.onnx", "input": "x", "output": "y", "x": X, "y": expected, "rtol": 1e-5, "atol": 1e-4}
    (HERE / "tiny_linear.json").write_text(json.dumps(spec, indent=2) + "\n")


if __name__ == "__main__":
    main()
