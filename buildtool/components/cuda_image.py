"""CUDA provided by an NVIDIA base image (the base declares `provides: {cuda: ...}`)."""

from __future__ import annotations

from ._cuda import CudaFlavor


class CudaImageFlavor(CudaFlavor):
    name = "cuda-image"
    platforms = ("linux/amd64",)
    platforms_reason = "the NVIDIA base image is pinned by its amd64 digest"
    fields = dict(CudaFlavor.cuda_fields)
    template = "cuda-image.Dockerfile.j2"
