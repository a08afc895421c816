"""`buildtool list`: the images of a selection, or the combinations the rules dropped."""

from __future__ import annotations

import argparse

from ...config.model import AXES, DEFAULT_PLATFORM
from ...plan.platforms import check_platform
from ..common import EXIT_OK, Inputs, Selection, add_format, add_inputs, add_selection, emit_json, on_platform

NAME = "list"
HELP = "list the images of a group (or the combinations the rules dropped)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_inputs(p)
    add_selection(p)
    add_format(p)
    p.add_argument("--why-excluded", action="store_true", help="list every dropped combination and the rule or exclude that dropped it")


def run(args: argparse.Namespace) -> int:
    platform = check_platform(args.platform)
    inputs = Inputs.from_args(args)
    config, g, _ = inputs.planned()  # a family not locked yet lists too (tag: "not locked")
    whole = g
    if args.why_excluded:
        dropped = [{"combination": dict(d.combo), "reason": d.reason} for d in g.expansion.dropped]
        if args.format == "json":
            emit_json(dropped)
        else:
            for d in g.expansion.dropped:
                print(" ".join(f"{a}={v}" for a, v in d.combo) + f"\n    dropped by {d.reason}")
            print(f"{len(dropped)} combinations dropped")
        return EXIT_OK
    if platform != DEFAULT_PLATFORM:
        config, g = on_platform(inputs.config, config, inputs.load()[1], whole, platform)
    rows = []
    for v in Selection.from_args(args).apply(config, g):
        nid = g.dag.variant_node[v.name]
        refs = g.references[v.name]  # where publish pushes it (plan/references.py), without the site's registry/namespace
        rows.append({"image": v.name, **dict(v.combo), "node": nid, "tag": g.rendered[nid].tag if nid in g.rendered else "not locked", "repository": refs.repository,
                     "tags": list(refs.moving), "release_tag": refs.release_template(config.tags.release),
                     "groups": sorted(k for k, members in g.groups.items() if v.name in members),
                     "platform": platform, "platforms": list(whole.image_platforms(v.name))})
    if args.format == "json":
        emit_json(rows)
        return EXIT_OK
    cols = ["image", *AXES, "groups", "platforms"]
    table = [[r[c] if c not in ("groups", "platforms") else ",".join(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(str(t[i])) for t in table)) if table else len(c) for i, c in enumerate(cols)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths)))
    for t in table:
        print("  ".join(str(x).ljust(w) for x, w in zip(t, widths)))
    print(f"{len(rows)} images (group {args.group or config.default_group}, platform {platform})")
    return EXIT_OK
