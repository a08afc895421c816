"""CUDA, cuDNN and NCCL from PyPI's nvidia-* wheels, registered with the dynamic linker."""

from __future__ import annotations

from ..config.schema import Dict, PipName, Version
from ._cuda import CudaFlavor
from ._wheels import WheelFlavor


class CudaWheelsFlavor(CudaFlavor, WheelFlavor):
    name = "cuda-wheels"
    platforms = ("linux/amd64",)
    platforms_reason = "nvidia-cudnn-cu11 and nvidia-nccl-cu11 have no aarch64 wheels, and the cu12 sets have not been built for arm64"
    fields = {
        **CudaFlavor.cuda_fields,
        # package name -> exact version; the cuda/cudnn/nccl fields say what these amount to.
        "wheels": Dict(Version(), key=PipName(), min_items=1),
    }
    required = CudaFlavor.required + ("wheels",)
    template = "cuda-wheels.Dockerfile.j2"
    wheel_field = "wheels"
