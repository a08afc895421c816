"""Which node builds when: a pure DAG scheduler with a thread driver. No engine, no files.

`Schedule` is the state machine (deterministic, no threads): nodes whose tag is
present are "cached" up front; a node is ready once its parent is built or
cached (or is outside the set, e.g. a base made by `buildtool bases`); a failed
node marks its whole subtree "skipped". `execute()` drives a Schedule with a
`runner(node_id) -> RunResult` on up to `jobs` threads and reports every state
change to `on_event`. Interrupts (KeyboardInterrupt in the calling thread) stop
launching, call `on_interrupt` (which kills running work), wait for the running
nodes to return, and mark the rest "pending".
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

BUILT, CACHED, FAILED, SKIPPED, INTERRUPTED, PENDING, RUNNING = "built", "cached", "failed", "skipped", "interrupted", "pending", "running"
FINAL = (BUILT, CACHED, FAILED, SKIPPED, INTERRUPTED)
OK = (BUILT, CACHED)


@dataclass
class RunResult:
    """What a runner reports for one node."""

    ok: bool
    detail: str = ""  # e.g. "see logs/…/x.log" or the failure cause
    attempts: int = 1
    interrupted: bool = False  # the run was stopped by an interrupt (not a build failure)


@dataclass
class Outcome:
    node: str
    status: str = PENDING
    seconds: float = 0.0
    detail: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class Event:
    kind: str  # cached | start | built | failed | skipped | interrupted
    node: str
    index: int  # 1-based position among the nodes of the run (start order)
    total: int
    seconds: float = 0.0
    detail: str = ""


class Schedule:
    """The build state of a set of nodes over a parent relation. Pure and single-threaded."""

    def __init__(self, order: Iterable[str], parents: Mapping[str, str | None], present: Iterable[str] = (), force: bool = False) -> None:
        self.order = list(order)  # topological (parents first); ties keep this order
        index = set(self.order)
        if len(index) != len(self.order):
            raise ValueError("duplicate node ids")
        # A parent outside the set (a base, or an ancestor that is not needed) counts as available.
        self.parent = {n: (parents.get(n) if parents.get(n) in index else None) for n in self.order}
        position = {n: i for i, n in enumerate(self.order)}
        for n, p in self.parent.items():
            if p is not None and position[p] > position[n]:
                raise ValueError(f"{n} comes before its parent {p}: order must be topological")
        self.children: dict[str, list[str]] = {n: [] for n in self.order}
        for n, p in self.parent.items():
            if p is not None:
                self.children[p].append(n)
        self.outcomes = {n: Outcome(n) for n in self.order}
        present = set(present)
        self.initially_cached = [] if force else [n for n in self.order if n in present]
        for n in self.initially_cached:
            self.outcomes[n].status = CACHED
            self.outcomes[n].detail = "tag present"

    # --- queries -----------------------------------------------------------------------------

    def status(self, node: str) -> str:
        return self.outcomes[node].status

    def ready(self) -> list[str]:
        """Pending nodes whose parent is available, in topological order."""
        return [n for n in self.order if self.outcomes[n].status == PENDING
                and (self.parent[n] is None or self.outcomes[self.parent[n]].status in OK)]  # type: ignore[index]

    def running(self) -> list[str]:
        return [n for n in self.order if self.outcomes[n].status == RUNNING]

    def finished(self) -> bool:
        return not self.running() and not self.ready()

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in (PENDING, RUNNING, *FINAL)}
        for o in self.outcomes.values():
            out[o.status] += 1
        return out

    def ok(self) -> bool:
        return all(o.status in OK for o in self.outcomes.values())

    def descendants(self, node: str) -> list[str]:
        out, stack = [], list(self.children[node])
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(self.children[n])
        return [n for n in self.order if n in set(out)]

    # --- transitions -------------------------------------------------------------------------

    def start(self, node: str) -> None:
        o = self.outcomes[node]
        if o.status != PENDING or node not in self.ready():
            raise ValueError(f"{node} is not ready (status {o.status})")
        o.status = RUNNING

    def finish(self, node: str, result: RunResult, seconds: float) -> list[str]:
        """Record a runner's result; returns the nodes newly marked skipped."""
        o = self.outcomes[node]
        if o.status != RUNNING:
            raise ValueError(f"{node} is not running (status {o.status})")
        o.seconds, o.detail, o.attempts = seconds, result.detail, result.attempts
        if result.ok:
            o.status = BUILT
            return []
        if result.interrupted:
            o.status = INTERRUPTED
            return []
        o.status = FAILED
        skipped = []
        for d in self.descendants(node):
            od = self.outcomes[d]
            if od.status == PENDING:
                od.status = SKIPPED
                od.detail = f"parent failed ({node})" if self.parent[d] == node else f"ancestor failed ({node})"
                skipped.append(d)
        return skipped


