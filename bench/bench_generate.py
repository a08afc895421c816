"""Plan + render benchmark over synthetic matrices of 100, 1,000 and 10,000 variants.

    python bench/bench_generate.py [--sizes 100,1000,10000] [--repeat 3] [--json] [--no-shipped]
                                   [--profile N] [--verify-identical DIR]

For each size it writes a synthetic images.yaml and a matching images.lock into a
temporary directory (nothing of the repository's own images.yaml/images.lock is
used), then times, best of --repeat runs, each stage of `buildtool generate`:

    load_config   parse + validate images.yaml            (reported apart)
    load_lock     parse + validate images.lock            (reported apart)
    expand        axes product - excludes, rules, names
    dag           build_dag: the layer trie
    render        render_dag: Dockerfiles, contexts, hashes
    outputs       groups, plan.json, bake file, CI matrices, docs table
    plan+render   generate() end to end (expand .. outputs), timed as one call

and prints seconds per stage, microseconds per variant and the growth of the
per-variant cost against the smallest size (1.00 everywhere = linear).
Targets: 10,000 variants planned and rendered in under 5 s; on the shipped matrix (the repository's
images.yaml and images.lock) `buildtool generate` and `buildtool check` under 0.5 s each, whole
process (hyperfine when installed, else the median of 10 runs). It also prints, for each optimisation
the pipeline keeps (see without()), generate() with and without it at the shipped matrix's scale and
at the largest size.

The synthetic matrix: B Debian bases (copies of a bookworm entry with distinct
keys), P Python providers (system-python venvs and conda installs), none + M
Open MPI builds, cpu + A CUDA wheel stacks, none + C onnxruntime CPU builds and
G onnxruntime-gpu builds, with the real family's exclude (no MPI in ONNX Runtime
images) and compatibility rules (CPU ONNX Runtime only on CPU images, the GPU
package needs a CUDA of its major).  The shape is chosen so that exactly N
combinations survive:  N = B * P * ((1+M)(1+A) + C + A*G).

--verify-identical DIR writes the generated tree of every size under DIR/<N>/
when DIR does not exist yet, and otherwise compares the freshly generated trees
with it byte for byte (exit 1 on any difference): run it once before changing
the pipeline and again after.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import json
import math
import os
import pstats
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from buildtool.components import flavor  # noqa: E402
from buildtool.config.loader import load_config  # noqa: E402
from buildtool.config.model import Config  # noqa: E402
from buildtool.lock.format import BaseApt, DebPin, Lock, PipPin, PipSet, bind_bases, dump_lock, install_key, load_lock  # noqa: E402
from buildtool.plan import rules  # noqa: E402
from buildtool.plan.apt_layers import apt_names, base_chains  # noqa: E402
from buildtool.plan.dag import build_dag  # noqa: E402
from buildtool.plan.expand import expand  # noqa: E402
from buildtool.render.generate import assemble, generate  # noqa: E402
from buildtool.render.pins import node_pip_set_id, pip_request
from buildtool.render.render import render_dag  # noqa: E402

TARGET_VARIANTS = 10_000
TARGET_SECONDS = 5.0
DEFAULT_SIZES = (100, 1_000, 10_000)
SHA = "0" * 63 + "1"


# --------------------------------------------------------------------------- shape


@dataclass(frozen=True)
class Shape:
    bases: int  # B
    pythons: int  # P (system-python and conda alternating)
    mpis: int  # M Open MPI builds besides `none`
    cudas: int  # A CUDA wheel stacks besides `cpu`
    ort_cpu: int  # C onnxruntime (CPU) builds
    ort_gpu: int  # G onnxruntime-gpu builds

    @property
    def per_pair(self) -> int:
        """Variants per (base, python): every MPI x accelerator without ORT, ORT-CPU on cpu, ORT-GPU on CUDA."""
        return (1 + self.mpis) * (1 + self.cudas) + self.ort_cpu + self.cudas * self.ort_gpu

    @property
    def variants(self) -> int:
        return self.bases * self.pythons * self.per_pair

    @property
    def candidates(self) -> int:
        return self.bases * self.pythons * (1 + self.mpis) * (1 + self.cudas) * (1 + self.ort_cpu + self.ort_gpu)


def shape_for(n: int) -> Shape:
    """A realistic shape with exactly n variants (or the nearest count that has one)."""
    for delta in range(0, n):
        for candidate in (n - delta, n + delta):
            if candidate >= 1:
                shape = _exact_shape(candidate)
                if shape is not None:
                    return shape
    raise ValueError(f"no synthetic shape for {n} variants")


def _exact_shape(n: int) -> Shape | None:
    target_k = min(50.0, max(10.0, n ** 0.42))
    target_p = 2.0 if n < 500 else 4.0
    best: tuple[float, Shape] | None = None
    for m in range(0, 9):
        for a in range(0, 13):
            for c in range(0, 9):
                for g in range(0, 5):
                    k = (1 + m) * (1 + a) + c + a * g
                    if n % k:
                        continue
                    for p in range(1, 7):
                        if (n // k) % p:
                            continue
                        b = n // k // p
                        score = (math.log(k / target_k)) ** 2 + (math.log(p / target_p)) ** 2
                        score += sum(0.5 for x in (m, a, c, g) if x == 0) + 0.02 * (abs(m - a) + abs(c - 2 * g))
                        if best is None or score < best[0]:
                            best = (score, Shape(b, p, m, a, c, g))
    return None if best is None else best[1]


# --------------------------------------------------------------------------- images.yaml


def images_yaml(shape: Shape) -> str:
    """A synthetic matrix in the shape of the real one (Debian bases, real flavors, real rules)."""
    out = [
        "# Synthetic matrix written by bench/bench_generate.py",
        "schema: 1",
        "project: {name: bench-images, description: synthetic benchmark matrix, source: 'https://example.invalid/bench', licenses: MIT}",
        "system: {user: app, uid: 1000, locale: C.UTF-8, workdir: /home/app}",
        "bases:",
    ]
    bases = [f"deb{i:04d}" for i in range(shape.bases)]
    for i, key in enumerate(bases):
        digest = hashlib.sha256(key.encode()).hexdigest()
        out += [
            f"  {key}:",
            "    family: debian",
            '    version: "12"',
            "    codename: bookworm",
            f"    image: debian:bookworm-slim@sha256:{digest}",
            '    python: "3.11.2"',
            f"    tag: debian12-b{i}",
            "    bootstrap: {tool: debootstrap, suite: bookworm, mirror: 'http://deb.debian.org/debian', variant: minbase}",
        ]
    out += ["components:", "  python:"]
    pythons = []
    for i in range(shape.pythons):
        if i % 2 == 0:
            key = f"venv{i}"
            out.append(f'    {key}: {{flavor: system-python, pip: "25.{i}", tag: "venv{i}-py{{version}}"}}')
        else:
            key = f"conda{i}"
            out += [
                f"    {key}:",
                "      flavor: conda",
                f"      installer: {{url: 'https://example.invalid/Miniconda3-{i}.sh', sha256: {hashlib.sha256(key.encode()).hexdigest()}}}",
                f'      conda: "24.{i}.2"',
                f'      python: "3.11.{i}"',
                "      channels: [conda-forge]",
                f'      tag: "conda{{conda}}-py{{version}}-c{i}"',
            ]
        pythons.append(key)
    out += ["  mpi:", '    none: {flavor: none, tag: ""}']
    mpis = ["none"]
    for i in range(shape.mpis):
        key = f"ompi{i}"
        out.append(f'    {key}: {{flavor: openmpi, mpi4py: "4.0.{i}", tag: "openmpi{{version}}-mpi4py{{mpi4py}}"}}')
        mpis.append(key)
    out += ["  accelerator:", '    cpu: {flavor: none, tag: ""}']
    accels = ["cpu"]
    for i in range(shape.cudas):
        key = f"cu12x{i}"
        cuda, cudnn, nccl = f"12.{i}.90", f"9.{i}.0.1", f"2.{20 + i}.3"
        out += [
            f"    {key}:",
            "      flavor: cuda-wheels",
            f'      cuda: "{cuda}"',
            f'      cudnn: "{cudnn}"',
            f'      nccl: "{nccl}"',
            f'      wheels: {{nvidia-cuda-runtime-cu12: "{cuda}", nvidia-cudnn-cu12: "{cudnn}", nvidia-nccl-cu12: "{nccl}"}}',
            '      tag: "cuda{cuda_mm}-cudnn{cudnn}"',
        ]
        accels.append(key)
    out += ["  onnxruntime:", '    none: {flavor: none, tag: ""}']
    orts = ["none"]
    for i in range(shape.ort_cpu):
        key = f"ortcpu{i}"
        out.append(f'    {key}: {{flavor: ort-cpu, version: "1.2{i}.2", tag: "onnxruntime{{version}}-cpu"}}')
        orts.append(key)
    for i in range(shape.ort_gpu):
        key = f"ortgpu{i}"
        out += [
            f"    {key}:",
            "      flavor: ort-cuda",
            f'      version: "1.24.{i}"',
            '      cuda: "12.8"',
            # Not cuFFT/cuRAND: those must match each synthetic image's CUDA line (render/cuda_pins.py).
            '      extra_wheels: {flatbuffers: "25.2.10"}',
            '      tag: "onnxruntime{version}-cuda"',
        ]
        orts.append(key)
    lst = lambda items: "[" + ", ".join(items) + "]"  # noqa: E731
    out += [
        "matrix:",
        "  axes:",
        f"    os: {lst(bases)}",
        f"    python: {lst(pythons)}",
        f"    mpi: {lst(mpis)}",
        f"    accelerator: {lst(accels)}",
        f"    onnxruntime: {lst(orts)}",
    ]
    if len(mpis) > 1 and len(orts) > 1:
        out += ["  exclude:", f"    - {{mpi: {lst(mpis[1:])}, onnxruntime: {lst(orts[1:])}}}  # ONNX Runtime images carry no MPI"]
    out += [
        "  rules:",
        "    - id: python-min",
        "      reason: images must carry Python 3.8 or newer",
        '      require: {python.version: {version: ">=3.8"}}',
        "    - id: onnxruntime-python",
        "      reason: ONNX Runtime 1.23+ publishes wheels for CPython 3.10 and newer only",
        "      when: {onnxruntime.flavor: {not: none}}",
        '      require: {python.version: {version: ">=3.10"}}',
        "    - id: onnxruntime-gpu-cuda-major",
        "      reason: onnxruntime-gpu is built for one CUDA major",
        "      when: {onnxruntime.flavor: [ort-cuda, ort-tensorrt]}",
        "      require: {accelerator.cuda: {same: onnxruntime.cuda, parts: 1}}",
        "    - id: onnxruntime-cpu-packages-on-cpu",
        "      reason: onnxruntime conflicts with onnxruntime-gpu in one environment",
        "      when: {onnxruntime.flavor: [ort-cpu, ort-openvino]}",
        "      require: {accelerator.flavor: none}",
        "    - id: cudnn9-needs-cuda-11.8",
        "      reason: cuDNN 9 supports CUDA 11.8 and 12.x only",
        '      when: {accelerator.cudnn_major: "9"}',
        '      require: {accelerator.cuda: {version: ">=11.8"}}',
        "tags:",
        '  image: "{mpi.tag}-{accelerator.tag}-{onnxruntime.tag}-{python.tag}-{os.tag}"',
        "default_group: smoke",
        "groups:",
        "  smoke:",
        "    description: one image per base",
        f"    select: [{{python: {pythons[0]}, mpi: {mpis[-1]}, accelerator: cpu, onnxruntime: none}}]",
        "  release:",
        "    select: [{}]",
        "    except: [smoke]",
        "checks:",
        "  - name: bash-is-default-shell",
        '    command: "getent passwd app | cut -d: -f7"',
        '    stdout: "^/bin/bash$"',
    ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- images.lock

APT_VERSIONS = {
    "ca-certificates": "20230311",
    "fuse3": "3.14.0-4",
    "libfuse3-3": "3.14.0-4",
    "libfuse2": "2.9.9-6+b1",
    "python3": "3.11.2-1+b1",
    "python3-venv": "3.11.2-1+b1",
    "openmpi-bin": "4.1.4-3+b1",
    "libopenmpi-dev": "4.1.4-3+b1",
    "mpich": "4.0.2-3",
    "libmpich-dev": "4.0.2-3",
    "curl": "7.88.1-10+deb12u12",
}


def synthetic_deb(name: str, version: str, archive: str = "debian") -> DebPin:
    """A locked .deb with a real-looking pool path and a fake sha256 (the bench never fetches it)."""
    filename = f"pool/main/{name[0]}/{name}/{name}_{version.split(':')[-1]}_amd64.deb"
    return DebPin(name, version, "amd64", archive, filename, hashlib.sha256(filename.encode()).hexdigest(), 1000)


def synthetic_base_apt(base) -> BaseApt:
    """A base's apt lock with no closures yet: archives, a one-line manifest, no packages."""
    return BaseApt(archives={"debian": "http://deb.debian.org/debian"}, components=("main",), indexes=(),
                   resolved_at="20261201T000000Z", manifest=(f"base-files {base.version} amd64",), packages={}, installs={})


