"""What every CUDA flavor shares: the version fields, facts, labels and linker checks."""

from __future__ import annotations

from ..config.schema import Version
from .base import Check, Column, Flavor, dash


def major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


class CudaFlavor(Flavor):
    axis = "accelerator"
    kind = "cuda"
    device = "nvidia"
    columns = (
        Column("CUDA", lambda f: dash(f.get("accelerator.cuda"))),
        Column("cuDNN", lambda f: dash(f.get("accelerator.cudnn"))),
        Column("NCCL", lambda f: dash(f.get("accelerator.nccl"))),
    )
    cuda_fields = {"cuda": Version(), "cudnn": Version(), "nccl": Version()}
    required = ("cuda", "cudnn", "nccl")

    def facts(self, component, base, apt_pins):
        f = component.fields
        return {
            "version": f["cuda"],
            "cuda": f["cuda"],
            "cuda_mm": major_minor(f["cuda"]),
            "cuda_major": f["cuda"].split(".")[0],
            "cudnn": f["cudnn"],
            "cudnn_major": f["cudnn"].split(".")[0],
            "nccl": f["nccl"],
            "method": self.name,
        }

    def labels(self, component, facts):
        return {
            "io.buildtool.accelerator.flavor": self.name,
            "io.buildtool.cuda.version": facts["accelerator.cuda"],
            "io.buildtool.cudnn.version": facts["accelerator.cudnn"],
            "io.buildtool.nccl.version": facts["accelerator.nccl"],
        }

    def env(self, component, facts):
        return {"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"}

    def checks(self, component, facts):
        return (
            Check("cuda", "libraries-resolvable", {"libs": ["libcudart", "libcudnn", "libnccl"]}),
            Check("cuda", "library-versions", {"cuda": facts["accelerator.cuda"], "cudnn": facts["accelerator.cudnn"], "nccl": facts["accelerator.nccl"]}),
            Check("gpu", "device-visible", {}, device=self.device),
        )
