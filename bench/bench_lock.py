"""`buildtool lock`'s pip half: uv against the old pip resolver, the whole matrix, no-op and one-package runs.

    python bench/bench_lock.py [--skip-pip] [--repeat-noop 5] [--json FILE]

Needs PyPI (or BUILDTOOL_PYPI_INDEX); no engine. Works on copies in a temporary folder: the
repository's images.lock is never written. In one run it measures

  (a) one pip set pair, the debian12 CUDA stack (debian12.sys.system-python.cu128-cudnn9) and its
      ONNX Runtime child (.ort-cuda, constrained by its ancestors' pins from images.lock), resolved by
      the old pip path (bench/pip_resolver.py: `pip install --dry-run --report`, empty PIP_CACHE_DIR)
      and by uv (`uv pip compile`, empty UV_CACHE_DIR): seconds, ratio, and whether both locked the
      same pins (versions and wheel hashes);
  (b) `buildtool lock --only pip --upgrade` of the whole shipped matrix with an empty uv cache
      (target < 60 s), and how many lines of images.lock it changed (what PyPI released since);
  (c) a no-op `buildtool lock --only pip` (target < 5 s, images.lock byte-identical), best of N;
  (d) `buildtool lock --only pip --upgrade-package packaging` on the shipped lock (empty uv cache): sets re-resolved, lines of
      images.lock changed, and whether every changed line is one of packaging's (its pins, and the
      `packaging==` constraints of the sets below them).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pip_resolver import run_pip  # noqa: E402
from buildtool.config.loader import load_config  # noqa: E402
from buildtool.lock.format import bind_bases, load_lock  # noqa: E402
from buildtool.plan.dag import build_dag  # noqa: E402
from buildtool.plan.expand import expand  # noqa: E402
from buildtool.resolve import pip as lr  # noqa: E402
from buildtool.resolve import uv as luv  # noqa: E402

PAIR = ("debian12.sys.system-python.cu128-cudnn9", "debian12.sys.system-python.cu128-cudnn9.ort-cuda")


def pair_requests() -> list[luv.PipRequest]:
    """The two sets' requests exactly as `buildtool lock` builds them from images.yaml and images.lock."""
    lock = load_lock(ROOT / "images.lock")
    config = bind_bases(load_config(ROOT / "images.yaml", None), lock)
    dag = build_dag(config, expand(config, lock).variants)
    resolver = lr.PipResolver(dag, lock, lr.PYPI, 1)
    return [resolver.request(dag.nodes[node]) for node in PAIR]


def timed(fn, *args, **kwargs):
    started = time.monotonic()
    result = fn(*args, **kwargs)
    return time.monotonic() - started, result


def bench_pair(work: Path, skip_pip: bool) -> dict:
    requests = pair_requests()
    index = os.environ.get("BUILDTOOL_PYPI_INDEX") or lr.PYPI
    old = dict(os.environ)
    os.environ["UV_CACHE_DIR"] = str(work / "uv-cache-pair")
    try:
        uv_s, uv_pins = timed(lambda: [luv.run_uv(luv.UvJob(r), index) for r in requests])
    finally:
        os.environ.clear()
        os.environ.update(old)
    out = {"uv_s": uv_s, "sets": list(PAIR), "uv_pins": sum(len(p) for p in uv_pins)}
    if not skip_pip:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in ("PIP_CERT",)}
        env["PIP_CACHE_DIR"] = str(work / "pip-cache-pair")
        pip_s, pip_pins = timed(lambda: [run_pip(r, index, env) for r in requests])
        out.update(pip_s=pip_s, pip_pins=sum(len(p) for p in pip_pins), same_pins=pip_pins == uv_pins)
        if pip_pins != uv_pins:
            out["differ"] = sorted({f"{p.name}=={p.version}" for s in pip_pins for p in s} ^ {f"{p.name}=={p.version}" for s in uv_pins for p in s})
    return out


def buildtool_lock(lock: Path, *extra: str, cache: Path | None = None) -> tuple[float, str]:
    env = dict(os.environ)
    if cache is not None:
        env["UV_CACHE_DIR"] = str(cache)
    cmd = [sys.executable, "-m", "buildtool", "lock", "--config", str(ROOT / "images.yaml"), "--lock", str(lock), "--only", "pip", *extra]
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    took = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return took, done.stdout


