"""Install benchmark: uv against pip in the images, and one CUDA leaf against the plain way, on a private engine.

    sudo python bench/bench_install.py [--leaf IMAGE] [--skip-per-node] [--json FILE]

Runs on the benchmark engine of bench_build.py (own data-root, socket and bridge; the main engine's
images and caches are never touched; the bases are copied in). Measured in one run, every build
cold (build cache and cache mounts emptied, bases kept):

 1. the whole chain of the CUDA + ONNX Runtime smoke leaf (system -> python -> CUDA -> ONNX Runtime)
    with `buildtool build`, against bench/azureml-style/Dockerfile: one hand-written Dockerfile of
    the same content (same base; the same apt names at the lock's versions; the same pip pins, with
    pip's resolver, no cache mounts). Ratio buildtool / plain (target <= 0.5) and both image sizes.
 2. per pip-bearing smoke node, the install step with uv (images.yaml as shipped: tools.uv) and with
    pip (the same tree rendered without tools.uv: pip download + pip install --no-index from a
    cache mount), each from a cold build of the smoke group: the seconds BuildKit reports for that
    step, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_build import CLI, Engine, docker0_state, image_size, load_bases, reset, restore_docker0, say, timed  # noqa: E402
from buildtool.config.loader import load_config  # noqa: E402
from buildtool.engine.build import resolve_ca_bundle  # noqa: E402
from buildtool.lock.format import bind_bases, load_lock  # noqa: E402
from buildtool.plan.expand import select  # noqa: E402
from buildtool.render.generate import generate  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LEAF = "cuda12.8-cudnn9-onnxruntime1.24.4-cuda-debian12"
_STEP = re.compile(r"^#(\d+) \[[^\]]*\] RUN (.*)$")
_DONE = re.compile(r"^#(\d+) DONE ([0-9.]+)s$")


def install_step_seconds(log: str) -> float | None:
    """Seconds BuildKit reports for the RUN step that installs the pip set (uv pip install / pip install --no-index)."""
    steps: dict[str, str] = {}
    for line in log.splitlines():
        m = _STEP.match(line)
        if m:
            steps[m.group(1)] = m.group(2)
            continue
        m = _DONE.match(line)
        if m and m.group(1) in steps and re.search(r"uv pip install|pip install --no-deps --require-hashes", steps[m.group(1)]):
            if "uv-requirements.txt" not in steps[m.group(1)]:  # uv's own install is not the set's
                return float(m.group(2))
    return None


def plain_context(config, lock, g, leaf_node: str, ctx: Path) -> str:
    """bench/azureml-style's context for the leaf: apt.txt (requested names at the lock's versions), requirements.txt (all pins)."""
    ctx.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "bench" / "azureml-style" / "Dockerfile", ctx / "Dockerfile")
    chain = g.dag.chain(leaf_node)
    base = chain[0].base
    versions = lock.apt[base.key]
    from buildtool.plan.apt_layers import node_apt_names

    names = sorted({n for node in chain for n in node_apt_names(node)})
    (ctx / "apt.txt").write_text("".join(f"{n}={versions[n]}\n" for n in names))
    from buildtool.lock.apt_sources import apt_sources

    # the same pockets the lock was resolved from (a plain Dockerfile would list them in sources.list too)
    (ctx / "sources.list").write_text("".join(src.line() + "\n" for src in apt_sources(base, config.site)))
    pins: dict[str, str] = {}
    from buildtool.render.pins import node_pip_set_id

    for node in chain:
        set_id = node_pip_set_id(g.dag, node)
        found = lock.pip.get(set_id) if set_id else None
        for pin in found.pins if found else ():
            pins[pin.name] = pin.version
    (ctx / "requirements.txt").write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
    return base.local_ref


def without_uv(work: Path) -> Path:
    """A copy of the project whose images.yaml has no tools.uv: the same tree, pip-installed."""
    copy = work / "pip-variant"
    copy.mkdir()
    text = (REPO / "images.yaml").read_text()
    start = text.index("\ntools:\n")
    end = text.index("\nbases:\n")
    (copy / "images.yaml").write_text(text[:start] + "\n" + text[end:])
    shutil.copy(REPO / "images.lock", copy / "images.lock")
    shutil.copy(REPO / "README.md", copy / "README.md")
    return copy


def cold_group_build(project: Path, logs: Path, label: str) -> dict[str, float | None]:
    reset(KEEP)
    t, rc = timed([sys.executable, "-m", "buildtool", "build", "--group", "smoke", "--jobs", "2", "--logs", str(logs)], logs.with_suffix(".out"),
                  cwd=project)
    if rc != 0:
        raise RuntimeError(f"{label}: cold smoke build failed; see {logs.with_suffix('.out')}")
    run = sorted(p for p in logs.iterdir() if p.is_dir())[-1]
    out = {"_total": round(t, 1)}
    for log in sorted(run.glob("*.log")):
        out[log.stem] = install_step_seconds(log.read_text(errors="replace"))
    return out


KEEP: set[str] = set()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leaf", default=LEAF)
    ap.add_argument("--skip-per-node", action="store_true", help="only the leaf comparison (1)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    config = load_config(REPO / "images.yaml")
    lock = load_lock(REPO / "images.lock")
    config = bind_bases(config, lock)
    g = generate(config, lock)
    chosen = select(config, g.expansion.variants, "smoke", ())
    bases = sorted({v.get("os") for v in chosen})
    KEEP.update(config.bases[b].local_ref for b in bases)
    leaf_node = g.dag.variant_node[args.leaf]
    ca = resolve_ca_bundle(None, config.site.ca_bundle)
    result: dict = {"leaf": args.leaf, "date": time.strftime("%Y-%m-%d")}
    before = docker0_state()
    engine = Engine()
    work = Path(tempfile.mkdtemp(prefix="buildtool-bench-install-"))
    try:
        engine.start()
        load_bases(sorted(KEEP))

        # 1. the leaf, cold: buildtool's chain vs the plain Dockerfile
        reset(KEEP)
        t_bt, rc = timed([sys.executable, "-m", "buildtool", "build", "--filter", f"name={args.leaf}", "--jobs", "2", "--logs", str(work / "logs-leaf")],
                         work / "leaf-buildtool.out")
        if rc != 0:
            raise RuntimeError(f"buildtool build of {args.leaf} failed; see {work / 'leaf-buildtool.out'}")
        leaf_tag = g.rendered[leaf_node].tag
        size_bt = image_size(leaf_tag)
        reset(KEEP)
        ctx = work / "plain"
        base_ref = plain_context(config, lock, g, leaf_node, ctx)
        argv = [CLI, "build", "--progress=plain", "--network", "host", "--build-arg", f"BASE={base_ref}", "-t", "bench/plain-leaf:1"]
        if ca:
            argv += ["--secret", f"id=ca-bundle,src={ca}"]
        t_plain, rc = timed(argv + [str(ctx)], work / "leaf-plain.out")
        if rc != 0:
            raise RuntimeError(f"the plain Dockerfile failed; see {work / 'leaf-plain.out'}")
        size_plain = image_size("bench/plain-leaf:1")
        result["leaf_cold"] = {"buildtool_s": round(t_bt, 1), "plain_s": round(t_plain, 1), "ratio": round(t_bt / t_plain, 2),
                               "buildtool_bytes": size_bt, "plain_bytes": size_plain}
        say(f"leaf cold: buildtool {t_bt:.1f} s vs plain {t_plain:.1f} s = {t_bt / t_plain:.2f}x; sizes {size_bt / 1e9:.2f} GB vs {size_plain / 1e9:.2f} GB")

        # 2. per node: the install step, uv vs pip, from cold smoke builds
        if not args.skip_per_node:
            uv = cold_group_build(REPO, work / "logs-uv", "uv")
            pip_project = without_uv(work)
            gen = timed([sys.executable, "-m", "buildtool", "generate"], work / "pip-generate.out", cwd=pip_project)
            if gen[1] != 0:
                raise RuntimeError(f"generate of the pip variant failed; see {work / 'pip-generate.out'}")
            pip = cold_group_build(pip_project, work / "logs-pip", "pip")
            rows = {}
            for node in sorted(set(uv) | set(pip)):
                if node.startswith("_") or uv.get(node) is None or pip.get(node) is None:
                    continue
                rows[node] = {"uv_s": uv[node], "pip_s": pip[node], "ratio": round(uv[node] / pip[node], 2) if pip[node] else None}
            result["install_step"] = rows
            result["smoke_cold_total"] = {"uv_s": uv["_total"], "pip_s": pip["_total"]}
    except BaseException:
        say(f"failed: logs kept in {work}")
        raise
    else:
        shutil.rmtree(work, ignore_errors=True)
    finally:
        engine.stop()
        if before != "MISSING" and docker0_state() == "MISSING":
            restore_docker0()
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


def report(r: dict) -> None:
    leaf = r["leaf_cold"]
    print(f"\n## install benchmark ({r['date']}), leaf {r['leaf']}\n")
    print("| | buildtool (uv, pool-fetched .debs, cache mounts) | plain Dockerfile (apt + pip) | ratio |")
    print("|---|---|---|---|")
    print(f"| whole chain, cold | {leaf['buildtool_s']} s | {leaf['plain_s']} s | **{leaf['ratio']}x** (target <= 0.5) |")
    print(f"| image size | {leaf['buildtool_bytes'] / 1e9:.2f} GB | {leaf['plain_bytes'] / 1e9:.2f} GB | "
          f"{leaf['buildtool_bytes'] / leaf['plain_bytes']:.2f}x |")
    if "install_step" in r:
        print("\n| node | uv install step | pip install step | uv / pip |")
        print("|---|---|---|---|")
        for node, row in r["install_step"].items():
            print(f"| {node} | {row['uv_s']} s | {row['pip_s']} s | {row['ratio']}x |")
        t = r["smoke_cold_total"]
        print(f"\ncold smoke group build: uv {t['uv_s']} s, pip {t['pip_s']} s ({t['uv_s'] / t['pip_s']:.2f}x)")


if __name__ == "__main__":
    sys.exit(main())
