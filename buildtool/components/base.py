"""What a component flavor is: the one place that owns everything about it.

A flavor declares its schema fragment, the axis it serves, the Jinja2 partial
that installs it, the apt and pip packages it needs pinned, the facts it adds
to a variant (versions, tag parts), its labels and its derived checks. The
stage modules iterate over the registry and never name a flavor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..model import Base, Component
from ..schema import Spec


@dataclass(frozen=True)
class LayerInputs:
    """What a partial needs beyond the component itself, resolved by the plan."""

    component: Component
    base: Base
    facts: dict[str, Any]  # the variant's facts (all axes)
    apt: tuple[tuple[str, str], ...]  # (package, exact version) from the lock
    pip: tuple[tuple[str, str, str], ...]  # (name, version, sha256) from the lock


@dataclass(frozen=True)
class Check:
    """A derived check, run by `buildtool verify` (issue 4). Data only."""

    family: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)


class Flavor:
    name: ClassVar[str]
    axis: ClassVar[str]
    fields: ClassVar[dict[str, Spec]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    template: ClassVar[str | None] = None  # partial under templates/partials/; default <name>.Dockerfile.j2

    @property
    def partial(self) -> str:
        return f"partials/{self.template or self.name + '.Dockerfile.j2'}"
    # Cross-field checks that need the base (e.g. NVIDIA base images) live in rules, not here.

    def apt_packages(self, component: Component, base: Base) -> tuple[str, ...]:
        return ()

    def pip_requirements(self, component: Component, facts: dict[str, Any]) -> tuple[str, ...]:
        """Direct requirements as exact `name==version` pins; the lock adds deps and hashes."""
        return ()

    def facts(self, component: Component, base: Base, apt_pins: dict[str, str]) -> dict[str, Any]:
        """Facts about this component on this base, merged under `<axis>.`."""
        return {"version": component.fields.get("version", "")}

    def labels(self, component: Component, facts: dict[str, Any]) -> dict[str, str]:
        prefix = f"io.buildtool.{self.axis}"
        out = {f"{prefix}.flavor": self.name}
        version = facts.get(f"{self.axis}.version")
        if version:
            out[f"{prefix}.version"] = str(version)
        return out

    def env(self, component: Component, facts: dict[str, Any]) -> dict[str, str]:
        return {}

    def context_files(self, component: Component, facts: dict[str, Any]) -> dict[str, str]:
        return {}

    def checks(self, component: Component, facts: dict[str, Any]) -> tuple[Check, ...]:
        return ()


def upstream_version(debian_version: str) -> str:
    """'1:4.1.4-3+b1' -> '4.1.4': drop the epoch and the Debian revision.

    Debian writes a downgrade as 'X+reallyY' (trixie's mpich '4.3.0+really4.2.1-1'): the upstream is Y.
    """
    version = debian_version.split(":", 1)[-1]
    version = version.rsplit("-", 1)[0] if "-" in version else version
    return version.split("+really", 1)[1] if "+really" in version else version
