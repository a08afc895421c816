"""What every verb shares: exit codes, the input/selection/format flags, loading the inputs they name, JSON out."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from ..config.loader import load_config
from ..config.model import DEFAULT_PLATFORM, Config, Variant
from ..errors import Location, UserError
from ..lock.format import Lock, bind_bases, load_lock, platform_lock
from ..plan.expand import select
from ..plan.platforms import check_platform, platform_config, slug
from ..render.generate import Generated, generate, plan_only
from ..render.unlocked import NotLocked, Unlocked, unlocked_nodes

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=Path("images.yaml"), help="the matrix (default: images.yaml)")
    p.add_argument("--lock", type=Path, default=None, help="resolved pins (default: images.lock beside --config)")
    p.add_argument("--site", type=Path, default=None, help="site overlay YAML (default: $BUILDTOOL_SITE, else none)")


def add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group", default=None, help="a group from images.yaml, or 'all' (default: the default group)")
    p.add_argument("--filter", action="append", default=[], metavar="AXIS=V[,V]",
                   help="narrow the selection: os=, python=, mpi=, accelerator=, onnxruntime= or name=GLOB (repeatable)")
    p.add_argument("--platform", default=DEFAULT_PLATFORM, metavar="OS/ARCH",
                   help="the platform to select, build, verify or publish for: linux/amd64 (default) or linux/arm64")


def add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json"), default="table", help="output for people (table) or programs (json)")


@dataclass(frozen=True)
class Inputs:
    """The files a verb reads: images.yaml, its lock and the site overlay (None: $BUILDTOOL_SITE, else none)."""

    config: Path
    lock: Path
    site: Path | None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Inputs:
        return cls(args.config, args.lock or args.config.with_name("images.lock"), args.site)

    @property
    def root(self) -> Path:
        return self.config.parent

    def load_config(self) -> Config:
        return load_config(self.config, self.site)

    def load(self) -> tuple[Config, Lock]:
        lock = load_lock(self.lock)
        return bind_bases(self.load_config(), lock), lock

    def generated(self) -> tuple[Config, Generated]:
        config, lock = self.load()
        return config, generate(config, lock)

    def planned(self) -> tuple[Config, Generated, tuple[Unlocked, ...]]:
        """What `validate` and `list` read: everything generated, or, for a family the lock does not cover yet, its
        names and DAG unrendered (`rendered` empty) with the pins it still needs (render/unlocked.py)."""
        config, lock = self.load()
        try:
            return config, generate(config, lock), ()
        except NotLocked:
            g = plan_only(config, lock)
            return config, g, unlocked_nodes(config, lock, g.dag)


@dataclass(frozen=True)
class Selection:
    group: str | None
    filters: tuple[str, ...]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Selection:
        return cls(args.group, tuple(args.filter))

    def apply(self, config: Config, g: Generated) -> tuple[Variant, ...]:
        return tuple(select(config, g.expansion.variants, self.group, self.filters))


def selected(args: argparse.Namespace) -> tuple[Config, Generated, tuple[Variant, ...]]:
    """The config, everything generated, and the variants --group/--filter select (on --platform: that
    platform's config and render; the stages below never see another platform)."""
    platform = check_platform(getattr(args, "platform", DEFAULT_PLATFORM))
    config, lock = Inputs.from_args(args).load()
    g = generate(config, lock)
    if platform != DEFAULT_PLATFORM:
        config, g = on_platform(args.config, config, lock, g, platform)
    return config, g, Selection.from_args(args).apply(config, g)


def on_platform(where: Path, config: Config, lock: Lock, g: Generated, platform: str) -> tuple[Config, Generated]:
    """The config and render of one more platform."""
    if platform not in g.platforms:
        raise UserError(f"no image of {where} is made for {platform}", where=Location("--platform"), key="--platform",
                        expected="a platform some base lists in `platforms:` (" + ", ".join([DEFAULT_PLATFORM, *g.platforms]) + ")",
                        found=platform)
    return bind_bases(platform_config(config, platform), platform_lock(lock, platform)), g.platforms[platform]


def platform_out(out: Path, platform: str) -> Path:
    """The build contexts of a platform: generated/ for linux/amd64, generated/platforms/<os>-<arch>/ for another."""
    return out if platform == DEFAULT_PLATFORM else out / "platforms" / slug(platform)


def emit_json(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))
