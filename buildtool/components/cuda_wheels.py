"""CUDA, cuDNN and NCCL from PyPI's nvidia-* wheels, registered with the dynamic linker."""

from __future__ import annotations

from ..config.schema import Dict, PipName, Version
from ._cuda import CudaFlavor
from ._wheels import WheelFlavor


class CudaWheelsFlavor(CudaFlavor, WheelFlavor):
    name = "cuda-wheels"
    fields = {
        **CudaFlavor.cuda_fields,
        # package name -> exact version; the cuda/cudnn/nccl fields say what these amount to.
        "wheels": Dict(Version(), key=PipName(), min_items=1),
    }
    required = CudaFlavor.required + ("wheels",)
    template = "cuda-wheels.Dockerfile.j2"
    wheel_field = "wheels"