def synthetic_lock(config: Config) -> Lock:
    """A complete lock for `config`: an apt lock for every base, one pip set per pip-bearing node (fake hashes).

    The apt closure of every layer chain is exactly the names the chain asks for (no dependencies),
    read from the DAG the way the resolver numbers them (base_chains, install_key). Pip sets are made by
    walking the DAG exactly as render does (pip_request), so their ids,
    requires and constraints always match what generate asks for.
    """
    lock = Lock(path="images.lock")
    for key, base in config.bases.items():
        entry = synthetic_base_apt(base)
        packages = {name: synthetic_deb(name, APT_VERSIONS.get(name, "1.0-1")) for name in apt_names(config, base)}
        lock.bases[key] = replace(entry, packages=packages)
    config = bind_bases(config, lock)  # as generate does: the manifest is part of every base's tag
    dag = build_dag(config, expand(config, lock).variants)
    for key, entry in list(lock.bases.items()):
        installs: dict[str, tuple[str, ...]] = {}
        for chain in base_chains(dag, key):
            for i in range(1, len(chain) + 1):
                installs[install_key(chain[:i])] = tuple(sorted({n for names in chain[:i] for n in names}))
        lock.bases[key] = replace(entry, installs=installs)  # the versions stay: lock.apt is unchanged
    for node in dag.nodes.values():  # topological order: ancestors' sets exist before a node's constraints are read
        if node.component is None:
            continue
        requires = tuple(flavor(node.component.flavor).pip_requirements(node.component, node.facts))
        if not requires:
            continue
        pins = [PipPin(r.split("==")[0], r.split("==")[1], hashlib.sha256(r.encode()).hexdigest()) for r in requires]
        pins.append(PipPin(f"dep-of-{pins[0].name}", "1.0", hashlib.sha256(pins[0].name.encode()).hexdigest()))
        request = pip_request(dag, node, lock)
        lock.pip[node_pip_set_id(dag, node)] = PipSet(request.python, request.requires, request.constraints, tuple(pins), (node.id,))
    return lock


