"""Which layer installs each `extras` entry (config/extras.py). Pure.

An entry goes into the layer of the deepest axis its `on` names (only `os`: the system layer), or,
where that axis's component installs nothing, the nearest layer above it. Every image built on that
layer gets the packages, so every one of them must be selected by `on`: a layer shared with an image
the entry does not select is an error (name that image's axis in `on`, or narrow it).
"""

from __future__ import annotations

from ..config.model import AXES, LAYER_AXES, Config, Extra, Variant
from ..errors import Location, UserError

SYSTEM_STAGE = "system"  # the system layer's stage (plan/dag.py's too)
_STAGE_ORDER = (SYSTEM_STAGE, *LAYER_AXES)


def _target_stage(extra: Extra) -> str:
    named = [axis for axis, _ in extra.on.values if axis in LAYER_AXES]
    return max(named, key=LAYER_AXES.index) if named else SYSTEM_STAGE


def place_extras(config: Config, variants: tuple[Variant, ...], chains: dict[str, list[str]], stages: dict[str, str]) -> dict[str, tuple[Extra, ...]]:
    """node id -> the extras entries (in images.yaml order) its layer installs; raises UserError for a shared layer.
    `chains`: each image's node ids, base first; `stages`: each node's stage."""
    if not config.extras:
        return {}
    through: dict[str, list[Variant]] = {}
    for v in variants:
        for nid in chains[v.name]:
            through.setdefault(nid, []).append(v)
    placed: dict[str, list[Extra]] = {}
    for extra in config.extras:
        limit = _STAGE_ORDER.index(_target_stage(extra))
        if not any(extra.on.matches(dict(v.combo)) for v in variants):
            raise UserError(f"extras[{extra.index}] selects no image of the matrix", where=Location(config.path, extra.line),
                            key=f"extras[{extra.index}].on", expected="a selector that takes at least one image (see `buildtool list --group all`)",
                            found=" ".join(f"{a}={','.join(vals)}" for a, vals in extra.on.values))
        for v in variants:
            if not extra.on.matches(dict(v.combo)):
                continue
            layers = [nid for nid in chains[v.name] if stages[nid] != "base" and _STAGE_ORDER.index(stages[nid]) <= limit]
            nid = layers[-1]
            if extra in placed.get(nid, []):
                continue
            others = [o for o in through[nid] if not extra.on.matches(dict(o.combo))]
            if others:
                combo = " ".join(f"{a}={others[0].get(a)}" for a in AXES)
                raise UserError(f"extras[{extra.index}] would be installed in layer {nid}, which image {others[0].name} is built on too",
                                where=Location(config.path, extra.line), key=f"extras[{extra.index}].on",
                                expected="a selector that takes every image built on that layer, or names a deeper axis whose component is a layer",
                                found=combo)
            placed.setdefault(nid, []).append(extra)
    return {nid: tuple(found) for nid, found in placed.items()}
