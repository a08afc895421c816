"""Platforms (linux/amd64, linux/arm64): which images each platform gets, and the config seen from one platform. Pure.

A platform is not a matrix axis: an image is one name over its platforms (published as one OCI index), so
the platform changes neither image names nor node ids. What it changes is what a node is built from: the
base is bootstrapped for that architecture, its apt pins and pip wheels are the architecture's own (the
lock's `platforms` section), and so its content hash differs. linux/amd64 is the matrix as it always was:
its recipe ids, pins and hashes are unchanged.

Which platforms an image has: its base's `platforms` (images.yaml, default linux/amd64) intersected with
each of its components' flavor `platforms` (a flavor without arm64 wheels or repositories says so, with why).
"""

from __future__ import annotations

from dataclasses import replace

from ..components import flavor
from ..config.model import DEB_ARCHES, DEFAULT_PLATFORM, LAYER_AXES, PLATFORMS, Config, Selector, Variant
from ..errors import Location, UserError
from ..lock.format import Lock

Combo = tuple[tuple[str, str], ...]


def slug(platform: str) -> str:
    """A platform as one path or tag component: linux/arm64 -> linux-arm64."""
    return platform.replace("/", "-")


def check_platform(platform: str, where: str = "--platform") -> str:
    if platform not in PLATFORMS:
        raise UserError(f"unknown platform {platform!r}", where=Location(where), key=where, expected="one of " + ", ".join(PLATFORMS),
                        found=platform)
    return platform


def component_platforms(config: Config, axis: str, key: str) -> tuple[str, ...]:
    return flavor(config.component(axis, key).flavor).platforms


def combo_platforms(config: Config, combo: Combo) -> tuple[str, ...]:
    """The platforms one combination is built for: its base's, narrowed by each component's flavor."""
    chosen = dict(combo)
    allowed = set(config.bases[chosen["os"]].platforms)
    for axis in LAYER_AXES:
        allowed &= set(component_platforms(config, axis, chosen[axis]))
    return tuple(p for p in PLATFORMS if p in allowed)


def why_not(config: Config, combo: Combo, platform: str) -> str:
    """Why a combination has no image for `platform` ('' when it has one)."""
    chosen = dict(combo)
    base = config.bases[chosen["os"]]
    if platform not in base.platforms:
        return f"base {base.key} is made for {', '.join(base.platforms)} (images.yaml bases.{base.key}.platforms)"
    for axis in LAYER_AXES:
        fl = flavor(config.component(axis, chosen[axis]).flavor)
        if platform not in fl.platforms:
            return f"{axis} {chosen[axis]} (flavor {fl.name}) installs on {', '.join(fl.platforms)} only: {fl.platforms_reason or 'not declared'}"
    return ""


def extra_platforms(config: Config) -> tuple[str, ...]:
    """The platforms besides linux/amd64 that some base is made for (each gets its own render)."""
    wanted = {p for b in config.bases.values() for p in b.platforms}
    return tuple(p for p in PLATFORMS if p != DEFAULT_PLATFORM and p in wanted)


def platform_config(config: Config, platform: str) -> Config:
    """The config seen from one platform: only the bases made for it, each as that architecture (its recipe id,
    and so its tag, names the architecture). Components stay (rules name their facts); the images a component
    cannot be made on are dropped after expansion (combo_platforms). linux/amd64: the config itself."""
    if platform == DEFAULT_PLATFORM:
        return config
    arch = DEB_ARCHES[platform]
    bases = {k: replace(b, arch=arch, content="") for k, b in config.bases.items() if platform in b.platforms}
    axes = dict(config.axes)
    axes["os"] = tuple(k for k in config.axes["os"] if k in bases)
    if not axes["os"]:
        raise UserError(f"no image can be made for {platform}: no base of the matrix lists it", where=config.doc.where(("bases",)),
                        key="bases", expected=f"a base with `platforms: [..., {platform}]`")
    include = tuple(s for s in config.include if _fits(s, axes))
    return replace(config, bases=bases, axes=axes, include=include)


def platform_variants(config: Config, view: Config, lock: Lock) -> tuple[Variant, ...]:
    """The images of `view` (platform_config of `config`, bound to the platform's lock) made for its platform."""
    from .expand import expand

    platform = next((p for p, a in DEB_ARCHES.items() if all(b.arch == a for b in view.bases.values())), DEFAULT_PLATFORM)
    return tuple(v for v in expand(view, lock, check_rule_facts=False).variants if platform in combo_platforms(config, v.combo))


def _fits(selector: Selector, axes: dict[str, tuple[str, ...]]) -> bool:
    return all(any(v in axes.get(axis, ()) for v in values) for axis, values in selector.values)


__all__ = ["slug", "check_platform", "combo_platforms", "why_not", "extra_platforms", "platform_config", "PLATFORMS", "DEFAULT_PLATFORM"]