@dataclass
class Inputs:
    size: int
    shape: Shape
    config_path: Path
    lock_path: Path


def write_inputs(size: int, directory: Path) -> Inputs:
    shape = shape_for(size)
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "images.yaml"
    config_path.write_text(images_yaml(shape), encoding="utf-8")
    lock_path = directory / "images.lock"
    lock_path.write_text(dump_lock(synthetic_lock(load_config(config_path, None, {}))), encoding="utf-8")
    return Inputs(size, shape, config_path, lock_path)


# --------------------------------------------------------------------------- timing


STAGES = ("load_config", "load_lock", "expand", "dag", "render", "outputs", "plan+render")


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def measure(inputs: Inputs, repeat: int) -> dict:
    """Best of `repeat` runs per stage. Loading is timed on the first run only: parsing a 10,000-variant
    lock takes far longer than the pipeline and is not what the target is about."""
    best = dict.fromkeys(STAGES, math.inf)
    variants = nodes = 0
    gc.collect()
    best["load_config"], config = _timed(load_config, inputs.config_path, None, {})
    best["load_lock"], lock = _timed(load_lock, inputs.lock_path)
    for _ in range(repeat):
        # Stage by stage: the calls generate() makes ...
        gc.collect()
        t, expansion = _timed(expand, config, lock)
        best["expand"] = min(best["expand"], t)
        t, dag = _timed(build_dag, config, expansion.variants)
        best["dag"] = min(best["dag"], t)
        t, rendered = _timed(render_dag, config, lock, dag)
        best["render"] = min(best["render"], t)
        t, generated = _timed(assemble, config, expansion, dag, rendered)
        best["outputs"] = min(best["outputs"], t)
        variants, nodes = len(generated.expansion.variants), len(generated.dag.nodes)
        del expansion, dag, rendered, generated
        # ... and end to end, which is the figure the target is about.
        gc.collect()
        cpu = time.process_time()
        t, generated = _timed(generate, config, lock)
        best["cpu"] = min(best.get("cpu", math.inf), time.process_time() - cpu)
        best["plan+render"] = min(best["plan+render"], t)
        assert len(generated.expansion.variants) == variants
        del generated
    total = best["plan+render"]
    return {
        "size": inputs.size,
        "variants": variants,
        "candidates": inputs.shape.candidates,
        "nodes": nodes,
        "shape": asdict(inputs.shape),
        "seconds": best,
        "us_per_variant": total / variants * 1e6,
    }


