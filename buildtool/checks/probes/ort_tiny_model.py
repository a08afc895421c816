"""Run the tiny model with one execution provider; print the providers used and the outputs (JSON).

    python -c "$(cat ort_tiny_model.py)" PROVIDER MODEL.onnx 'INPUT-JSON'

OpenVINO's provider is asked for its CPU device. ONNX Runtime falls back to the CPU
provider when the asked one cannot be used; the caller checks `providers[0]`.
"""

import json
import sys

import numpy as np
import onnxruntime as ort

provider, path, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
options = {"device_type": "CPU"} if provider == "OpenVINOExecutionProvider" else {}
session = ort.InferenceSession(path, providers=[(provider, options)] if options else [provider])
x = np.array(spec["x"], dtype=np.float32)
y = session.run([spec["output"]], {spec["input"]: x})[0]
print(json.dumps({"providers": session.get_providers(), "y": y.astype(float).tolist(), "version": ort.__version__}))
