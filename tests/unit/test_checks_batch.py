"""The probe runner: many commands in one shell, in parallel, results read back per key. Runs here with bash."""

from __future__ import annotations

import subprocess
import time

from buildtool.checks.base import SESSION_PROBES, Probe, Result, parse_dpkg, parse_pip_list
from buildtool.checks.batch import MARKER, dedupe, parse_output, runner_script


def run_here(probes):
    out = subprocess.run(["bash", "-c", runner_script(probes)], capture_output=True, text=True, timeout=60)
    return parse_output(probes, out.stdout)


def test_exit_codes_stdout_and_stderr_come_back_per_probe():
    probes = [Probe("a", "echo hello; echo oops >&2; exit 3"), Probe("b", "printf 'x\\ny\\n'"), Probe("c", "cat /nonexistent")]
    results = run_here(probes)
    assert results["a"].rc == 3 and results["a"].stdout == "hello\n" and results["a"].stderr == "oops\n"
    assert results["b"].rc == 0 and results["b"].stdout == "x\ny\n"
    assert results["c"].rc != 0 and "nonexistent" in results["c"].stderr


def test_probes_run_in_parallel():
    probes = [Probe(f"s{i}", "sleep 1") for i in range(4)]
    t0 = time.monotonic()
    results = run_here(probes)
    assert time.monotonic() - t0 < 3.0
    assert all(r.rc == 0 and 0.5 < r.seconds < 3 for r in results.values())


def test_a_probe_over_its_timeout_is_killed():
    results = run_here([Probe("slow", "sleep 30", timeout=1), Probe("quick", "true")])
    assert results["slow"].rc == 124
    assert results["quick"].rc == 0


def test_quotes_and_binary_output_survive():
    probes = [Probe("q", """python3 -c 'print("it'"'"'s \\"quoted\\" $HOME")'"""), Probe("bin", "printf '\\x00\\xff\\x01'")]
    results = run_here(probes)
    assert results["q"].stdout.startswith("it's \"quoted\" ")
    assert results["bin"].rc == 0


def test_parse_ignores_stray_output_and_reports_only_what_it_saw():
    probes = [Probe("a", "x"), Probe("b", "y")]
    text = f"garbage\n{MARKER} 0 0 1.0 1.5\naGk=\n\nmore garbage\n"
    results = parse_output(probes, text)
    assert results == {"a": Result(0, "hi", "", 0.5)}


def test_dedupe_keeps_the_first_probe_per_key():
    assert [p.command for p in dedupe([Probe("k", "1"), Probe("j", "2"), Probe("k", "3")])] == ["1", "2"]


def test_session_batch_queries_parse():
    dpkg = Result(0, "fuse3\t3.14.0-4\tii \nlibfuse2\t2.9.9-6+b1\tii \nold\t1.0\trc \nlibc6:amd64\t2.36-9\tii \n", "")
    assert parse_dpkg(dpkg) == {"fuse3": "3.14.0-4", "libfuse2": "2.9.9-6+b1", "libc6": "2.36-9"}
    pip = Result(0, '[{"name": "mpi4py", "version": "4.1.2"}, {"name": "Onnxruntime_GPU", "version": "1.24.4"}]', "")
    assert parse_pip_list(pip) == {"mpi4py": "4.1.2", "onnxruntime-gpu": "1.24.4"}
    assert parse_pip_list(Result(1, "", "no pip")) == {}
    assert [p.key for p in SESSION_PROBES] == ["dpkg", "pip-list", "conda-list"]
