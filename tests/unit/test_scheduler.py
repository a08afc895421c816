"""The build scheduler (pure logic): ordering, parallelism bound, failure isolation, skips on present tags."""

from __future__ import annotations

import threading
import time

import pytest

from buildtool.engine.scheduler import BUILT, CACHED, FAILED, INTERRUPTED, PENDING, SKIPPED, RunResult, Schedule, execute

# A small DAG shaped like a real selection (bases are outside the set):
#   sys ─┬─ py ─┬─ py.ompi ── py.ompi.ort
#        │      └─ py.mpich
#        └─ conda ── conda.cpu
#   sys2 ── sys2.py
ORDER = ["sys", "sys2", "py", "conda", "sys2.py", "py.ompi", "py.mpich", "conda.cpu", "py.ompi.ort"]
PARENTS = {"sys": "base-debian12", "sys2": "base-debian11", "py": "sys", "conda": "sys", "sys2.py": "sys2",
           "py.ompi": "py", "py.mpich": "py", "conda.cpu": "conda", "py.ompi.ort": "py.ompi"}


class FakeRunner:
    """Records calls and concurrency; fails the nodes in `fail`; sleeps `delay` per node."""

    def __init__(self, fail=(), delay=0.0, raise_on=()):
        self.fail, self.delay, self.raise_on = set(fail), delay, set(raise_on)
        self.calls: list[str] = []
        self.finished: list[str] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def __call__(self, node: str) -> RunResult:
        with self.lock:
            self.calls.append(node)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.delay)
            if node in self.raise_on:
                raise RuntimeError("boom")
            return RunResult(node not in self.fail, "failed on purpose" if node in self.fail else "")
        finally:
            with self.lock:
                self.active -= 1
                self.finished.append(node)


def statuses(outcomes):
    return {n: o.status for n, o in outcomes.items()}


def test_everything_builds_parents_first():
    runner = FakeRunner(delay=0.01)
    events = []
    outcomes, interrupted = execute(Schedule(ORDER, PARENTS), runner, jobs=3, on_event=events.append)
    assert not interrupted
    assert set(statuses(outcomes).values()) == {BUILT}
    assert sorted(runner.calls) == sorted(ORDER)  # each node built exactly once
    for node, parent in PARENTS.items():
        if parent in ORDER:  # a child starts only after its parent finished
            assert runner.finished.index(parent) < runner.calls.index(node)
    starts = [e for e in events if e.kind == "start"]
    assert [e.index for e in starts] == list(range(1, len(ORDER) + 1))
    assert all(e.total == len(ORDER) for e in events)


def test_ready_queue_follows_the_given_order_and_parents():
    s = Schedule(ORDER, PARENTS)
    assert s.ready() == ["sys", "sys2"]  # parents outside the set (bases) count as available
    s.start("sys")
    s.finish("sys", RunResult(True), 1.0)
    assert s.ready() == ["sys2", "py", "conda"]


def test_parallelism_is_bounded_by_jobs():
    for jobs in (1, 2):
        runner = FakeRunner(delay=0.03)
        outcomes, _ = execute(Schedule(ORDER, PARENTS), runner, jobs=jobs)
        assert runner.max_active == jobs
        assert all(o.status == BUILT for o in outcomes.values())


def test_jobs_are_used_when_the_dag_allows():
    parents = {f"leaf{i}": "root" for i in range(6)}
    runner = FakeRunner(delay=0.05)
    t0 = time.monotonic()
    execute(Schedule(["root", *parents], {"root": None, **parents}), runner, jobs=3)
    assert runner.max_active == 3
    assert time.monotonic() - t0 < 0.05 * 7  # 1 + 6/3 rounds, far below serial


