"""The registry: flavor name -> the object that owns everything about that flavor.

To add a flavor (ROCm, a new CUDA method, ...): write one module here with a
Flavor subclass and its partial under templates/partials/, then list it below.
"""

from __future__ import annotations

from .base import Check, Flavor, LayerInputs
from .conda import CondaFlavor
from .cuda_apt import CudaAptFlavor
from .cuda_image import CudaImageFlavor
from .cuda_wheels import CudaWheelsFlavor
from .intelmpi import IntelMpiFlavor
from .mpich import MpichFlavor
from .none import NoneFlavor
from .openmpi import OpenMpiFlavor
from .ort_cpu import OrtCpuFlavor
from .ort_cuda import OrtCudaFlavor
from .ort_openvino import OrtOpenvinoFlavor
from .ort_tensorrt import OrtTensorrtFlavor
from .system import SystemFlavor
from .system_python import SystemPythonFlavor

SYSTEM = SystemFlavor()
NONE = NoneFlavor()

FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        SystemPythonFlavor(),
        CondaFlavor(),
        OpenMpiFlavor(),
        MpichFlavor(),
        IntelMpiFlavor(),
        CudaWheelsFlavor(),
        CudaImageFlavor(),
        CudaAptFlavor(),
        OrtCpuFlavor(),
        OrtCudaFlavor(),
        OrtTensorrtFlavor(),
        OrtOpenvinoFlavor(),
    )
}


def flavors_for(axis: str) -> tuple[str, ...]:
    """Flavor names usable on an axis ('none' is usable on every axis but python)."""
    names = tuple(sorted(n for n, f in FLAVORS.items() if f.axis == axis))
    return names if axis == "python" else ("none",) + names


def flavor(name: str) -> Flavor:
    return NONE if name == "none" else FLAVORS[name]


__all__ = ["Check", "Flavor", "LayerInputs", "FLAVORS", "SYSTEM", "NONE", "flavors_for", "flavor"]
