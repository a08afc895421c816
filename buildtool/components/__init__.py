"""The registry: flavor name -> the object that owns everything about that flavor.

To add a flavor (ROCm, a new CUDA method, ...): write one module here with a
Flavor subclass and its partial under templates/partials/, then list it below;
a new device kind goes into devices.py. Everything downstream of the plan (the
images table, context-file modes, check devices, serving's CPU leaves) reads the
flavors, so nothing else names it. A flavor from elsewhere (a test, a plugin) is
added with register() and taken away with unregister().
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..config.model import LAYER_AXES
from .base import Check, Column, Flavor, LayerInputs
from .conda import CondaFlavor
from .cuda_apt import CudaAptFlavor
from .cuda_image import CudaImageFlavor
from .cuda_wheels import CudaWheelsFlavor
from .devices import DEVICE_KINDS, DeviceKind, device_kind, register_device, unregister_device
from .intelmpi import IntelMpiFlavor
from .mpich import MpichFlavor
from .none import NoneFlavor
from .openmpi import OpenMpiFlavor
from .openmpi_wheels import OpenMpiWheelsFlavor
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
        OpenMpiWheelsFlavor(),
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


def register(fl: Flavor) -> None:
    """Add a flavor from outside this package (its partial may come with it: Flavor.template_source)."""
    if fl.name == "none" or fl.name in FLAVORS:
        raise ValueError(f"flavor {fl.name!r} is already registered")
    if fl.axis not in LAYER_AXES:
        raise ValueError(f"flavor {fl.name!r}: axis {fl.axis!r} is not one of {', '.join(LAYER_AXES)}")
    if fl.device is not None:
        device_kind(fl.device)  # raises for an unknown kind
    FLAVORS[fl.name] = fl


def unregister(name: str) -> None:
    FLAVORS.pop(name, None)


@contextmanager
def registered(fl: Flavor, *kinds: DeviceKind) -> Iterator[Flavor]:
    """The flavor (and its device kinds) registered for the duration of a with-block."""
    added: list[str] = []
    mine = False
    try:
        for kind in kinds:
            register_device(kind)
            added.append(kind.name)
        register(fl)
        mine = True
        yield fl
    finally:
        if mine:  # never the flavor of that name that was there before (register refused this one)
            unregister(fl.name)
        for name in added:
            unregister_device(name)


def table_columns() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(axis, headers) in table order: the system layer's, then each layer axis's, from every registered flavor of
    that axis in registry order (flavors of one family share their columns)."""
    out = [("system", tuple(c.header for c in SYSTEM.columns))]
    for axis in LAYER_AXES:
        headers: dict[str, None] = {}
        for fl in FLAVORS.values():
            if fl.axis == axis:
                headers.update(dict.fromkeys(c.header for c in fl.columns))
        out.append((axis, tuple(headers)))
    return tuple(out)


def property_names(axis: str) -> tuple[str, ...]:
    """The properties (Flavor.properties) the flavors of an axis declare: what `<axis>.<name>` selectors may name."""
    names: dict[str, None] = dict.fromkeys(NONE.properties()) if axis != "python" else {}
    for fl in FLAVORS.values():
        if fl.axis == axis:
            names.update(dict.fromkeys(fl.properties()))
    return tuple(names)


def property_values(axis: str, name: str) -> tuple[str, ...]:
    """Every value the registered flavors of an axis give a property (sorted)."""
    flavors = [fl for fl in FLAVORS.values() if fl.axis == axis] + ([NONE] if axis != "python" else [])
    return tuple(sorted({str(fl.properties()[name]) for fl in flavors if name in fl.properties()}))


def template_source(partial: str) -> str | None:
    """The text of a registered flavor's partial that it carries itself (Flavor.template_source), else None."""
    for fl in FLAVORS.values():
        if fl.template_source is not None and fl.partial == partial:
            return fl.template_source
    return None


__all__ = ["Check", "Column", "Flavor", "LayerInputs", "FLAVORS", "SYSTEM", "NONE", "DEVICE_KINDS", "DeviceKind", "flavors_for",
           "flavor", "register", "unregister", "registered", "table_columns", "property_names", "property_values", "template_source", "device_kind"]
