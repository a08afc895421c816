"""Device kinds: what a check or an accelerator flavor needs beyond a CPU, and how a container gets it.

A derived check that needs a device names its kind (`Check(..., device="nvidia")`); so does an
accelerator flavor (`device = "nvidia"`). `buildtool verify` asks this table how to pass a kind's
devices to `docker run` (and so how to find out whether the host has them); the checks and the
session never spell those flags. To add a kind (AMD's ROCm, say), register one `DeviceKind`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceKind:
    name: str
    run_args: tuple[str, ...]  # what `docker run` needs to hand the kind's devices to a container
    tier: str = "gpu"  # the report's tier name for checks that need this kind

    @property
    def no_device(self) -> str:
        """Why a check of this kind was not run, when the probe run failed."""
        return f"no {self.tier.upper()}: docker run {' '.join(self.run_args)} failed"


NVIDIA = DeviceKind("nvidia", ("--gpus", "all"))

DEVICE_KINDS: dict[str, DeviceKind] = {NVIDIA.name: NVIDIA}
# The kind of a plan entry that says only `"tier": "gpu"` (plans written before checks named their device).
DEFAULT_GPU = NVIDIA.name


def device_kind(name: str) -> DeviceKind:
    try:
        return DEVICE_KINDS[name]
    except KeyError:
        raise KeyError(f"no device kind {name!r} (known: {', '.join(DEVICE_KINDS)})") from None


def register_device(kind: DeviceKind) -> None:
    if kind.name in DEVICE_KINDS:
        raise ValueError(f"device kind {kind.name!r} is already registered")
    DEVICE_KINDS[kind.name] = kind


def unregister_device(name: str) -> None:
    DEVICE_KINDS.pop(name, None)


def run_args(kinds) -> tuple[str, ...]:
    """`docker run` arguments for a set of device kinds (sorted by name, so the command line is stable)."""
    return tuple(arg for name in sorted(set(kinds)) for arg in device_kind(name).run_args)


def check_device(check: dict) -> str | None:
    """The device kind a plan entry's check needs (None: a CPU check)."""
    device = check.get("device")
    if device:
        return str(device)
    return DEFAULT_GPU if check.get("tier") == "gpu" else None
