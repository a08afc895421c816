"""Build benchmark: buildtool's DAG build against a flattened-Dockerfile baseline, on a private engine.

    python bench/bench_build.py [--group smoke] [--filter AXIS=V ...] [--jobs 2]
                                [--pin-node NODE --pin-version V] [--json FILE] [--keep]

Run as root on a build host with Debian's docker.io (dockerd, /usr/bin/docker) installed. Nothing
touches the main engine's build cache or images: the benchmark starts a SECOND Docker Engine with its
own data-root (/var/lib/buildtool-bench-docker), exec-root, pidfile, socket
(unix:///run/buildtool-bench.sock) and its own bridge (btbench0, 172.31.250.1/24; never `--bridge
none`, never docker0), with iptables off (builds use --network host; the size probes run with
--network none). It copies the needed bases from the main engine (`docker save | docker load`),
and stops the engine, removes its data-root and the bridge at the end (also on error / Ctrl-C).
docker0 of the main engine is checked before and after, and restored if it went missing.

Measured, in one run, for the selected images (default: the smoke group):

 1. cold build (bases present, build cache empty):
      buildtool: `python -m buildtool build --group G --jobs N` on the fresh engine;
      baseline:  per leaf, the chain of its nodes flattened into one self-contained Dockerfile
                 (bench/baseline.py: the system node's FROM kept, the other FROMs dropped, the same
                 RUN steps, cache mounts and secrets, context files in per-node sub-folders) built one
                 after another with plain `DOCKER_BUILDKIT=1 /usr/bin/docker build` and the same
                 --network host / --secret flags, after `docker builder prune -af` and removing every
                 built image (bases kept).
      ratio buildtool/baseline (target <= 0.8); executed RUN steps in the logs / unique RUN steps of
      the DAG (target 1.00), for both.
 2. no-op rebuild with everything built: hyperfine (else median of 5) of `buildtool build` vs the
    baseline loop fully cached (target < 1 s and no slower than the baseline).
 3. one pin changed in a leaf component: in a temporary copy of images.yaml + images.lock the
    ort-cpu component's onnxruntime version is changed (images.yaml and every lock set that requires
    it, wheel hashes from PyPI's JSON API), regenerated, and built on the same engine: RUN steps
    executed outside the changed subtree (target 0) and unchanged packages downloaded again (pip
    "Downloading" / apt "Get:" of a package whose version did not change; target 0).
 4. per leaf image: size, bytes of files left in /var/lib/apt/lists, /root/.cache/pip,
    /home/app/.cache/pip, /opt/conda/pkgs (target 0); and the DAG sharing ratio = bytes of distinct
    layers (by chain id, from the engine's layerdb) / sum of the leaf images' sizes (lower is better),
    for buildtool's images and for the baseline's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from hashlib import sha256
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baseline import downloads_in_log, flatten, norm, run_steps, steps_in_log, write_context  # noqa: E402
from buildtool.config.loader import load_config  # noqa: E402
from buildtool.engine.build import needed_nodes, pip_conf_text, resolve_ca_bundle  # noqa: E402
from buildtool.lock.format import PipPin, PipSet, dump_lock, load_lock  # noqa: E402
from buildtool.plan.expand import select  # noqa: E402
from buildtool.render.generate import generate  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CLI = "/usr/bin/docker"
SOCK = "/run/buildtool-bench.sock"
HOST = f"unix://{SOCK}"
DATA_ROOT = Path("/var/lib/buildtool-bench-docker")
EXEC_ROOT = Path("/run/buildtool-bench-exec")
PIDFILE = Path("/run/buildtool-bench.pid")
BRIDGE, BRIDGE_CIDR = "btbench0", "172.31.250.1/24"
CACHE_DIRS = ("/var/lib/apt/lists", "/root/.cache/pip", "/home/app/.cache/pip", "/opt/conda/pkgs")


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(argv: list[str], env: dict | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(argv, env=env, text=True, capture_output=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} -> {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p


def bench_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": HOST, "DOCKER_BUILDKIT": "1"}


def bdocker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh([CLI, *args], env=bench_env(), check=check)


# --------------------------------------------------------------------------- the private engine


def docker0_state() -> str:
    p = subprocess.run(["ip", "-br", "addr", "show", "docker0"], text=True, capture_output=True)
    return p.stdout.strip() if p.returncode == 0 else "MISSING"


def restore_docker0() -> None:
    say("docker0 of the main engine is missing: restoring it (172.17.0.1/16)")
    for cmd in (["ip", "link", "add", "docker0", "type", "bridge"], ["ip", "addr", "add", "172.17.0.1/16", "dev", "docker0"],
                ["ip", "link", "set", "docker0", "up"]):
        subprocess.run(cmd, capture_output=True)


class Engine:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.made_bridge = False
        self.log = Path(tempfile.gettempdir()) / "buildtool-bench-dockerd.log"

    def start(self) -> None:
        if Path(SOCK).exists():
            p = subprocess.run([CLI, "-H", HOST, "version"], capture_output=True)
            if p.returncode == 0:
                raise RuntimeError(f"an engine already answers at {HOST}: another benchmark running? stop it first")
            Path(SOCK).unlink()
        if DATA_ROOT.exists():
            shutil.rmtree(DATA_ROOT)
        if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0:
            sh(["ip", "link", "add", BRIDGE, "type", "bridge"])
            sh(["ip", "addr", "add", BRIDGE_CIDR, "dev", BRIDGE])
            self.made_bridge = True
        sh(["ip", "link", "set", BRIDGE, "up"])
        argv = ["dockerd", "--data-root", str(DATA_ROOT), "--exec-root", str(EXEC_ROOT), "--pidfile", str(PIDFILE),
                "-H", HOST, "--bridge", BRIDGE, "--iptables=false", "--ip-masq=false"]
        say("starting the benchmark engine: " + " ".join(argv))
        self.proc = subprocess.Popen(argv, stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(120):
            if subprocess.run([CLI, "-H", HOST, "version"], capture_output=True).returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"benchmark dockerd exited {self.proc.returncode}; see {self.log}")
            time.sleep(0.5)
        raise RuntimeError(f"benchmark dockerd did not answer in 60 s; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            say("stopping the benchmark engine")
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        subprocess.run(["umount", "-R", str(EXEC_ROOT)], capture_output=True)
        for p in (DATA_ROOT, EXEC_ROOT):
            if p.exists():
                subprocess.run(["find", str(p), "-type", "d", "-name", "merged", "-exec", "umount", "{}", ";"], capture_output=True)
                shutil.rmtree(p, ignore_errors=True)
        if self.made_bridge:
            subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


def load_bases(refs: list[str]) -> None:
    for ref in refs:
        say(f"copying base {ref} into the benchmark engine")
        save = subprocess.Popen([CLI, "save", ref], stdout=subprocess.PIPE, env={**os.environ, "DOCKER_HOST": "unix:///var/run/docker.sock"})
        load = subprocess.run([CLI, "load"], stdin=save.stdout, env=bench_env(), capture_output=True, text=True)
        save.stdout.close()
        if save.wait() != 0 or load.returncode != 0:
            raise RuntimeError(f"cannot copy base {ref}: {load.stderr.strip()} (is it on the main engine? `buildtool bases`)")


def build_cache_bytes() -> int:
    out = bdocker("system", "df", "--format", "{{.Type}}\t{{.Size}}").stdout
    for line in out.splitlines():
        if line.startswith("Build Cache"):
            return _human_bytes(line.split("\t")[1])
    return 0


def _human_bytes(text: str) -> int:
    m = re.match(r"([\d.]+)\s*([kKMGT]?)B", text.strip())
    if not m:
        return 0
    return int(float(m.group(1)) * {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[m.group(2)])


def reset(keep: set[str]) -> None:
    """Empty the build cache and remove every image but the bases."""
    bdocker("builder", "prune", "-af")
    ids = bdocker("images", "-aq", "--no-trunc").stdout.split()
    keep_ids = {bdocker("image", "inspect", "-f", "{{.Id}}", k).stdout.strip() for k in keep}
    drop = sorted(set(ids) - keep_ids)
    if drop:
        bdocker("rmi", "-f", *drop, check=False)
    bdocker("builder", "prune", "-af")


# --------------------------------------------------------------------------- measurements


def layer_sizes(refs: list[str]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """{chain id: bytes} over the images and {ref: [chain ids]} from RootFS.Layers + the engine's layerdb."""
    sizes: dict[str, int] = {}
    chains: dict[str, list[str]] = {}
    for ref in refs:
        diff_ids = json.loads(bdocker("image", "inspect", "-f", "{{json .RootFS.Layers}}", ref).stdout)
        chain: list[str] = []
        prev = None
        for d in diff_ids:
            cid = d if prev is None else "sha256:" + sha256(f"{prev} {d}".encode()).hexdigest()
            prev = cid
            chain.append(cid)
            if cid not in sizes:
                f = DATA_ROOT / "image" / "overlay2" / "layerdb" / "sha256" / cid.split(":", 1)[1] / "size"
                sizes[cid] = int(f.read_text()) if f.exists() else 0
        chains[ref] = chain
    return sizes, chains


