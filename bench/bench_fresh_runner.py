"""Fresh-runner skip: a runner with an empty engine decides from the registry alone that nothing
needs building (no pulls, no builds), against the plain `docker build` loop on the same empty engine.

    python bench/bench_fresh_runner.py [--group smoke] [--filter accelerator=cpu] [--baseline]

Setup (root): the registry of scripts/registry.sh (port $BUILDTOOL_HANDOFF_REGISTRY_PORT, default
5055, state /var/lib/buildtool-registry-handoff) must hold every selected node's content-hash tag
(`--publish` pushes the missing ones from the default engine first). The second engine of
scripts/second-engine.sh is wiped and started: an empty cache, as on a fresh CI runner.

Measured:
  skip      wall time of `buildtool ci build --group G [--filter F]` on the empty
            engine, process start to exit (target < 5 s): HEAD one manifest per node, list the
            engine's tags (none), decide; asserted: nothing built, nothing pulled, the engine still
            has no image.
  baseline  (--baseline) the plain loop on the same empty engine: `DOCKER_BUILDKIT=1 docker build`
            per node, parents first, with the same CA secret; the bases are loaded into the engine
            beforehand (docker save | docker load, not timed). Or --baseline-seconds N to reuse a
            figure measured before.
Prints one JSON document (also written to logs/bench-fresh-runner.json).

Default selection: the smoke group without the CUDA chain (--filter accelerator=cpu, 11 nodes):
pushing the 3-4 GB CUDA layers to the local registry is slow on these hosts; pass --filter '' for
the whole smoke group.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
ENGINE_B = "unix:///run/buildtool-engine-b.sock"


def run(argv: list[str], env: dict[str, str] | None = None, check: bool = True, timeout: int = 3600, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **kw)
    if check and done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def registry_env(port: str, state: str) -> dict[str, str]:
    env = dict(os.environ, BUILDTOOL_REGISTRY_PORT=port, BUILDTOOL_REGISTRY_STATE=state)
    run(["bash", "scripts/registry.sh", "start"], env=env)
    lines = run(["bash", "scripts/registry.sh", "env"], env=env).stdout.splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def selection_args(group: str, filt: str) -> list[str]:
    return ["--group", group] + (["--filter", filt] if filt else [])


def nodes_in_order(group: str, filt: str) -> list[dict]:
    levels = json.loads(run([PY, "-m", "buildtool.cli.main", "matrix", *selection_args(group, filt)]).stdout)["levels"]
    out: list[dict] = []
    for n in range(levels):
        out += json.loads(run([PY, "-m", "buildtool.cli.main", "matrix", *selection_args(group, filt), "--level", str(n)]).stdout)["include"]
    return out


def images_on(host: str) -> list[str]:
    done = run(["docker", "-H", host, "images", "-q"])
    return done.stdout.split()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--group", default="smoke")
    ap.add_argument("--filter", default="accelerator=cpu", help="narrow the selection ('' for none; default: no CUDA chain)")
    ap.add_argument("--publish", action="store_true", help="first push missing content-hash tags from the default engine")
    ap.add_argument("--baseline", action="store_true", help="also time the plain docker build loop on the same empty engine")
    ap.add_argument("--baseline-seconds", type=float, default=None, help="a baseline measured before (no rebuild)")
    ap.add_argument("--repeat", type=int, default=3, help="skip-decision runs (the median is reported)")
    ap.add_argument("--port", default=os.environ.get("BUILDTOOL_HANDOFF_REGISTRY_PORT", "5055"))
    ap.add_argument("--state", default=os.environ.get("BUILDTOOL_HANDOFF_REGISTRY_STATE", "/var/lib/buildtool-registry-handoff"))
    args = ap.parse_args()

    reg = registry_env(args.port, args.state)
    base_env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "BUILDTOOL_REGISTRY", "BUILDTOOL_NAMESPACE")}
    base_env.update(reg)
    sel = selection_args(args.group, args.filter)
    nodes = nodes_in_order(args.group, args.filter)

    # the registry must hold every selected node
    in_registry = json.loads(run([PY, "-m", "buildtool", "ci", "missing", *sel], env=base_env).stdout)["missing"]
    if in_registry:
        if not args.publish:
            sys.exit(f"the registry lacks {in_registry} of the {len(nodes)} selected nodes; run with --publish (pushes them from the default engine)")
        t0 = time.monotonic()
        run([PY, "-m", "buildtool", "ci", "push", *(e["tag"] for e in nodes)], env=base_env)
        print(f"published in {time.monotonic() - t0:.0f} s", file=sys.stderr)

    # a fresh runner: engine B, wiped
    run(["bash", "scripts/second-engine.sh", "wipe"])
    run(["bash", "scripts/second-engine.sh", "start"])
    env_b = dict(base_env, DOCKER_HOST=ENGINE_B)
    try:
        assert images_on(ENGINE_B) == [], "engine B is not empty"
        times, decision = [], {}
        for _ in range(max(1, args.repeat)):
            t0 = time.monotonic()
            done = run([PY, "-m", "buildtool", "ci", "build", *sel, "--logs", "/tmp/bench-fresh-runner-logs"], env=env_b)
            times.append(time.monotonic() - t0)
            line = next(x for x in done.stdout.splitlines() if x.startswith("registry-plan: "))
            decision = json.loads(line[len("registry-plan: "):])
            assert decision["to_build"] == [] and decision["pulled"] == {}, decision
            assert "nothing to build" in done.stdout
        assert images_on(ENGINE_B) == [], "the skip pulled something"
        skip = sorted(times)[len(times) // 2]

        baseline = args.baseline_seconds
        per_node: dict[str, float] = {}
        if args.baseline:
            baseline, per_node = plain_loop(nodes, env_b)
        result = {
            "selection": {"group": args.group, "filter": args.filter or None, "nodes": len(nodes)},
            "registry": reg["BUILDTOOL_REGISTRY"],
            "engine": ENGINE_B,
            "skip_seconds": round(skip, 3),
            "skip_runs": [round(t, 3) for t in times],
            "skip_target_seconds": 5.0,
            "registry_requests": decision.get("requests"),
            "decision_seconds_in_process": decision.get("seconds"),
            "pulled": 0,
            "built": 0,
            "baseline_plain_docker_build_seconds": round(baseline, 1) if baseline else None,
            "baseline_per_node_seconds": {k: round(v, 1) for k, v in per_node.items()} or None,
            "ratio": round(baseline / skip, 1) if baseline else None,
        }
    finally:
        run(["bash", "scripts/second-engine.sh", "wipe"], check=False)
    out = ROOT / "logs" / "bench-fresh-runner.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0 if result["skip_seconds"] < 5.0 else 1


def plain_loop(nodes: list[dict], env_b: dict[str, str]) -> tuple[float, dict[str, float]]:
    """`DOCKER_BUILDKIT=1 docker build -t <tag>` per node, parents first, on engine B (bases loaded first, untimed)."""
    bases = sorted({e["parent_tag"] for e in nodes if "/base-" in e["parent_tag"]})
    env_a = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    for ref in bases:
        save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE, env=env_a)
        subprocess.run(["docker", "-H", ENGINE_B, "load", "-q"], stdin=save.stdout, check=True, capture_output=True)
        save.wait()
    ca = "/etc/ssl/certs/ca-certificates.crt"
    per: dict[str, float] = {}
    t0 = time.monotonic()
    for e in nodes:
        t1 = time.monotonic()
        argv = ["/usr/bin/docker", "build", "--progress=plain", "--network", "host", "-t", e["tag"]]
        if os.path.exists(ca):
            argv += ["--secret", f"id=ca-bundle,src={ca}"]
        run(argv + [e["context"]], env=dict(env_b, DOCKER_BUILDKIT="1"))
        per[e["node"]] = time.monotonic() - t1
    return time.monotonic() - t0, per


if __name__ == "__main__":
    sys.exit(main())
