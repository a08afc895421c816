"""What a component flavor is: the one place that owns everything about it.

A flavor declares its schema fragment, the axis it serves, the Jinja2 partial
that installs it, the apt and pip packages it needs pinned, the facts it adds
to a variant (versions, tag parts), its labels and its derived checks. The
stage modules iterate over the registry and never name a flavor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config.model import Base, Component
from ..config.schema import Spec


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
    device: str | None = None  # the device kind the check needs (components/devices.py), None: runs anywhere


@dataclass(frozen=True)
class Column:
    """One column of the images table that a flavor declares: its header and its cell from the variant's facts.

    The table has the columns of every registered flavor, in axis order; a variant whose flavor on that
    axis does not declare a column shows `-` there."""

    header: str
    value: Callable[[dict[str, Any]], str]


def dash(value: Any) -> str:
    return str(value) if value else "-"


class Flavor:
    name: ClassVar[str]
    axis: ClassVar[str]
    fields: ClassVar[dict[str, Spec]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    template: ClassVar[str | None] = None  # partial under templates/partials/; default <name>.Dockerfile.j2
    # The partial's text, for a flavor that carries it (a plugin); it is then served under `partial`.
    template_source: ClassVar[str | None] = None
    device: ClassVar[str | None] = None  # the device kind the flavor's images need (accelerators), None: a CPU
    kind: ClassVar[str] = ""  # the `<axis>.kind` fact (accelerator.kind: none | cuda | ...); default: none
    executables: ClassVar[frozenset[str]] = frozenset()  # context files written with mode 0755
    columns: ClassVar[tuple[Column, ...]] = ()  # the images-table columns it fills (see Column)
    # The platforms the flavor installs on, and why not the others (plan/platforms.py intersects them with the base's).
    platforms: ClassVar[tuple[str, ...]] = ("linux/amd64", "linux/arm64")
    platforms_reason: ClassVar[str] = ""

    @property
    def partial(self) -> str:
        return f"partials/{self.template or self.name + '.Dockerfile.j2'}"
    # Cross-field checks that need the base (e.g. NVIDIA base images) live in rules, not here.

    @property
    def needs_device(self) -> bool:
        return self.device is not None

    def properties(self) -> dict[str, Any]:
        """Facts every component of this flavor has, whatever its fields (merged under `<axis>.`, so rules
        and excludes can name them): `kind` and `device`, plus what a flavor family adds."""
        return {"kind": self.kind or "none", "device": self.device or "none"}

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


def uv_requirements(facts: dict[str, Any]) -> dict[str, str]:
    """The python layer's `uv-requirements.txt`: uv at images.yaml's tools.uv version, every platform wheel's sha256
    (pip picks the one for the build's platform); none when the images install with pip."""
    if not facts.get("system.uv"):
        return {}
    hashes = " ".join(f"--hash=sha256:{h}" for h in str(facts["system.uv_sha256"]).split())
    return {"uv-requirements.txt": f"# Generated by buildtool from images.yaml (tools.uv).\nuv=={facts['system.uv']} {hashes}\n"}
