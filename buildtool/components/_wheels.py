"""What the flavors installed from PyPI wheels share: their direct pins, then a field of extra wheels, sorted."""

from __future__ import annotations

from .base import Flavor


class WheelFlavor(Flavor):
    wheel_field = ""  # the field mapping wheel name -> exact version

    def direct_wheels(self, component) -> tuple[str, ...]:
        return ()

    def pip_requirements(self, component, facts):
        wheels = component.fields.get(self.wheel_field, {}) if self.wheel_field else {}
        return self.direct_wheels(component) + tuple(f"{n}=={v}" for n, v in sorted(wheels.items()))