def test_a_failure_skips_only_its_subtree():
    runner = FakeRunner(fail={"py"})
    events = []
    outcomes, _ = execute(Schedule(ORDER, PARENTS), runner, jobs=2, on_event=events.append)
    st = statuses(outcomes)
    assert st["py"] == FAILED
    assert st["py.ompi"] == st["py.mpich"] == st["py.ompi.ort"] == SKIPPED
    assert outcomes["py.ompi"].detail == "parent failed (py)"
    assert outcomes["py.ompi.ort"].detail == "ancestor failed (py)"
    assert st["sys"] == st["conda"] == st["conda.cpu"] == st["sys2"] == st["sys2.py"] == BUILT
    assert not {"py.ompi", "py.mpich", "py.ompi.ort"} & set(runner.calls)  # never attempted
    assert {e.node for e in events if e.kind == SKIPPED} == {"py.ompi", "py.mpich", "py.ompi.ort"}


def test_a_failed_leaf_leaves_its_siblings_and_parent_built():
    outcomes, _ = execute(Schedule(ORDER, PARENTS), FakeRunner(fail={"py.ompi.ort", "py.mpich"}), jobs=2)
    st = statuses(outcomes)
    assert st["py.ompi.ort"] == st["py.mpich"] == FAILED
    assert st["py.ompi"] == st["py"] == BUILT
    assert not Schedule(ORDER, PARENTS).ok()


def test_a_runner_exception_is_a_failure_not_a_hang():
    outcomes, _ = execute(Schedule(ORDER, PARENTS), FakeRunner(raise_on={"conda"}), jobs=2)
    assert outcomes["conda"].status == FAILED
    assert "RuntimeError: boom" in outcomes["conda"].detail
    assert outcomes["conda.cpu"].status == SKIPPED


def test_present_tags_are_cached_and_not_run():
    present = {"sys", "py", "py.ompi"}
    runner = FakeRunner()
    events = []
    schedule = Schedule(ORDER, PARENTS, present=present)
    outcomes, _ = execute(schedule, runner, jobs=2, on_event=events.append)
    assert {n for n, o in outcomes.items() if o.status == CACHED} == present
    assert not present & set(runner.calls)
    assert [e.node for e in events if e.kind == CACHED] == ["sys", "py", "py.ompi"]
    assert schedule.ok()


def test_all_present_means_no_runner_call():
    runner = FakeRunner()
    outcomes, _ = execute(Schedule(ORDER, PARENTS, present=set(ORDER)), runner, jobs=4)
    assert runner.calls == []
    assert all(o.status == CACHED for o in outcomes.values())


def test_force_rebuilds_present_nodes():
    runner = FakeRunner()
    outcomes, _ = execute(Schedule(ORDER, PARENTS, present=set(ORDER), force=True), runner, jobs=2)
    assert sorted(runner.calls) == sorted(ORDER)
    assert all(o.status == BUILT for o in outcomes.values())


def test_a_missing_parent_is_built_under_a_cached_child():
    # The child's tag exists (parent pruned): the child is cached, the parent rebuilt, nothing waits.
    runner = FakeRunner()
    outcomes, _ = execute(Schedule(["a", "a.b"], {"a": None, "a.b": "a"}, present={"a.b"}), runner)
    assert runner.calls == ["a"]
    assert statuses(outcomes) == {"a": BUILT, "a.b": CACHED}


def test_order_must_be_topological():
    with pytest.raises(ValueError, match="topological"):
        Schedule(["a.b", "a"], {"a": None, "a.b": "a"})


def test_interrupt_stops_launching_and_marks_the_rest_pending():
    killed = threading.Event()

    def runner(node):
        if node == "sys":
            return RunResult(True)
        killed.wait(5)  # a long build, ended by the interrupt hook
        return RunResult(False, "terminated")

    def on_event(e):
        if e.kind == "start" and e.node == "py":
            raise KeyboardInterrupt  # as if Ctrl-C arrived while py runs

    parents = {"sys": None, "py": "sys", "py.x": "py", "other": "sys"}
    outcomes, interrupted = execute(Schedule(["sys", "py", "other", "py.x"], parents), runner, jobs=1,
                                    on_event=on_event, on_interrupt=killed.set)
    assert interrupted
    assert statuses(outcomes) == {"sys": BUILT, "py": INTERRUPTED, "other": PENDING, "py.x": PENDING}