def cold_start(inputs: Inputs) -> dict:
    """The first generate() of a process pays for loading and compiling the templates; a CLI run pays it once."""
    config, lock = load_config(inputs.config_path, None, {}), load_lock(inputs.lock_path)
    t, generated = _timed(generate, config, lock)
    warm, _ = _timed(generate, config, lock)
    return {"variants": len(generated.expansion.variants), "seconds": t, "warm_seconds": warm}


def print_table(results: list[dict], out=sys.stdout) -> None:
    base = results[0]["us_per_variant"]
    cols = ["variants", "cands", "nodes", *STAGES, "(cpu)", "us/variant", "growth"]
    widths = [8, 7, 7, 11, 9, 8, 7, 8, 8, 11, 6, 10, 6]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths)), file=out)
    for r in results:
        s = r["seconds"]
        row = [str(r["variants"]), str(r["candidates"]), str(r["nodes"]), *(f"{s[k]:.3f}" for k in STAGES), f"{s['cpu']:.2f}",
               f"{r['us_per_variant']:.1f}", f"{r['us_per_variant'] / base:.2f}"]
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)), file=out)
    print("(seconds, wall clock; stages best of --repeat, load_* once and apart; plan+render = generate() end to end\n"
          " = expand+dag+render+outputs; (cpu) = its CPU time, steadier when the machine is shared;\n"
          " us/variant = plan+render per variant; growth = us/variant against the smallest size, 1.00 = linear)", file=out)