PROBE = ("import os,sys,json\nout={}\nfor d in sys.argv[1:]:\n    t=0\n    for r,ds,fs in os.walk(d):\n        for f in fs:\n"
         "            try: t+=os.lstat(os.path.join(r,f)).st_size\n            except OSError: pass\n    out[d]=t if os.path.isdir(d) else None\n"
         "print(json.dumps(out))\n")


def cache_bytes(ref: str) -> dict[str, int | None]:
    p = bdocker("run", "--rm", "--network", "none", "-u", "0", "--entrypoint", "python3", ref, "-c", PROBE, *CACHE_DIRS, check=False)
    if p.returncode != 0:  # no python3 on PATH: fall back to du (counts directory entries too)
        q = bdocker("run", "--rm", "--network", "none", "-u", "0", "--entrypoint", "sh", ref, "-c",
                    "for d in " + " ".join(CACHE_DIRS) + "; do if [ -d $d ]; then echo \"$d $(find $d -type f -printf '%s\\n' | "
                    "awk '{s+=$1} END {print s+0}')\"; fi; done")
        got = dict(line.split() for line in q.stdout.splitlines())
        return {d: int(got[d]) if d in got else None for d in CACHE_DIRS}
    return json.loads(p.stdout.strip().splitlines()[-1])


