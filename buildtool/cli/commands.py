"""One function per CLI command: load inputs, call the pure stages, print, write at the edge."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from ..config.loader import load_config
from ..config.model import AXES, DEFAULT_PLATFORM, Config
from ..errors import Location, UserError
from ..lock.format import bind_bases, load_lock, platform_lock
from ..plan.ci_plan import level_matrix, restrict_to_nodes, selected_nodes, selection_levels
from ..plan.expand import select
from ..plan.platforms import check_platform, platform_config, slug
from ..render.generate import Generated, generate
from ..render.outputs import splice_readme
from ..render.writer import PreparedFile, check_output_folder, diff_trees, read_tree, write_tree_atomically
from .main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, emit_json


def _inputs(args: argparse.Namespace):
    config = load_config(args.config, args.site)
    lock_path = args.lock or args.config.with_name("images.lock")
    lock = load_lock(lock_path)
    return bind_bases(config, lock), lock


def _generated(args: argparse.Namespace) -> tuple[Config, Generated]:
    config, lock = _inputs(args)
    return config, generate(config, lock)


def _selected(args: argparse.Namespace) -> tuple[Config, Generated, tuple]:
    """The config, everything generated, and the variants --group/--filter select (on --platform: that
    platform's config and render; the stages below never see another platform)."""
    platform = check_platform(getattr(args, "platform", DEFAULT_PLATFORM))
    config, lock = _inputs(args)
    g = generate(config, lock)
    if platform != DEFAULT_PLATFORM:
        config, g = on_platform(args, config, lock, g, platform)
    return config, g, select(config, g.expansion.variants, args.group, tuple(args.filter))


def on_platform(args: argparse.Namespace, config: Config, lock, g: Generated, platform: str) -> tuple[Config, Generated]:
    """The config and render of one more platform; its build contexts are generated/platforms/<os>-<arch>/."""
    check_platform(platform)
    if platform not in g.platforms:
        raise UserError(f"no image of {args.config} is made for {platform}", where=Location("--platform"), key="--platform",
                        expected="a platform some base lists in `platforms:` (" + ", ".join([DEFAULT_PLATFORM, *g.platforms]) + ")",
                        found=platform)
    if getattr(args, "out", None) is not None or hasattr(args, "out"):
        beside_config(args)
        args.out = Path(args.out) / "platforms" / slug(platform)
    return bind_bases(platform_config(config, platform), platform_lock(lock, platform)), g.platforms[platform]


def _readme_text(config: Config, readme: Path, generated: Generated) -> tuple[str, str] | None:
    """(current, refreshed) README text, or None when there is no README to refresh."""
    if not readme.exists():
        return None
    if not readme.is_file():
        raise UserError("--readme is not a file", where=Location(str(readme)), key="--readme", expected="a Markdown file with the images section markers")
    try:
        current = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the README: {getattr(exc, 'strerror', None) or exc}", where=Location(str(readme)), key="--readme",
                        expected="a readable UTF-8 Markdown file") from None
    refreshed = splice_readme(current, generated.table)
    if refreshed is None:
        raise UserError("README has no images section markers", where=Location(str(readme)), key="README images section",
                        expected="the lines <!-- buildtool:images:begin ... --> and <!-- buildtool:images:end -->")
    return current, refreshed


def cmd_validate(args: argparse.Namespace) -> int:
    config, g = _generated(args)
    layers = len(g.rendered)
    print(f"ok: {args.config}: {len(g.expansion.variants)} images, {layers} layer nodes over {len(config.bases)} bases, "
          f"{len(g.expansion.dropped)} combinations dropped; site overlay: {config.site.source}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    check_platform(args.platform)
    config, g = _generated(args)
    if args.why_excluded:
        rows = [{"combination": dict(d.combo), "reason": d.reason} for d in g.expansion.dropped]
        if args.format == "json":
            emit_json(rows)
        else:
            for d in g.expansion.dropped:
                print(" ".join(f"{a}={v}" for a, v in d.combo) + f"\n    dropped by {d.reason}")
            print(f"{len(rows)} combinations dropped")
        return EXIT_OK
    whole = g
    config, g, chosen = _selected(args) if args.platform != DEFAULT_PLATFORM else (config, g, select(config, g.expansion.variants, args.group,
                                                                                                         tuple(args.filter)))
    rows = []
    for v in chosen:
        nid = g.dag.variant_node[v.name]
        rows.append({"image": v.name, **dict(v.combo), "node": nid, "tag": g.rendered[nid].tag,
                     "groups": sorted(k for k, members in g.groups.items() if v.name in members),
                     "platform": args.platform, "platforms": list(whole.image_platforms(v.name))})
    if args.format == "json":
        emit_json(rows)
        return EXIT_OK
    cols = ["image", *AXES, "groups", "platforms"]
    table = [[r[c] if c not in ("groups", "platforms") else ",".join(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(str(t[i])) for t in table)) if table else len(c) for i, c in enumerate(cols)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths)))
    for t in table:
        print("  ".join(str(x).ljust(w) for x, w in zip(t, widths)))
    print(f"{len(rows)} images (group {args.group or config.default_group}, platform {args.platform})")
    return EXIT_OK


