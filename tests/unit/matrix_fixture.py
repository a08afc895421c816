"""A small matrix that uses every component flavor, for pipeline tests."""

from __future__ import annotations

from pathlib import Path

from buildtool.config.loader import load_config
from buildtool.config.model import Config

SHA = "a" * 64

IMAGES_YAML = f"""\
schema: 1
project: {{name: test-images, source: "https://example.invalid/x", licenses: MIT}}
system: {{user: app, uid: 1000, workdir: /home/app}}
bases:
  debian12:
    family: debian
    version: "12"
    codename: bookworm
    image: debian:bookworm-slim@sha256:{SHA}
    python: "3.11.2"
    tag: debian12
    bootstrap: {{tool: debootstrap, suite: bookworm, mirror: "http://deb.debian.org/debian"}}
  ubuntu22.04:
    family: ubuntu
    version: "22.04"
    codename: jammy
    image: ubuntu:22.04@sha256:{SHA}
    python: "3.10.12"
    tag: ubuntu22.04
  nv:
    family: ubuntu
    version: "22.04"
    codename: jammy
    image: nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04@sha256:{SHA}
    python: "3.10.12"
    tag: nv-ubuntu22.04
    provides: {{cuda: "12.8.93", cudnn: "9.8.0.87", nccl: "2.25.1"}}
components:
  python:
    sys: {{flavor: system-python, pip: "25.3", tag: "py{{version}}"}}
    conda: {{flavor: conda, installer: {{url: "https://example.invalid/m.sh", sha256: "{SHA}"}}, conda: "24.9.2", python: "3.11.10", channels: [conda-forge], tag: "conda-py{{version}}"}}
  mpi:
    none: {{flavor: none, tag: ""}}
    openmpi: {{flavor: openmpi, mpi4py: "4.1.2", tag: "openmpi{{version}}"}}
    mpich: {{flavor: mpich, tag: "mpich{{version}}"}}
    intelmpi: {{flavor: intelmpi, version: "2021.17.2", tag: "intelmpi{{version}}"}}
  accelerator:
    cpu: {{flavor: none, tag: ""}}
    cu128: {{flavor: cuda-wheels, cuda: "12.8.90", cudnn: "9.10.2.21", nccl: "2.27.3", wheels: {{nvidia-cuda-runtime-cu12: "12.8.90"}}, tag: "cuda{{cuda_mm}}"}}
    cu118: {{flavor: cuda-wheels, cuda: "11.8.89", cudnn: "8.9.6.50", nccl: "2.21.5", wheels: {{nvidia-cuda-runtime-cu11: "11.8.89"}}, tag: "cuda{{cuda_mm}}"}}
    cuimg: {{flavor: cuda-image, cuda: "12.8.93", cudnn: "9.8.0.87", nccl: "2.25.1", tag: "cuda{{cuda_mm}}-nv"}}
    cuapt:
      flavor: cuda-apt
      cuda: "12.8.90"
      cudnn: "9.10.2.21"
      nccl: "2.27.3"
      repository: {{keyring: "https://example.invalid/k.deb", keyring_sha256: "{SHA}", url: "https://example.invalid/repo/"}}
      packages: {{cuda-cudart-12-8: "12.8.90-1"}}
      tag: "cuda{{cuda_mm}}-apt"
  onnxruntime:
    none: {{flavor: none, tag: ""}}
    ortcpu: {{flavor: ort-cpu, version: "1.23.2", tag: "ort{{version}}"}}
    ortcuda: {{flavor: ort-cuda, version: "1.24.4", cuda: "12.8", tag: "ort{{version}}-cuda"}}
    orttrt: {{flavor: ort-tensorrt, version: "1.24.4", cuda: "12.8", tensorrt: "10.13.3.9", extra_wheels: {{tensorrt-cu12-libs: "10.13.3.9"}}, tag: "ort{{version}}-trt"}}
    ortov: {{flavor: ort-openvino, version: "1.24.1", openvino: "2025.4", tag: "ort{{version}}-ov"}}
matrix:
  axes:
    os: [debian12, ubuntu22.04, nv]
    python: [sys, conda]
    mpi: [none, openmpi, mpich, intelmpi]
    accelerator: [cpu, cu128, cu118, cuimg, cuapt]
    onnxruntime: [none, ortcpu, ortcuda, orttrt, ortov]
  exclude:
    - {{python: conda, os: debian12}}
    - {{python: sys, os: [ubuntu22.04, nv]}}
    - {{mpi: [openmpi, mpich, intelmpi], onnxruntime: [ortcpu, ortcuda, orttrt, ortov]}}
    - {{mpi: [mpich, intelmpi], accelerator: [cu128, cu118, cuimg, cuapt]}}
    - {{accelerator: cuapt, os: [debian12, nv]}}
  rules:
    - id: ort-gpu-major
      reason: onnxruntime-gpu is built for one CUDA major
      when: {{onnxruntime.flavor: [ort-cuda, ort-tensorrt]}}
      require: {{accelerator.cuda: {{same: onnxruntime.cuda, parts: 1}}}}
    - id: ort-cpu-on-cpu
      reason: CPU packages conflict with onnxruntime-gpu
      when: {{onnxruntime.flavor: [ort-cpu, ort-openvino]}}
      require: {{accelerator.flavor: none}}
    - id: intelmpi-venv
      reason: impi-rt needs a venv
      when: {{mpi.flavor: intelmpi}}
      require: {{python.flavor: system-python}}
    - id: cuda-image-base
      reason: cuda-image needs the NVIDIA base
      when: {{accelerator.flavor: cuda-image}}
      require: {{os.cuda: {{same: accelerator.cuda}}}}
    - id: nvidia-base
      reason: the NVIDIA base is only for cuda-image
      when: {{os.cuda: {{not: ""}}}}
      require: {{accelerator.flavor: cuda-image}}
tags:
  image: "{{mpi.tag}}-{{accelerator.tag}}-{{onnxruntime.tag}}-{{python.tag}}-{{os.tag}}"
default_group: smoke
groups:
  smoke:
    select: [{{os: debian12, mpi: openmpi, accelerator: cpu, onnxruntime: none}}]
  release:
    select: [{{}}]
    except: [smoke]
checks:
  - name: shell
    command: "echo ok"
    stdout: "^ok$"
"""


def write_config(tmp_path: Path, text: str = IMAGES_YAML) -> Path:
    path = tmp_path / "images.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str = IMAGES_YAML) -> Config:
    return load_config(write_config(tmp_path, text), env={})
