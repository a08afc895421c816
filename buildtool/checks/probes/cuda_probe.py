"""Ask the CUDA runtime, cuDNN and NCCL for their versions through ctypes; with `device`, use the GPU.

Stdlib only: it runs inside images (`python -c`), and on a bare GPU host against that
host's own libraries (`python cuda_probe.py device`). Prints one JSON object; raw integers,
the caller decodes them (buildtool.checks.cuda).

    versions: cudaRuntimeGetVersion, cudnnGetVersion, ncclGetVersion -- work without a GPU or driver
    device:   cudaDriverGetVersion, cudaGetDeviceCount (> 0 wanted), cudnnCreate, ncclCommInitAll on device 0
    tensorrt: getInferLibVersion of libnvinfer
"""

import ctypes
import ctypes.util
import json
import re
import subprocess
import sys

LIBS = {"cudart": "cudart", "cudnn": "cudnn", "nccl": "nccl", "tensorrt": "nvinfer"}


def _candidates(stem):
    names = []
    found = ctypes.util.find_library(stem)
    if found:
        names.append(found)
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        try:
            text = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=False).stdout
        except OSError:
            continue
        for m in re.finditer(rf"^\s+(lib{re.escape(stem)}\.so(?:\.[0-9.]+)?)\s+\(.*\)\s+=>\s+(\S+)", text, re.M):
            if m.group(2) not in names:
                names.append(m.group(2))
        break
    return names


def load(stem):
    errors = []
    for name in _candidates(stem):
        try:
            return ctypes.CDLL(name), name
        except OSError as exc:
            errors.append(str(exc))
    raise OSError("lib{}: {}".format(stem, "; ".join(errors) or "not found by the dynamic linker"))


def _call(out, key, fn):
    try:
        out[key] = fn()
    except Exception as exc:  # report, never crash: the caller needs every answer it can get
        out[key] = {"error": f"{type(exc).__name__}: {exc}"}


def _int_out(lib, symbol):
    value = ctypes.c_int(0)
    rc = getattr(lib, symbol)(ctypes.byref(value))
    return rc, value.value


def versions():
    out = {}

    def cudart():
        lib, name = load(LIBS["cudart"])
        rc, value = _int_out(lib, "cudaRuntimeGetVersion")
        return {"library": name, "rc": rc, "value": value}

    def cudnn():
        lib, name = load(LIBS["cudnn"])
        lib.cudnnGetVersion.restype = ctypes.c_size_t
        return {"library": name, "rc": 0, "value": int(lib.cudnnGetVersion())}

    def nccl():
        lib, name = load(LIBS["nccl"])
        rc, value = _int_out(lib, "ncclGetVersion")
        return {"library": name, "rc": rc, "value": value}

    _call(out, "cudart", cudart)
    _call(out, "cudnn", cudnn)
    _call(out, "nccl", nccl)
    return out


def device():
    out = {}
    state = {}

    def cudart():
        lib, name = load(LIBS["cudart"])
        state["cudart"] = lib
        drv_rc, driver = _int_out(lib, "cudaDriverGetVersion")
        rc, count = _int_out(lib, "cudaGetDeviceCount")
        return {"library": name, "rc": rc, "count": count, "driver_rc": drv_rc, "driver": driver}

    def cudnn():
        lib, name = load(LIBS["cudnn"])
        handle = ctypes.c_void_p()
        rc = lib.cudnnCreate(ctypes.byref(handle))
        if rc == 0:
            lib.cudnnDestroy(handle)
        return {"library": name, "rc": rc}

    def nccl():
        lib, name = load(LIBS["nccl"])
        comms = (ctypes.c_void_p * 1)()
        devices = (ctypes.c_int * 1)(0)
        rc = lib.ncclCommInitAll(comms, 1, devices)
        if rc == 0:
            lib.ncclCommDestroy(comms[0])
        return {"library": name, "rc": rc}

    _call(out, "cudart", cudart)
    if isinstance(out["cudart"], dict) and out["cudart"].get("count", 0) > 0:
        _call(out, "cudnn", cudnn)
        _call(out, "nccl", nccl)
    return out


def tensorrt():
    out = {}

    def nvinfer():
        lib, name = load(LIBS["tensorrt"])
        lib.getInferLibVersion.restype = ctypes.c_int32
        return {"library": name, "rc": 0, "value": int(lib.getInferLibVersion())}

    _call(out, "tensorrt", nvinfer)
    return out


def main(argv):
    mode = argv[1] if len(argv) > 1 else "versions"
    report = {"device": device, "tensorrt": tensorrt}.get(mode, versions)()
    print(json.dumps({"mode": mode, **report}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