def beside_config(args: argparse.Namespace) -> None:
    """--out and --readme default to generated/ and README.md beside --config (not the current folder)."""
    folder = args.config.parent
    if getattr(args, "out", None) is None:
        args.out = folder / "generated"
    if getattr(args, "readme", None) is None and hasattr(args, "readme"):
        args.readme = folder / "README.md"


def cmd_generate(args: argparse.Namespace) -> int:
    beside_config(args)
    check_output_folder(args.out, keep=(args.config, args.readme, args.lock or args.config.with_name("images.lock")))
    config, g = _generated(args)
    readme = _readme_text(config, args.readme, g)
    # The README's new text is written beside it first: a README that cannot be written fails before generated/ changes.
    prepared = PreparedFile(args.readme, readme[1]) if readme is not None and readme[0] != readme[1] else None
    try:
        write_tree_atomically(args.out, g.tree)
    except BaseException:
        if prepared is not None:
            prepared.discard()
        raise
    if prepared is not None:
        prepared.commit()
    print(f"wrote {args.out}/: {len(g.rendered)} nodes, {len(g.expansion.variants)} images, {len(g.tree)} files"
          + (f"; refreshed {args.readme}" if readme is not None else ""))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    beside_config(args)
    config, g = _generated(args)
    problems = diff_trees(g.tree, read_tree(args.out), str(args.out))
    readme = _readme_text(config, args.readme, g)
    if readme is not None and readme[0] != readme[1]:
        problems += [f"stale: {args.readme} images section"] + list(
            difflib.unified_diff(readme[0].splitlines(), readme[1].splitlines(), f"{args.readme} (on disk)", f"{args.readme} (from images.yaml)", lineterm=""))
    if problems:
        print("\n".join(problems))
        print(f"\nstale: {args.out}/ does not match images.yaml + images.lock; run `buildtool generate` (or `make generate`) and commit", file=sys.stderr)
        return EXIT_FAILED
    print(f"ok: {args.out}/ and {args.readme} are up to date ({len(g.tree)} files)")
    return EXIT_OK


def cmd_docs(args: argparse.Namespace) -> int:
    if args.flavors:
        from ..render.flavor_docs import flavor_reference

        sys.stdout.write(flavor_reference())
        return EXIT_OK
    _, g = _generated(args)
    sys.stdout.write(g.table)
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from ..config.schema_json import images_schema_text

    sys.stdout.write(images_schema_text())
    return EXIT_OK


def cmd_matrix(args: argparse.Namespace) -> int:
    config, g, chosen = _selected(args)
    levels = selection_levels(g, selected_nodes(g, chosen))
    if args.level is None:
        emit_json({"levels": len(levels), "nodes_per_level": [len(ids) for ids in levels]})
        return EXIT_OK
    if not 0 <= args.level < len(levels):
        raise UserError(f"no DAG level {args.level}", where=Location("--level"), key="--level", expected=f"0..{len(levels) - 1}", found=args.level)
    emit_json(level_matrix(g.dag, g.rendered, levels[args.level]))
    return EXIT_OK


def cmd_lock(args: argparse.Namespace) -> int:
    from ..lock.pip import resolve_lock

    config = load_config(args.config, args.site)
    lock_path = args.lock or args.config.with_name("images.lock")
    if args.check or args.refresh_stale:
        return _lock_check(args, config, lock_path)
    if args.upgrade_package and args.only == "apt":
        print("error: --upgrade-package moves pip pins; it cannot go with --only apt", file=sys.stderr)
        return EXIT_USAGE
    only = "pip" if args.upgrade_package and args.only is None else args.only  # moving one pip package never re-locks the bases
    if args.platform != DEFAULT_PLATFORM:
        from ..lock.platform_lock import resolve_platform_lock

        return EXIT_OK if resolve_platform_lock(config, lock_path, check_platform(args.platform), only, args.jobs, tuple(args.base),
                                                args.upgrade, tuple(args.upgrade_package)) else EXIT_FAILED
    return EXIT_OK if resolve_lock(config, lock_path, only=only, jobs=args.jobs, bases=tuple(args.base), upgrade=args.upgrade,
                                   upgrade_packages=tuple(args.upgrade_package)) else EXIT_FAILED


def _lock_check(args: argparse.Namespace, config: Config, lock_path: Path) -> int:
    """--check: report (exit 1 when a pin is stale). --refresh-stale: re-lock exactly the stale bases and regenerate."""
    from ..lock.check import check_lock, render_report

    lock = load_lock(lock_path)
    report = check_lock(lock, config.site, bases=args.base or None)
    if args.format == "json":
        emit_json(report.as_json())
    else:
        print(render_report(report))
    if not report.stale:
        return EXIT_OK
    if not args.refresh_stale:
        return EXIT_FAILED
    return refresh_bases(args, config, lock_path, report.stale_bases(), "pool files gone: " + ", ".join(
        f"{p.base} {p.package} {p.locked}" for p in report.stale))