def target_check(results: list[dict]) -> dict | None:
    """Whether the first size with at least TARGET_VARIANTS variants ran plan+render under TARGET_SECONDS."""
    at = [r for r in results if r["variants"] >= TARGET_VARIANTS]
    if not at:
        return None
    seconds = at[0]["seconds"]["plan+render"]
    return {"variants": at[0]["variants"], "seconds": seconds, "limit_seconds": TARGET_SECONDS, "met": seconds < TARGET_SECONDS}


def target_text(check: dict) -> str:
    verdict = "MET" if check["met"] else "NOT MET"
    return f"target: {check['variants']} variants planned and rendered in {check['seconds']:.3f} s -> {verdict} (limit {check['limit_seconds']:.1f} s)"


# --------------------------------------------------------------------------- the shipped matrix

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_LIMIT_SECONDS = 0.5  # `buildtool generate` and `buildtool check` on the shipped images.yaml, whole process


def _median_runs(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _hyperfine_median(argv: list[str], runs: int, tmp: Path) -> float:
    out = tmp / "hyperfine.json"
    subprocess.run(["hyperfine", "-N", "--warmup", "2", "--runs", str(runs), "--export-json", str(out), shlex.join(argv)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(out.read_text())["results"][0]["median"]


def shipped_commands(runs: int = 10) -> dict:
    """Whole-process wall time (median) of `buildtool generate` (into a temporary --out/--readme, so the
    checkout is not rewritten) and `buildtool check` (read-only) on the repository's images.yaml and
    images.lock, with hyperfine when installed, else the median of `runs` runs after one warm-up."""
    with tempfile.TemporaryDirectory(prefix="buildtool-bench-shipped-") as tmp_name:
        tmp = Path(tmp_name)
        shutil.copy(ROOT / "README.md", tmp / "README.md")
        py = [sys.executable, "-m", "buildtool"]
        commands = {
            "generate": [*py, "generate", "--config", str(ROOT / "images.yaml"), "--out", str(tmp / "generated"), "--readme", str(tmp / "README.md")],
            "check": [*py, "check", "--config", str(ROOT / "images.yaml")],
        }
        tool = "hyperfine" if shutil.which("hyperfine") else f"median of {runs}"
        out: dict = {"tool": tool, "limit_seconds": SHIPPED_LIMIT_SECONDS,
                     "pythondontwritebytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))}
        for name, argv in commands.items():
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)  # warm-up (writes --out once)
            out[name] = _hyperfine_median(argv, runs, tmp) if tool == "hyperfine" else _median_runs(argv, runs)
    return out


@contextmanager
def without(optimisation: str) -> Iterator[None]:
    """The pipeline without one of the optimisations it keeps (the output is the same):
    in_range = rules._in_range's lru_cache (version ranges parsed once). (expand's memo of facts parts went:
    0.97x at the shipped matrix, 0.83x at 10,000 variants, 2026-12-01.)"""
    if optimisation == "in_range":
        cached = rules._in_range
        rules._in_range = cached.__wrapped__  # type: ignore[assignment]
        try:
            yield
        finally:
            rules._in_range = cached
    else:  # pragma: no cover
        raise ValueError(optimisation)


KEPT = ("in_range",)


def kept_speedups(config: Config, lock: Lock, repeat: int) -> dict:
    """generate() in-process, best of `repeat`, with everything and without each kept optimisation."""
    def best() -> float:
        times = []
        for _ in range(repeat):
            gc.collect()
            t, _ = _timed(generate, config, lock)
            times.append(t)
        return min(times)

    out = {"with": best()}
    for name in KEPT:
        with without(name):
            out[name] = best()
    return out


def shipped_config() -> tuple[Config, Lock]:
    return load_config(ROOT / "images.yaml", None, {}), load_lock(ROOT / "images.lock")


# --------------------------------------------------------------------------- identity check and profile


def tree_of(inputs: Inputs) -> dict[str, tuple[str, int]]:
    return generate(load_config(inputs.config_path, None, {}), load_lock(inputs.lock_path)).tree


def verify_identical(reference: Path, all_inputs: list[Inputs]) -> int:
    """First run: write each size's generated tree under reference/<N>/. Later runs: compare byte for byte."""
    if not reference.exists():
        for inputs in all_inputs:
            root = reference / str(inputs.size)
            for rel, (text, mode) in tree_of(inputs).items():
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(text.encode("utf-8"))
                path.chmod(mode)
        print(f"reference trees written under {reference}")
        return 0
    failures = 0
    for inputs in all_inputs:
        root = reference / str(inputs.size)
        expected = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
        actual = tree_of(inputs)
        missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
        differ = sorted(rel for rel in set(expected) & set(actual)
                        if expected[rel].read_bytes() != actual[rel][0].encode("utf-8") or (expected[rel].stat().st_mode & 0o777) != actual[rel][1])
        status = "identical" if not (missing or extra or differ) else "DIFFERENT"
        print(f"{inputs.size}: {len(actual)} files {status}" + (f": {len(differ)} differ, {len(missing)} missing, {len(extra)} extra" if status != "identical" else ""))
        for rel in (differ + missing + extra)[:10]:
            print(f"    {rel}")
        failures += status != "identical"
    return 1 if failures else 0


def profile(inputs: Inputs, top: int = 30) -> None:
    config, lock = load_config(inputs.config_path, None, {}), load_lock(inputs.lock_path)
    generate(config, lock)  # warm caches the way a real run's first call would not; profile the steady state
    prof = cProfile.Profile()
    prof.enable()
    generate(config, lock)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
    print(buf.getvalue())


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma-separated variant counts (default 100,1000,10000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the best is reported (default 3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--profile", type=int, metavar="N", help="cProfile generate() at the size N and print the top functions")
    parser.add_argument("--verify-identical", type=Path, metavar="DIR", help="write reference trees to DIR, or compare with them when DIR exists")
    parser.add_argument("--no-shipped", action="store_true", help="skip the shipped matrix's figures (whole-process generate/check, kept optimisations)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or args.repeat < 1:
        parser.error("--sizes needs positive integers and --repeat at least 1")
    with tempfile.TemporaryDirectory(prefix="buildtool-bench-") as tmp:
        if args.profile:
            profile(write_inputs(args.profile, Path(tmp) / str(args.profile)))
            return 0
        all_inputs = [write_inputs(n, Path(tmp) / str(n)) for n in sizes]
        if args.verify_identical:
            return verify_identical(args.verify_identical, all_inputs)
        cold = cold_start(all_inputs[0])
        results = [measure(inputs, args.repeat) for inputs in all_inputs]
        largest = all_inputs[-1]
        kept_largest = kept_speedups(load_config(largest.config_path, None, {}), load_lock(largest.lock_path), 1)
    check = target_check(results)
    shipped = kept_shipped = None
    if not args.no_shipped:
        shipped = shipped_commands()
        kept_shipped = kept_speedups(*shipped_config(), repeat=20)
    if args.json:
        print(json.dumps({"results": results, "target": check, "cold_start": cold, "shipped": shipped,
                          "kept": {"shipped": kept_shipped, str(largest.size): kept_largest}}, indent=2))
        return 0
    print_table(results)
    print(f"first generate() in the process (N={cold['variants']}, templates loaded and compiled): {cold['seconds']:.3f} s;"
          f" the same call warm: {cold['warm_seconds']:.3f} s")
    if check:
        print(target_text(check))
    if shipped:
        for name in ("generate", "check"):
            verdict = "MET" if shipped[name] < SHIPPED_LIMIT_SECONDS else "NOT MET"
            print(f"shipped matrix: `buildtool {name}` whole process {shipped[name]:.3f} s ({shipped['tool']}, median) -> {verdict}"
                  f" (limit {SHIPPED_LIMIT_SECONDS} s{'; PYTHONDONTWRITEBYTECODE is set: every run compiles buildtool' if shipped['pythondontwritebytecode'] else ''})")
    for label, kept in (("shipped matrix", kept_shipped), (f"{largest.size} variants", kept_largest)):
        if kept:
            parts = ", ".join(f"without {name}: {kept[name]:.3f} s = {kept[name] / kept['with']:.2f}x" for name in KEPT)
            print(f"kept optimisations at {label}: generate() {kept['with']:.3f} s with all; {parts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