def image_size(ref: str) -> int:
    return int(bdocker("image", "inspect", "-f", "{{.Size}}", ref).stdout.strip())


def timed(argv: list[str], log: Path, cwd: Path = REPO) -> tuple[float, int]:
    t0 = time.monotonic()
    with log.open("a") as fh:
        rc = subprocess.run(argv, cwd=cwd, env=bench_env(), stdout=fh, stderr=subprocess.STDOUT).returncode
    return time.monotonic() - t0, rc


def noop_time(command: str, work: Path, name: str) -> dict:
    """hyperfine --warmup 1 --runs 5 when installed; else the median of 5 runs after one warm-up."""
    if shutil.which("hyperfine"):
        out = work / f"hyperfine-{name}.json"
        p = subprocess.run(["hyperfine", "--warmup", "1", "--runs", "5", "--export-json", str(out), command],
                           cwd=REPO, env=bench_env(), capture_output=True, text=True)
        if p.returncode == 0:
            r = json.loads(out.read_text())["results"][0]
            return {"tool": "hyperfine", "mean": r["mean"], "median": r["median"], "min": r["min"], "max": r["max"],
                    "stddev": r["stddev"]}
        say(f"hyperfine failed ({p.stderr.strip()[-300:]}); timing by hand")
    times = []
    for i in range(6):
        t0 = time.monotonic()
        rc = subprocess.run(["bash", "-c", command], cwd=REPO, env=bench_env(), capture_output=True).returncode
        if rc:
            raise RuntimeError(f"no-op command failed ({rc}): {command}")
        if i:
            times.append(time.monotonic() - t0)
    return {"tool": "median of 5", "mean": statistics.mean(times), "median": statistics.median(times), "min": min(times),
            "max": max(times), "stddev": statistics.pstdev(times)}