def execute(
    schedule: Schedule,
    runner: Callable[[str], RunResult],
    jobs: int = 1,
    on_event: Callable[[Event], None] | None = None,
    on_interrupt: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[dict[str, Outcome], bool]:
    """Run every ready node with `runner`, up to `jobs` at once, until nothing is left.

    Returns (outcomes in topological order, interrupted). Runner exceptions count as
    failures. On KeyboardInterrupt: no new launches, `on_interrupt()` is called, running
    nodes are awaited (they finish as whatever their runner reports; a failure while
    stopping is "interrupted"), and never-started nodes stay "pending".
    """
    if jobs < 1:
        raise ValueError("jobs must be >= 1")
    emit = on_event or (lambda _e: None)
    total = len(schedule.order)
    counter = 0
    for n in schedule.initially_cached:
        counter += 1
        emit(Event(CACHED, n, counter, total, detail=schedule.outcomes[n].detail))

    done: queue.Queue[tuple[str, RunResult, float]] = queue.Queue()
    started_at: dict[str, int] = {}  # node -> its [i/N] index
    stopping = threading.Event()

    def work(node: str) -> None:
        t0 = clock()
        try:
            result = runner(node)
        except Exception as exc:  # a runner bug must not hang the run
            result = RunResult(False, f"runner error: {type(exc).__name__}: {exc}")
        if not result.ok and stopping.is_set():
            result.interrupted = True
        done.put((node, result, clock() - t0))

    def launch() -> None:
        nonlocal counter
        for node in schedule.ready():
            if len(schedule.running()) >= jobs:
                return
            schedule.start(node)
            counter += 1
            started_at[node] = counter
            threading.Thread(target=work, args=(node,), name=f"build-{node}", daemon=True).start()
            emit(Event("start", node, counter, total))

    def collect(block: bool) -> None:
        try:
            node, result, seconds = done.get(timeout=0.2) if block else done.get_nowait()
        except queue.Empty:
            return
        skipped = schedule.finish(node, result, seconds)
        o = schedule.outcomes[node]
        emit(Event(o.status, node, started_at[node], total, seconds, o.detail))
        for s in skipped:
            emit(Event(SKIPPED, s, 0, total, detail=schedule.outcomes[s].detail))

    interrupted = False
    try:
        launch()
        while schedule.running() or schedule.ready():
            collect(block=True)
            launch()
    except KeyboardInterrupt:
        interrupted = True
        stopping.set()
        if on_interrupt is not None:
            on_interrupt()
        while schedule.running():
            try:
                collect(block=True)
            except KeyboardInterrupt:  # a second Ctrl-C: stop waiting politely, kill again
                if on_interrupt is not None:
                    on_interrupt()
    return dict(schedule.outcomes), interrupted


@dataclass
class Progress:
    """Counts for a status line, fed by events."""

    total: int
    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in (RUNNING, *FINAL)})

    def update(self, e: Event) -> None:
        if e.kind == "start":
            self.counts[RUNNING] += 1
            return
        if e.kind in (BUILT, FAILED, INTERRUPTED):
            self.counts[RUNNING] -= 1
        self.counts[e.kind] += 1
