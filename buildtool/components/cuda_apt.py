"""CUDA, cuDNN and NCCL from NVIDIA's apt repository, keyring checked by sha256."""

from __future__ import annotations

from ..config.schema import DebPackage, DebVersion, Dict, HttpUrl, Map, Sha256
from ._cuda import CudaFlavor


class CudaAptFlavor(CudaFlavor):
    name = "cuda-apt"
    platforms = ("linux/amd64",)
    platforms_reason = "the repository configured is NVIDIA's ubuntu2204/x86_64 one"
    fields = {
        **CudaFlavor.cuda_fields,
        "repository": Map(
            {"keyring": HttpUrl(), "keyring_sha256": Sha256(), "url": HttpUrl()},
            required=("keyring", "keyring_sha256", "url"),
            what="NVIDIA's apt repository: keyring, keyring_sha256, url",
        ),
        # NVIDIA's packages are not in the distribution's archive, so they are pinned here.
        "packages": Dict(DebVersion(), key=DebPackage(), min_items=1),
    }
    required = CudaFlavor.required + ("repository", "packages")
    template = "cuda-apt.Dockerfile.j2"

    def apt_packages(self, component, base):
        return ("curl",)