# --------------------------------------------------------------------------- the pin change


def pypi_wheel_sha256(project: str, version: str, python: str) -> str:
    tag = "cp" + python.replace(".", "")
    with urllib.request.urlopen(f"https://pypi.org/pypi/{project}/json", timeout=60) as resp:
        data = json.load(resp)
    if version not in data["releases"]:
        raise RuntimeError(f"{project} {version} is not on PyPI")
    for u in data["releases"][version]:
        fn = u["filename"]
        if fn.endswith(".whl") and f"-{tag}-" in fn and "manylinux" in fn and "x86_64" in fn:
            return u["digests"]["sha256"]
    raise RuntimeError(f"no {tag} manylinux x86_64 wheel of {project} {version} on PyPI")


def make_pin_change(copy: Path, component: str, project: str, new_version: str) -> tuple[str, dict[str, str]]:
    """Copy images.yaml/images.lock/README.md, set component's version to new_version and update every lock set that
    requires `project==old`; returns (old version, {set id: python})."""
    for name in ("images.yaml", "images.lock", "README.md"):
        shutil.copy2(REPO / name, copy / name)
    yaml_text = (copy / "images.yaml").read_text()
    m = re.search(rf"(?m)^(\s+{re.escape(component)}:\s*\{{[^}}\n]*version:\s*\"?)([^\",}}\s]+)", yaml_text)
    if not m:
        raise RuntimeError(f"cannot find component {component} with an inline version in images.yaml")
    old = m.group(2)
    (copy / "images.yaml").write_text(yaml_text[:m.start(2)] + new_version + yaml_text[m.end(2):])
    lock = load_lock(copy / "images.lock")
    changed: dict[str, str] = {}
    for sid, s in list(lock.pip.items()):
        if f"{project}=={old}" not in s.requires:
            continue
        digest = pypi_wheel_sha256(project, new_version, s.python)
        pins = tuple(PipPin(p.name, new_version, digest) if norm(p.name) == norm(project) else p for p in s.pins)
        lock.pip[sid] = PipSet(s.python, tuple(f"{project}=={new_version}" if r == f"{project}=={old}" else r for r in s.requires),
                               s.constraints, pins)
        changed[sid] = s.python
    (copy / "images.lock").write_text(dump_lock(lock))
    return old, changed


# --------------------------------------------------------------------------- main


def fmt_s(x: float | None) -> str:
    return "-" if x is None else (f"{x:.3f} s" if x < 10 else f"{x:.1f} s")


