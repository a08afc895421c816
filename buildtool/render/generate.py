"""config + lock -> the full generated tree in memory ({relative path: (text, mode)}). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..config.model import DEFAULT_PLATFORM, Config
from ..errors import UserError
from ..lock.format import Lock, bind_bases, platform_lock
from ..plan.dag import Dag, build_dag
from ..plan.expand import Expansion, expand, in_group
from ..plan.name_claims import check_mpi_names
from ..plan.platforms import combo_platforms, extra_platforms, platform_config, slug
from ..plan.references import ImageRefs, all_refs
from .cuda_pins import check_cuda_pins
from .outputs import bake_json, ci_matrices, images_table, plan_json
from .render import RenderedNode, render_dag

Tree = dict[str, tuple[str, int]]


@dataclass
class Generated:
    expansion: Expansion
    dag: Dag
    rendered: dict[str, RenderedNode]
    groups: dict[str, list[str]]  # group -> image names
    tree: Tree  # paths relative to generated/ (another platform's: to generated/platforms/<os>-<arch>/)
    table: str  # README images table
    references: dict[str, ImageRefs] = field(default_factory=dict)  # image -> repository and tags (plan/references.py)
    platform: str = DEFAULT_PLATFORM
    platforms: dict[str, Generated] = field(default_factory=dict)  # linux/amd64's: every other platform's render

    def for_platform(self, platform: str) -> Generated:
        return self if platform == self.platform else self.platforms[platform]

    def image_platforms(self, name: str) -> tuple[str, ...]:
        """The platforms image `name` is built for."""
        return tuple(p for p, g in ((self.platform, self), *self.platforms.items()) if name in g.dag.variant_node)


def group_members(config: Config, expansion: Expansion) -> dict[str, list[str]]:
    return {g: sorted(v.name for v in expansion.variants if in_group(config, g, dict(v.combo))) for g in sorted(config.groups)}


def generate(config: Config, lock: Lock) -> Generated:
    config = bind_bases(config, lock)
    expansion = expand(config, lock)
    dag = build_dag(config, expansion.variants)
    check_cuda_pins(config, dag, lock)
    check_mpi_names(config, dag)
    rendered = render_dag(config, lock, dag)
    g = assemble(config, expansion, dag, rendered)
    for platform in extra_platforms(config):
        other = generate_platform(config, lock, platform, expansion)
        g.platforms[platform] = other
        g.tree.update({f"platforms/{slug(platform)}/{path}": entry for path, entry in other.tree.items() if path.startswith("nodes/")})
    g.tree = dict(sorted(g.tree.items()))
    return g


def generate_platform(config: Config, lock: Lock, platform: str, default: Expansion) -> Generated:
    """One more platform's render: the images made for it, over its bases and its own pins (lock `platforms`)."""
    view_lock = platform_lock(lock, platform)
    view = bind_bases(platform_config(config, platform), view_lock)
    missing = sorted(k for k, b in view.bases.items() if b.bootstrap is not None and k not in view_lock.bases)
    if missing:
        raise UserError(f"no {platform} pins for base {', '.join(missing)} (images.yaml makes it for {platform})",
                        where=view_lock.doc.where(("platforms",)) if view_lock.doc is not None else None, key=f"platforms.{platform}.apt",
                        expected=f"the base's {platform} apt and pip pins",
                        hint=f"run `buildtool lock --platform {platform}` (engine + network; arm64 runs under emulation) and commit images.lock")
    full = expand(view, view_lock, check_rule_facts=False)
    names = {v.combo: v.name for v in default.variants}
    kept = tuple(v for v in full.variants if platform in combo_platforms(config, v.combo))
    for v in kept:  # one image is one name over its platforms (one index when published)
        if v.combo in names and names[v.combo] != v.name:
            raise UserError(f"image {names[v.combo]!r} would be named {v.name!r} on {platform} (its pins differ in a version the name shows)",
                            where=config.doc.where(("tags", "image")), key="tags.image",
                            expected="the same name on every platform", hint="lock both platforms against the same archive state")
    expansion = replace(full, variants=kept)
    dag = build_dag(view, kept)
    rendered = render_dag(view, view_lock, dag)
    g = assemble(view, expansion, dag, rendered)
    g.platform = platform
    return g


def plan_only(config: Config, lock: Lock) -> Generated:
    """Names, groups and the layer DAG without rendering (`rendered` empty): what `validate` and `list` show of a
    family whose lock does not have every pin yet (render/unlocked.py says which)."""
    config = bind_bases(config, lock)
    expansion = expand(config, lock)
    dag = build_dag(config, expansion.variants)
    check_cuda_pins(config, dag, lock)
    check_mpi_names(config, dag)
    groups = group_members(config, expansion)
    return Generated(expansion, dag, {}, groups, {}, "", all_refs(config, expansion.variants, groups))


def assemble(config: Config, expansion: Expansion, dag: Dag, rendered: dict[str, RenderedNode]) -> Generated:
    """The generated tree (Dockerfiles, plan.json, bake file, CI matrices, docs table) from the planned, rendered DAG."""
    groups = group_members(config, expansion)
    references = all_refs(config, expansion.variants, groups)
    tree: Tree = {}
    for nid, r in rendered.items():
        tree[f"nodes/{nid}/Dockerfile"] = (r.dockerfile, 0o644)
        for name, text in r.files:
            tree[f"nodes/{nid}/{name}"] = (text, r.mode(name))
    tree["plan.json"] = (plan_json(config, dag, rendered, groups), 0o644)
    tree["docker-bake.json"] = (bake_json(dag, rendered), 0o644)
    for name, text in ci_matrices(dag, rendered).items():
        tree[f"ci/{name}"] = (text, 0o644)
    table = images_table(config, dag, rendered, groups)
    tree["IMAGES.md"] = ("# Images\n\nGenerated by `buildtool generate` from images.yaml and images.lock.\n\n" + table, 0o644)
    return Generated(expansion, dag, rendered, groups, dict(sorted(tree.items())), table, references)
