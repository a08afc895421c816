"""Helpers of bench/bench_build.py: the flattened baseline and the readers of BuildKit logs. Pure (files only).

The baseline of a leaf is the chain of its DAG nodes (system -> ... -> leaf) flattened into one
self-contained Dockerfile: the system node's `FROM <base>` is kept, every later node's FROM (its
parent's content-hash tag) is dropped, every other line is kept as rendered (same RUN steps, same
cache mounts, same secrets). Each node's build-context files go into a sub-folder named after the
node (unique names), and `COPY` sources and `--mount=type=bind,source=` are rewritten to point there.
The sub-folder names are the node ids, so two leaves that share a prefix produce textually identical
prefixes: plain BuildKit may then reuse that prefix from its own cache (the baseline is not made
artificially worse than a careful hand-written set of Dockerfiles).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

# --------------------------------------------------------------------------- Dockerfile parsing


def instructions(dockerfile: str) -> list[str]:
    """Logical instructions (continuations joined with newlines kept), comments and blank lines dropped."""
    out: list[str] = []
    current: list[str] | None = None
    for line in dockerfile.splitlines():
        stripped = line.strip()
        if current is None:
            if not stripped or stripped.startswith("#"):
                continue
            current = [line]
        else:
            if stripped.startswith("#"):  # comment lines inside a continuation are ignored by Docker
                continue
            current.append(line)
        if not line.rstrip().endswith("\\"):
            out.append("\n".join(current))
            current = None
    if current:
        out.append("\n".join(current))
    return out


def run_steps(dockerfile: str) -> int:
    return sum(1 for i in instructions(dockerfile) if i.lstrip().upper().startswith("RUN "))


_MOUNT = re.compile(r"--mount=(\S+)")


def _rewrite_mounts(text: str, folder: str) -> str:
    def fix(m: re.Match[str]) -> str:
        opts = m.group(1).split(",")
        kv = [o.split("=", 1) if "=" in o else [o, ""] for o in opts]
        keys = {k for k, _ in kv}
        if ("type", "bind") not in {(k, v) for k, v in kv} or "from" in keys:
            return m.group(0)
        fixed = [f"{k}={folder}/{v}" if k in ("source", "src") else o for (k, v), o in zip(kv, opts)]
        return "--mount=" + ",".join(fixed)

    return _MOUNT.sub(fix, text)


def _rewrite_copy(line: str, folder: str) -> str:
    """`COPY [--flags] src... dest` -> sources under folder/ (shell form; JSON form refused)."""
    body = line.strip()[len("COPY"):].strip()
    if body.startswith("["):
        raise ValueError(f"JSON-form COPY not supported by the flattener: {line!r}")
    words = shlex.split(body)
    flags = [w for w in words if w.startswith("--")]
    rest = [w for w in words if not w.startswith("--")]
    if any(f.startswith("--from") for f in flags):
        return line
    *srcs, dest = rest
    return "COPY " + " ".join(flags + [f"{folder}/{s}" for s in srcs] + [dest])


@dataclass(frozen=True)
class Flat:
    leaf: str
    nodes: tuple[str, ...]  # the chain, system node first
    dockerfile: str
    run_steps: int


def flatten(g, leaf: str) -> Flat:
    """The flattened Dockerfile of `leaf` (a node id of g.dag); see the module docstring."""
    chain = [n.id for n in g.dag.chain(leaf) if n.stage != "base"]
    parts: list[str] = []
    for i, nid in enumerate(chain):
        r = g.rendered[nid]
        out_lines: list[str] = [f"# ---- node {nid} (flattened by bench/baseline.py)"]
        for ins in instructions(r.dockerfile):
            head = ins.lstrip().split(None, 1)[0].upper()
            if head == "FROM":
                if i == 0:
                    out_lines.append(ins)
                continue  # a child's FROM names its parent's tag: the previous lines are that parent
            if head == "COPY":
                ins = _rewrite_copy(ins, nid)
            if "--mount=" in ins:
                ins = _rewrite_mounts(ins, nid)
            out_lines.append(ins)
        parts.append("\n".join(out_lines))
    text = "\n\n".join(parts) + "\n"
    return Flat(leaf, tuple(chain), text, sum(run_steps(g.rendered[n].dockerfile) for n in chain))


def write_context(g, flat: Flat, ctx: Path) -> None:
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(flat.dockerfile, encoding="utf-8")
    for nid in flat.nodes:
        folder = ctx / nid
        folder.mkdir(exist_ok=True)
        for name, text in g.rendered[nid].files:
            p = folder / name
            p.write_text(text, encoding="utf-8")
            p.chmod(g.rendered[nid].mode(name))


# --------------------------------------------------------------------------- BuildKit plain-progress logs

_STEP = re.compile(r"^#(\d+) \[(?:[^\]]*? )?(\d+)/(\d+)\] (RUN|COPY|ADD|WORKDIR) ?(.*)$")
_DONE = re.compile(r"^#(\d+) DONE\b")
_CACHED = re.compile(r"^#(\d+) CACHED\b")
_ERROR = re.compile(r"^#(\d+) ERROR\b")


@dataclass
class LogSteps:
    run_executed: int = 0
    run_cached: int = 0
    run_failed: int = 0
    executed_text: list[str] | None = None


def log_attempts(text: str) -> list[str]:
    """buildtool writes a `$ DOCKER_BUILDKIT=1 ...` header before each attempt; split on it."""
    chunks = re.split(r"(?m)^\$ DOCKER_BUILDKIT=1 ", text)
    return [c for c in chunks if c.strip()] or [text]


def steps_in_log(text: str) -> LogSteps:
    """Count RUN vertices that executed (`#N DONE`, no `#N CACHED`) vs came from cache, per attempt."""
    res = LogSteps(executed_text=[])
    for chunk in log_attempts(text):
        runs: dict[str, str] = {}
        done: set[str] = set()
        cached: set[str] = set()
        failed: set[str] = set()
        for raw in chunk.splitlines():
            line = raw.rstrip()
            m = _STEP.match(line)
            if m and m.group(4) == "RUN":
                runs.setdefault(m.group(1), m.group(5)[:90])
                continue
            for rx, bucket in ((_DONE, done), (_CACHED, cached), (_ERROR, failed)):
                mm = rx.match(line)
                if mm:
                    bucket.add(mm.group(1))
        for n, cmd in runs.items():
            if n in cached:
                res.run_cached += 1
            elif n in done:
                res.run_executed += 1
                res.executed_text.append(cmd)
            elif n in failed:
                res.run_failed += 1
    return res


_PIP_DOWNLOAD = re.compile(r"\bDownloading (?:https?://\S+/)?([A-Za-z0-9_.+-]+?)-(\d[^-\s]*)(?:-[^\s]*)?\.(?:whl|tar\.gz|zip)\b")
_PIP_CACHED = re.compile(r"\bUsing cached ([A-Za-z0-9_.+-]+?)-(\d[^-\s]*)(?:-[^\s]*)?\.(?:whl|tar\.gz|zip)\b")
_APT_GET = re.compile(r"\bGet:\d+ \S+ \S+ (?:amd64|all|arm64|i386) (\S+) (?:amd64|all|arm64|i386) (\S+) \[")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def downloads_in_log(text: str) -> dict[str, list[tuple[str, str]]]:
    """{'pip': [(name, version)], 'pip_cached': [...], 'apt': [(package, version)]} seen in a build log."""
    out: dict[str, list[tuple[str, str]]] = {"pip": [], "pip_cached": [], "apt": []}
    for line in text.splitlines():
        for m in _PIP_DOWNLOAD.finditer(line):
            out["pip"].append((norm(m.group(1)), m.group(2)))
        for m in _PIP_CACHED.finditer(line):
            out["pip_cached"].append((norm(m.group(1)), m.group(2)))
        for m in _APT_GET.finditer(line):
            out["apt"].append((m.group(1), m.group(2)))
    return out