def fmt_b(x: int | None) -> str:
    if x is None:
        return "-"
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if x >= div:
            return f"{x / div:.2f} {unit}"
    return f"{x} B"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--group", default="smoke")
    ap.add_argument("--filter", action="append", default=[], metavar="AXIS=V[,V]")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--pin-component", default="ort-cpu", help="component whose version changes in part 3 (default ort-cpu)")
    ap.add_argument("--pin-project", default="onnxruntime", help="its PyPI project (default onnxruntime)")
    ap.add_argument("--pin-version", default="1.23.0", help="the new version (default 1.23.0)")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure as JSON here")
    ap.add_argument("--work", type=Path, default=None, help="folder for logs and contexts (default: a temporary folder, kept)")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="run in this checkout instead of a snapshot copy of it (others editing the tree can break a long run)")
    ap.add_argument("--report-from", type=Path, default=None, help="only print the tables of a JSON written by --json")
    args = ap.parse_args()
    if args.report_from:
        report(json.loads(args.report_from.read_text()))
        return 0

    if os.geteuid() != 0:
        print("bench_build.py starts a second Docker Engine: run it as root", file=sys.stderr)
        return 2
    work = (args.work or Path(tempfile.mkdtemp(prefix="buildtool-bench-build-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not args.no_snapshot:
        # A snapshot of the working tree (tracked + untracked, not ignored files): the run takes long and
        # must see one consistent images.yaml / templates / generated/ / buildtool package throughout.
        snap = work / "src"
        files = sh(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO).stdout.split("\0")
        for f in filter(None, files):
            src, dst = REPO / f, snap / f
            if src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        say(f"work folder: {work}; running from the snapshot {snap}")
        argv = [sys.executable, str(snap / "bench" / "bench_build.py"), *sys.argv[1:], "--no-snapshot", "--work", str(work)]
        os.execv(sys.executable, argv)
    say(f"work folder: {work}")

    config = load_config(REPO / "images.yaml")
    lock = load_lock(REPO / "images.lock")
    g = generate(config, lock)
    chosen = select(config, g.expansion.variants, args.group, tuple(args.filter))
    nodes = needed_nodes(g, chosen)
    leaves = [g.dag.variant_node[v.name] for v in chosen]
    bases = sorted({config.bases[g.dag.nodes[n].base.key].local_ref for n in nodes})
    unique_runs = sum(run_steps(g.rendered[n].dockerfile) for n in nodes)
    sel_args = ["--group", args.group] + [a for f in args.filter for a in ("--filter", f)]
    sel_text = " ".join(sel_args)
    say(f"selection {sel_text}: {len(leaves)} images, {len(nodes)} nodes, {unique_runs} unique RUN steps; bases {', '.join(bases)}")

    ca = resolve_ca_bundle(None, config.site.ca_bundle)
    secret_args: list[str] = []
    if ca:
        secret_args += ["--secret", f"id=ca-bundle,src={ca}"]
    pip_conf = pip_conf_text(config.site.pypi_index)
    if pip_conf:
        pc = work / "pip.conf"
        pc.write_text(pip_conf)
        pc.chmod(0o600)
        secret_args += ["--secret", f"id=pip-conf,src={pc}"]

    res: dict = {"selection": sel_text, "images": len(leaves), "nodes": len(nodes), "unique_run_steps": unique_runs,
                 "jobs": args.jobs, "work": str(work)}
    d0_before = docker0_state()
    res["docker0_before"] = d0_before
    engine = Engine()

    def on_term(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        engine.start()
        if docker0_state() == "MISSING" and d0_before != "MISSING":
            restore_docker0()
        load_bases(bases)
        bt = [sys.executable, "-m", "buildtool", "build", *sel_args]

        # 1a. buildtool cold
        res["cold_cache_bytes_before_buildtool"] = build_cache_bytes()
        logs = work / "buildtool-logs"
        say(f"cold build with buildtool ({len(nodes)} nodes, --jobs {args.jobs}); build cache {res['cold_cache_bytes_before_buildtool']} B")
        secs, rc = timed(bt + ["--jobs", str(args.jobs), "--logs", str(logs)], work / "buildtool-cold.out")
        if rc:
            raise RuntimeError(f"buildtool cold build failed (rc {rc}); see {work / 'buildtool-cold.out'}")
        run_dir = max(logs.iterdir(), key=lambda p: p.stat().st_mtime)
        summary = json.loads((run_dir / "summary.json").read_text())
        executed = sum(steps_in_log((run_dir / f"{n}.log").read_text()).run_executed for n in nodes if (run_dir / f"{n}.log").exists())
        res["buildtool_cold"] = {"seconds": secs, "summary_seconds": summary["seconds"], "counts": summary["counts"],
                                 "docker_builds": summary["docker_builds"], "run_executed": executed, "logs": str(run_dir)}
        say(f"buildtool cold: {secs:.1f} s, {executed}/{unique_runs} RUN steps executed")

        # 2a. buildtool no-op
        bt_cmd = " ".join([sys.executable, "-m", "buildtool", "build", *sel_args, "--logs", str(work / "noop-logs")])
        res["buildtool_noop"] = noop_time(bt_cmd, work, "buildtool")
        say(f"buildtool no-op: median {res['buildtool_noop']['median']:.3f} s")

        # 4a. sizes and caches of buildtool's leaves
        leaf_refs = {leaf: g.rendered[leaf].tag for leaf in leaves}
        res["leaves"] = {}
        for leaf, ref in leaf_refs.items():
            res["leaves"][leaf] = {"image": ref, "size": image_size(ref), "caches": cache_bytes(ref)}
        sizes, chains = layer_sizes(list(leaf_refs.values()))
        total = sum(sum(sizes[c] for c in chains[r]) for r in leaf_refs.values())
        res["sharing_buildtool"] = {"unique_layer_bytes": sum(sizes.values()), "sum_image_bytes": total,
                                    "ratio": sum(sizes.values()) / total if total else None}

        # 3. one pin changed in a leaf component
        res["pin_change"] = pin_change(args, work, sel_args, g, nodes)

        # 1b. baseline cold
        reset(set(bases))
        res["cold_cache_bytes_before_baseline"] = build_cache_bytes()
        left = bdocker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        res["images_before_baseline"] = left
        say(f"cold baseline: {len(leaves)} flattened Dockerfiles one after another; build cache {res['cold_cache_bytes_before_baseline']} B, "
            f"images {left}")
        flats = {leaf: flatten(g, leaf) for leaf in leaves}
        base_logs = work / "baseline-logs"
        base_logs.mkdir(exist_ok=True)
        loop_lines = []
        t0 = time.monotonic()
        for leaf, flat in flats.items():
            ctx = work / "baseline-contexts" / leaf
            write_context(g, flat, ctx)
            argv = [CLI, "build", "--progress=plain", "--network", "host", *secret_args, "-t", f"bench-baseline/{leaf}:flat", str(ctx)]
            loop_lines.append(shlex.join(argv[:1] + ["build", "-q"] + argv[3:]))
            s, rc = timed(argv, base_logs / f"{leaf}.log")
            say(f"baseline {leaf}: {s:.1f} s (rc {rc})")
            if rc:
                raise RuntimeError(f"baseline build of {leaf} failed; see {base_logs / (leaf + '.log')}")
        base_secs = time.monotonic() - t0
        base_exec = sum(steps_in_log((base_logs / f"{leaf}.log").read_text()).run_executed for leaf in leaves)
        res["baseline_cold"] = {"seconds": base_secs, "run_executed": base_exec, "run_steps_written": sum(f.run_steps for f in flats.values()),
                                "logs": str(base_logs)}
        say(f"baseline cold: {base_secs:.1f} s, {base_exec}/{unique_runs} RUN steps executed")

        # 2b. baseline no-op: the same loop, fully cached
        loop = work / "baseline-loop.sh"
        loop.write_text("#!/bin/bash\nset -e\nexport DOCKER_BUILDKIT=1\n" + "\n".join(line + " >/dev/null" for line in loop_lines) + "\n")
        loop.chmod(0o755)
        res["baseline_noop"] = noop_time(str(loop), work, "baseline")

        # 4b. the baseline images' sharing, for comparison
        brefs = [f"bench-baseline/{leaf}:flat" for leaf in leaves]
        bsizes, bchains = layer_sizes(brefs)
        btotal = sum(sum(bsizes[c] for c in bchains[r]) for r in brefs)
        res["sharing_baseline"] = {"unique_layer_bytes": sum(bsizes.values()), "sum_image_bytes": btotal,
                                   "ratio": sum(bsizes.values()) / btotal if btotal else None}
        for leaf in leaves:
            res["leaves"][leaf]["baseline_size"] = image_size(f"bench-baseline/{leaf}:flat")
    finally:
        engine.stop()
        after = docker0_state()
        if after == "MISSING" and d0_before != "MISSING":
            restore_docker0()
            after = docker0_state() + " (restored)"
        res["docker0_after"] = after
        say(f"docker0 before: {d0_before}; after: {after}")

    report(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    return 0


def pin_change(args, work: Path, sel_args: list[str], g, nodes: list[str]) -> dict:
    copy = work / "pin-change"
    copy.mkdir(exist_ok=True)
    try:
        old, sets = make_pin_change(copy, args.pin_component, args.pin_project, args.pin_version)
    except Exception as exc:  # noqa: BLE001 - reported, the rest of the benchmark goes on
        say(f"pin change skipped: {exc}")
        return {"skipped": str(exc)}
    env = bench_env()
    gen = subprocess.run([sys.executable, "-m", "buildtool", "generate", "--config", str(copy / "images.yaml"), "--out",
                          str(copy / "generated"), "--readme", str(copy / "README.md")], cwd=REPO, env=env, capture_output=True, text=True)
    if gen.returncode:
        return {"skipped": f"generate failed in the copy: {gen.stderr.strip()[-500:]}"}
    config2 = load_config(copy / "images.yaml")
    g2 = generate(config2, load_lock(copy / "images.lock"))
    chosen2 = select(config2, g2.expansion.variants, args.group, tuple(args.filter))
    nodes2 = needed_nodes(g2, chosen2)
    changed = [n for n in nodes2 if n not in g.rendered or g.rendered[n].hash != g2.rendered[n].hash]
    if not changed:
        return {"skipped": f"the change of {args.pin_component} touches no selected node"}
    roots = [n for n in changed if g2.dag.nodes[n].parent not in changed]
    subtree = sorted({m for r in roots for m in g2.dag.subtree(r)} & set(nodes2))
    logs = work / "pin-change-logs"
    say(f"pin change: {args.pin_component} {args.pin_project} {old} -> {args.pin_version}; changed nodes {changed}; rebuilding")
    secs, rc = timed([sys.executable, "-m", "buildtool", "build", "--config", str(copy / "images.yaml"), "--out", str(copy / "generated"),
                      *sel_args, "--jobs", str(args.jobs), "--logs", str(logs)], work / "pin-change.out")
    run_dir = max(logs.iterdir(), key=lambda p: p.stat().st_mtime)
    summary = json.loads((run_dir / "summary.json").read_text())
    status = {r["node"]: r["status"] for r in summary["nodes"]}
    outside_exec = 0
    outside_built = []
    for n in nodes2:
        if n in subtree:
            continue
        if status.get(n) != "cached":
            outside_built.append(f"{n}: {status.get(n)}")
        log = run_dir / f"{n}.log"
        if log.exists():
            outside_exec += steps_in_log(log.read_text()).run_executed
    # unchanged packages downloaded again, in the changed nodes' logs
    redownloaded: list[str] = []
    downloaded: list[str] = []
    cached_hits = 0
    for n in subtree:
        log = run_dir / f"{n}.log"
        if not log.exists():
            continue
        old_pins = {norm(p.name): p.version for p in _pins_of(g, n)} if n in g.rendered else {}
        d = downloads_in_log(log.read_text())
        cached_hits += len(d["pip_cached"])
        for name, ver in d["pip"]:
            downloaded.append(f"{name}=={ver}")
            if old_pins.get(name) == ver:  # the same version was pinned before the change
                redownloaded.append(f"pip {name}=={ver}")
        for pkg, ver in d["apt"]:
            downloaded.append(f"{pkg}={ver}")
            redownloaded.append(f"apt {pkg}={ver}")  # apt pins are unchanged by a pip pin change
    return {"component": args.pin_component, "project": args.pin_project, "old": old, "new": args.pin_version,
            "lock_sets_changed": sets, "changed_nodes": changed, "subtree": subtree, "seconds": secs, "rc": rc,
            "counts": summary["counts"], "outside_run_executed": outside_exec, "outside_not_cached": outside_built,
            "downloaded": downloaded, "redownloaded_unchanged": redownloaded, "pip_cache_hits": cached_hits, "logs": str(run_dir)}


def _pins_of(g, node_id: str) -> list[PipPin]:
    """Pins in the node's requirements.txt (its own pip set)."""
    out = []
    for name, text in g.rendered[node_id].files:
        if name == "requirements.txt":
            for line in text.splitlines():
                m = re.match(r"^([A-Za-z0-9_.+-]+)==(\S+)", line)
                if m:
                    out.append(PipPin(m.group(1), m.group(2), ""))
    return out


def report(r: dict) -> None:
    bc, lc = r["buildtool_cold"], r["baseline_cold"]
    bn, ln = r["buildtool_noop"], r["baseline_noop"]
    rows = [("figure", "buildtool", "baseline", "ratio", "target")]
    rows.append(("cold build wall", fmt_s(bc["seconds"]), fmt_s(lc["seconds"]), f"{bc['seconds'] / lc['seconds']:.2f}x", "<= 0.80x"))
    rows.append(("RUN steps executed / unique", f"{bc['run_executed']}/{r['unique_run_steps']} = {bc['run_executed'] / r['unique_run_steps']:.2f}",
                 f"{lc['run_executed']}/{r['unique_run_steps']} = {lc['run_executed'] / r['unique_run_steps']:.2f}", "", "1.00"))
    rows.append((f"no-op rebuild ({bn['tool']}, median)", fmt_s(bn["median"]), fmt_s(ln["median"]), f"{bn['median'] / ln['median']:.2f}x",
                 "< 1 s and <= 1.00x"))
    sb, sl = r["sharing_buildtool"], r["sharing_baseline"]
    rows.append(("unique layer bytes / sum of image sizes", f"{fmt_b(sb['unique_layer_bytes'])} / {fmt_b(sb['sum_image_bytes'])} = {sb['ratio']:.2f}",
                 f"{fmt_b(sl['unique_layer_bytes'])} / {fmt_b(sl['sum_image_bytes'])} = {sl['ratio']:.2f}", "", "lower is better"))
    pc = r["pin_change"]
    if "skipped" in pc:
        rows.append(("one pin changed", "skipped: " + pc["skipped"], "", "", ""))
    else:
        rows.append(("pin change: RUN steps executed outside subtree", str(pc["outside_run_executed"])
                     + (f" (not cached: {', '.join(pc['outside_not_cached'])})" if pc["outside_not_cached"] else ""), "", "", "0"))
        rows.append(("pin change: unchanged packages downloaded again", str(len(pc["redownloaded_unchanged"])), "", "", "0"))
        rows.append(("pin change: rebuild wall", fmt_s(pc["seconds"]), "", "", ""))
    print(f"\nbuildtool build benchmark: {r['selection']} ({r['images']} images, {r['nodes']} nodes, {r['unique_run_steps']} unique RUN steps), "
          f"--jobs {r['jobs']}, private engine {HOST}\n")
    _table(rows)
    if "skipped" not in pc:
        print(f"\npin change: {pc['component']} {pc['project']} {pc['old']} -> {pc['new']} (images.yaml + lock sets "
              f"{', '.join(pc['lock_sets_changed'])}; hashes from PyPI); rebuilt subtree: {', '.join(pc['subtree'])}; "
              f"build counts {pc['counts']}; downloaded: {', '.join(pc['downloaded']) or 'nothing'}; pip cache hits: {pc['pip_cache_hits']}; "
              f"unchanged and downloaded again: {', '.join(pc['redownloaded_unchanged']) or 'none'}")
    print("\nbaseline: the flattened Dockerfiles of leaves that share a prefix begin with the same lines, so plain BuildKit "
          "reuses that prefix from its own cache within the loop; its executed/unique and sharing figures show how much it did.\n")
    rows = [("leaf image", "size", "baseline size", "apt lists", "/root pip", "~app pip", "conda pkgs")]
    for leaf, d in r["leaves"].items():
        c = d["caches"]
        rows.append((leaf, fmt_b(d["size"]), fmt_b(d.get("baseline_size")), *(fmt_b(c.get(k)) if c.get(k) is not None else "absent"
                                                                           for k in CACHE_DIRS)))
    _table(rows)
    print(f"\ncache bytes are files under the folder (target 0; 'absent' = no such folder); build cache before the cold runs: "
          f"buildtool {r['cold_cache_bytes_before_buildtool']} B, baseline {r['cold_cache_bytes_before_baseline']} B; "
          f"docker0 before {r['docker0_before']!r}, after {r['docker0_after']!r}")


def _table(rows: list[tuple]) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    sys.exit(main())
