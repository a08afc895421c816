#!/usr/bin/env python3
"""Write buildtool/components/cuda_lines.json: which cuBLAS / NVRTC / nvJitLink / cuFFT / cuRAND versions (their first
three parts) belong to each CUDA line (major.minor), read from NVIDIA's `cuda-toolkit` meta-package on PyPI (each release pins its components).

    python3 scripts/cuda-lines.py [--index https://pypi.org/simple]

Run it when a new CUDA release appears and commit the file; buildtool itself never goes to the network for it."""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import urllib.request
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "buildtool" / "components" / "cuda_lines.json"
LIBRARIES = ("nvidia-cublas", "nvidia-cuda-nvrtc", "nvidia-nvjitlink", "nvidia-cufft", "nvidia-curand")
RELEASE = re.compile(r"^\d+\.\d+\.\d+$")  # final releases only (no rc, no 0.0.0a0 placeholder)
# Three parts: cuRAND is 10.3.x over all of CUDA 12 and cuFFT 11.0.x over 12.0-12.3, so major.minor alone cannot tell lines apart.
REQUIRES = re.compile(r"^Requires-Dist: (nvidia-[a-z-]+?)(?:-cu\d+)?==(\d+\.\d+\.\d+)[.\d]*\*?;.*extra == 'all'")


def get(url: str, accept: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="https://pypi.org/simple")
    args = parser.parse_args()
    page = json.loads(get(f"{args.index}/cuda-toolkit/", "application/vnd.pypi.simple.v1+json"))
    lines: dict[str, dict[str, set[str]]] = {}
    for wheel in page["files"]:
        match = re.fullmatch(r"cuda_toolkit-([^-]+)-py2\.py3-none-any\.whl", wheel["filename"])
        if not match or not RELEASE.match(match.group(1)):
            continue
        line = ".".join(match.group(1).split(".")[:2])
        with zipfile.ZipFile(io.BytesIO(get(wheel["url"]))) as z:
            metadata = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        for text in metadata.splitlines():
            found = REQUIRES.match(text)
            if found and found.group(1) in LIBRARIES:
                lines.setdefault(line, {}).setdefault(found.group(1), set()).add(found.group(2))
        print(f"cuda-toolkit {match.group(1)}: read", file=sys.stderr)
    data = {
        "source": "NVIDIA's cuda-toolkit meta-package on PyPI (Requires-Dist of its [all] extra), by scripts/cuda-lines.py",
        "lines": {line: {lib: sorted(v, key=lambda s: tuple(map(int, s.split(".")))) for lib, v in sorted(libs.items())}
                  for line, libs in sorted(lines.items(), key=lambda kv: tuple(map(int, kv[0].split("."))))},
    }
    body = ",\n".join(f'  "{line}": {json.dumps(libs)}' for line, libs in data["lines"].items())
    OUT.write_text(f'{{"source": {json.dumps(data["source"])},\n "lines": {{\n{body}\n }}\n}}\n', encoding="utf-8")
    print(f"wrote {OUT}: {len(data['lines'])} CUDA lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