def changed_lines(before: str, after: str) -> list[str]:
    """The -/+ lines of a diff of the two texts."""
    return [ln for ln in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def only_package(lines: list[str], name: str) -> bool:
    """Every changed line is one of `name`'s: a pin ({"name": "packaging", ...}) or a constraint ("packaging==...")."""
    return all(f'"name": "{name}"' in ln or f'"{name}==' in ln for ln in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--skip-pip", action="store_true", help="skip the old pip path in (a) (it takes minutes)")
    parser.add_argument("--repeat-noop", type=int, default=5, help="no-op runs in (c): best of N (default 5)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)

    shipped = (ROOT / "images.lock").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="buildtool-bench-lock-") as tmp:
        work = Path(tmp)
        print("(a) one CUDA + ONNX Runtime set pair, cold caches ...", flush=True)
        pair = bench_pair(work, args.skip_pip)

        print("(b) lock --only pip --upgrade, whole matrix, empty uv cache ...", flush=True)
        upgraded = work / "upgrade" / "images.lock"
        upgraded.parent.mkdir()
        shutil.copy(ROOT / "images.lock", upgraded)
        upgrade_s, _ = buildtool_lock(upgraded, "--upgrade", cache=work / "uv-cache-matrix")
        upgrade_lines = changed_lines(shipped, upgraded.read_text(encoding="utf-8"))
        sets = len(load_lock(upgraded).pip)

        print("(c) no-op lock --only pip ...", flush=True)
        noop = work / "noop" / "images.lock"
        noop.parent.mkdir()
        shutil.copy(ROOT / "images.lock", noop)
        noop_runs = [buildtool_lock(noop)[0] for _ in range(max(1, args.repeat_noop))]
        noop_identical = noop.read_text(encoding="utf-8") == shipped

        print("(d) lock --only pip --upgrade-package packaging ...", flush=True)
        moved = work / "move" / "images.lock"
        moved.parent.mkdir()
        shutil.copy(ROOT / "images.lock", moved)
        move_s, said = buildtool_lock(moved, "--upgrade-package", "packaging", cache=work / "uv-cache-move")  # a cold cache too
        move_sets = next((ln.split("re-resolved ", 1)[1].split(" ", 1)[0] for ln in said.splitlines() if "re-resolved" in ln), "?")
        move_lines = changed_lines(shipped, moved.read_text(encoding="utf-8"))

    rows = []
    if "pip_s" in pair:
        rows.append(("(a) CUDA+ORT pair: pip vs uv", f"{pair['uv_s']:.1f} s", f"{pair['pip_s']:.1f} s (pip)",
                     f"{pair['uv_s'] / pair['pip_s']:.3f}x ({pair['pip_s'] / pair['uv_s']:.0f}x faster)",
                     "same pins" if pair["same_pins"] else f"pins differ: {', '.join(pair['differ'])}"))
    else:
        rows.append(("(a) CUDA+ORT pair: uv", f"{pair['uv_s']:.1f} s", "(pip skipped)", "", ""))
    rows.append(("(b) --upgrade, whole matrix, cold", f"{upgrade_s:.1f} s", "60 s (target)", f"{upgrade_s / 60:.2f}x",
                 f"{sets} sets; {len(upgrade_lines)} lock lines changed"))
    rows.append(("(c) no-op lock --only pip (best)", f"{min(noop_runs):.2f} s", "5 s (target)", f"{min(noop_runs) / 5:.2f}x",
                 "images.lock byte-identical" if noop_identical else "images.lock CHANGED"))
    rows.append(("(d) --upgrade-package packaging", f"{move_s:.1f} s", "", "",
                 f"{move_sets} sets re-resolved, {len(move_lines)} lock lines changed; " + ("only packaging's" if only_package(move_lines, "packaging") else "OTHER LINES TOO")))
    widths = [max(len(r[i]) for r in rows + [("figure", "buildtool", "baseline", "ratio", "notes")]) for i in range(5)]
    for row in [("figure", "buildtool", "baseline", "ratio", "notes"), tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if args.json:
        args.json.write_text(json.dumps({"pair": pair, "upgrade_s": upgrade_s, "upgrade_changed_lines": len(upgrade_lines), "sets": sets,
                                         "noop_s": noop_runs, "noop_identical": noop_identical, "upgrade_package_s": move_s,
                                         "upgrade_package_changed_lines": len(move_lines), "upgrade_package_sets": move_sets,
                                         "upgrade_package_only_its_lines": only_package(move_lines, "packaging")}, indent=2) + "\n")
    ok = noop_identical and only_package(move_lines, "packaging")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
