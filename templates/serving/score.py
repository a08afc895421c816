"""AzureML-style scoring script for the buildtool model-serving smoke.

The contract AzureML uses for a custom base image: `init()` runs once when the
container starts, `run(raw_data)` once per request with the request body as a
JSON string `{"data": [[10 numbers], ...]}` and returns something JSON-serialisable.

The model is y = x @ W + b (tiny_linear). SCORE_BACKEND picks how it is computed:
  onnxruntime  tiny_linear.onnx in an InferenceSession on SCORE_PROVIDER (the image's
               execution provider; OpenVINO's on its CPU device). The session must run
               on that provider, not fall back.
  python       W and b from a JSON file, computed in plain Python (images without ONNX Runtime).
Standard library only (plus onnxruntime/numpy where the image has them); Python >= 3.8.
"""

from __future__ import annotations

import json
import os

_model = None


class _PythonLinear:
    backend = "python"
    provider = "python"

    def __init__(self, path):
        with open(path, encoding="utf-8") as fh:
            spec = json.load(fh)
        self.w = [[float(v) for v in row] for row in spec["W"]]
        self.b = [float(v) for v in spec["b"]]
        if not self.w or any(len(row) != len(self.b) for row in self.w):
            raise ValueError(f"{path}: W must be {len(self.w)}x{len(self.b)} to match b")
        self.features = len(self.w)

    def predict(self, rows):
        out = []
        for row in rows:
            if len(row) != self.features:
                raise ValueError(f"each row needs {self.features} numbers, got {len(row)}")
            out.append([sum(row[i] * self.w[i][j] for i in range(self.features)) + self.b[j] for j in range(len(self.b))])
        return out


class _OnnxLinear:
    backend = "onnxruntime"

    def __init__(self, path, provider):
        import numpy as np
        import onnxruntime as ort

        self._np = np
        available = ort.get_available_providers()
        if provider not in available:
            raise RuntimeError(f"{provider} is not available in this onnxruntime: {available}")
        options = {"device_type": "CPU"} if provider == "OpenVINOExecutionProvider" else {}
        self.session = ort.InferenceSession(path, providers=[(provider, options)] if options else [provider])
        used = self.session.get_providers()
        if not used or used[0] != provider:
            raise RuntimeError(f"the session runs on {used}, not on {provider}")
        self.provider = provider
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name
        self.features = self.session.get_inputs()[0].shape[-1]

    def predict(self, rows):
        x = self._np.array(rows, dtype=self._np.float32)
        if x.ndim != 2 or (isinstance(self.features, int) and x.shape[1] != self.features):
            raise ValueError(f"expected rows of {self.features} numbers, got shape {list(x.shape)}")
        y = self.session.run([self.output], {self.input: x})[0]
        return y.astype(float).tolist()


def init():
    global _model
    model_dir = os.environ.get("AZUREML_MODEL_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "model"))
    backend = os.environ.get("SCORE_BACKEND", "python")
    path = os.path.join(model_dir, os.environ.get("SCORE_MODEL", "linear.json" if backend == "python" else "tiny_linear.onnx"))
    if backend == "onnxruntime":
        _model = _OnnxLinear(path, os.environ.get("SCORE_PROVIDER", "CPUExecutionProvider"))
    elif backend == "python":
        _model = _PythonLinear(path)
    else:
        raise ValueError(f"SCORE_BACKEND must be onnxruntime or python, not {backend!r}")


def run(raw_data):
    if _model is None:
        raise RuntimeError("init() has not run")
    payload = json.loads(raw_data)
    rows = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
        raise ValueError('the request body must be {"data": [[numbers], ...]}')
    rows = [[float(v) for v in row] for row in rows]
    return {"predictions": _model.predict(rows), "backend": _model.backend, "provider": _model.provider}