def refresh_bases(args: argparse.Namespace, config: Config, lock_path: Path, keys: list[str], why: str,
                  images: dict[str, str] | None = None) -> int:
    """Re-lock the apt pins of `keys` against today's archive, say loudly what moved, record it in the lock
    (and so in the images' labels), and regenerate generated/ and the README table."""
    from ..lock.pip import resolve_lock

    print(f"refresh: re-locking the apt pins of {', '.join(keys)} ({why})", file=sys.stderr)
    before = load_lock(lock_path)
    if not resolve_lock(config, lock_path, only="apt", jobs=1, bases=tuple(keys), images=images, refreshed_because=why):
        return EXIT_FAILED
    after = load_lock(lock_path)
    for key in keys:
        old, new = before.apt.get(key, {}), after.apt.get(key, {})
        moved = [f"{n} {old.get(n, '-')} -> {new.get(n, '-')}" for n in sorted(set(old) | set(new)) if old.get(n) != new.get(n)]
        print(f"refresh: {key}: {len(moved)} pins moved" + "".join(f"\n    {m}" for m in moved), file=sys.stderr)
    root = Path(args.config).resolve().parent
    regenerate = argparse.Namespace(**{**vars(args), "out": getattr(args, "out", None) or root / "generated",
                                       "readme": getattr(args, "readme", None) or root / "README.md"})
    rc = cmd_generate(regenerate)
    print(f"refresh: done; review and commit {lock_path.name} and generated/ (the refresh is recorded in the lock and in "
          f"the system layer's io.buildtool.apt.refreshed label until the next `buildtool lock`)", file=sys.stderr)
    return rc


def cmd_bases(args: argparse.Namespace) -> int:
    from ..engine.bases import run_bases

    config, g, chosen = _selected(args)
    lock_path = args.lock or args.config.with_name("images.lock")
    platform = getattr(args, "platform", DEFAULT_PLATFORM)
    lock = platform_lock(load_lock(lock_path), platform)
    keys = sorted({v.get("os") for v in chosen})
    results: list = []
    refresh = getattr(args, "refresh_stale", False)
    rc = run_bases(config, [config.bases[k] for k in keys], force=args.force, output_format=args.format, accept_drift=refresh,
                   locked_manifests={k: b.manifest for k, b in lock.bases.items()}, results_out=results)
    drifted = {r.base: r.image_id for r in results if r.ok and r.drift}
    if rc != 0 or not drifted:
        return rc
    if platform != DEFAULT_PLATFORM:  # another platform's pins are re-locked by a deliberate lock of that platform
        print(f"error: {', '.join(sorted(drifted))} for {platform}: the archive moved since the lock; run "
              f"`buildtool lock --platform {platform} --only apt` and `buildtool generate`", file=sys.stderr)
        return EXIT_FAILED
    # The archive moved since the lock: these bases were bootstrapped with other packages. Re-lock just them.
    why = "; ".join(f"base {r.base} bootstrapped with {len(r.drift)} other packages ({', '.join(r.drift[:3])})" for r in results if r.drift)
    return refresh_bases(args, config, lock_path, sorted(drifted), why, images=drifted)


def cmd_build(args: argparse.Namespace) -> int:
    from ..engine.build import run_build

    beside_config(args)
    config, g, chosen = _selected(args)
    if args.from_registry is None and not args.node:
        return run_build(config, g, chosen, args)
    nodes = selected_nodes(g, chosen, args.node)
    if args.from_registry is not None:
        from ..edges.registry import Registry
        from ..engine.remote import build_with_registry

        return build_with_registry(config, g, nodes, args, Registry.from_site(config.site, host=args.from_registry or None))
    view, only = restrict_to_nodes(g, [args.node])
    return run_build(config, view, only, args)


def cmd_verify(args: argparse.Namespace) -> int:
    from ..verify.runner import run_verify

    config, g, chosen = _selected(args)
    return run_verify(config, g, chosen, args)


def cmd_prune(args: argparse.Namespace) -> int:
    from ..engine.prune import run_prune

    config, g = _generated(args)
    current = {r.tag for r in g.rendered.values()}
    return run_prune(current, dry_run=args.dry_run, cache_age=args.cache_age or None)


def cmd_serving(args: argparse.Namespace) -> int:
    """Build a model-serving image FROM each selected CPU leaf, POST two rows to /score, compare; exit 1 on any failure."""
    from ..engine.client import docker_cli
    from ..serving.smoke import serving_smoke

    config, g, chosen = _selected(args)
    results = serving_smoke(config, g, chosen, docker_cli=docker_cli(), keep=args.keep, network=args.network,
                            out=sys.stderr if args.format == "json" else sys.stdout)
    if args.format == "json":
        emit_json([r.as_dict() for r in results])
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


def cmd_publish(args: argparse.Namespace) -> int:
    from ..publish.push import run_publish

    config, g, chosen = _selected(args)
    return run_publish(config, g, chosen, args)


def cmd_ci(args: argparse.Namespace) -> int:
    """`buildtool ci <verb>` (buildtool/cli/ci.py)."""
    from .ci import run

    return run(args)
