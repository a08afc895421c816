"""The writer never destroys what it did not write, and a kill -9 at any point leaves a whole generated/."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_lock import fake_lock
from matrix_fixture import load

from buildtool.lock.format import dump_lock
from buildtool.render.outputs import README_BEGIN, README_END
from buildtool.render.writer import MARKER, read_tree, write_tree_atomically

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def project(tmp_path, monkeypatch):
    config = load(tmp_path)
    (tmp_path / "images.lock").write_text(dump_lock(fake_lock(config)), encoding="utf-8")
    (tmp_path / "README.md").write_text(f"# x\n\n{README_BEGIN}\n{README_END}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and ".git/" not in str(p)}


def test_out_dot_in_a_checkout_is_refused_and_changes_nothing(project, cli):
    (project / ".git").mkdir()
    (project / "uncommitted.txt").write_text("mine")
    before = snapshot(project)
    r = cli("generate", "--out", ".")
    assert r.code == 2 and "--out" in r.err and "Traceback" not in r.err
    assert snapshot(project) == before


@pytest.mark.parametrize("target", ["README.md", "images.yaml", "images.lock"])
def test_out_naming_a_file_is_refused(project, cli, target):
    before = snapshot(project)
    r = cli("generate", "--out", target)
    assert r.code == 2 and "file" in r.err
    assert snapshot(project) == before


def test_out_above_the_config_is_refused(project, cli, tmp_path):
    sub = project / "conf"
    sub.mkdir()
    for name in ("images.yaml", "images.lock"):
        (project / name).rename(sub / name)
    before = snapshot(project)
    r = cli("generate", "--config", "conf/images.yaml", "--out", ".")
    assert r.code == 2 and "contains" in r.err
    assert snapshot(project) == before


def test_non_empty_folder_without_marker_is_refused(project, cli):
    (project / "docs").mkdir()
    (project / "docs" / "notes.md").write_text("keep me")
    r = cli("generate", "--out", "docs")
    assert r.code == 2 and "marker" in r.err and "notes.md" in r.err
    assert (project / "docs" / "notes.md").read_text() == "keep me"


def test_folder_of_known_names_without_buildtools_plan_is_refused(project, cli):
    (project / "mine" / "ci").mkdir(parents=True)
    (project / "mine" / "ci" / "deploy.sh").write_text("keep me")
    r = cli("generate", "--out", "mine")
    assert r.code == 2 and (project / "mine" / "ci" / "deploy.sh").read_text() == "keep me"


def test_symlink_out_is_refused(project, cli, tmp_path):
    (project / "real").mkdir()
    (project / "link").symlink_to(project / "real")
    assert cli("generate", "--out", "link").code == 2


def test_own_output_and_empty_folders_are_replaced(project, cli):
    (project / "empty").mkdir()
    assert cli("generate", "--out", "empty").code == 0
    assert (project / "empty" / MARKER).is_file()
    assert cli("generate", "--out", "empty").code == 0  # its own output, marked
    (project / "empty" / MARKER).unlink()  # an output from before the marker: only known names
    assert cli("generate", "--out", "empty").code == 0


def test_outputs_default_beside_the_config(project, cli, tmp_path, monkeypatch):
    other = project / "other"
    other.mkdir()
    for name in ("images.yaml", "images.lock", "README.md"):
        (project / name).rename(other / name)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli("generate", "--config", str(other / "images.yaml")).code == 0
    assert (other / "generated" / "plan.json").is_file()
    assert "| `" in (other / "README.md").read_text()
    assert list(elsewhere.iterdir()) == []
    assert cli("check", "--config", str(other / "images.yaml")).code == 0


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_generated_folder_mode_follows_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_tree_atomically(tmp_path / "out", {"a/b": ("x\n", 0o644)})
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (tmp_path / "out" / "a").stat().st_mode & 0o777 == 0o777 & ~umask


def test_leftovers_of_killed_runs_are_removed(tmp_path):
    for name in (".out.new-abc", ".out.old-123"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x")
    write_tree_atomically(tmp_path / "out", {"f": ("y\n", 0o644)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_unwritable_readme_fails_before_generated_changes(project, cli, monkeypatch):
    assert cli("generate").code == 0
    before = snapshot(project / "generated")
    (project / "images.yaml").write_text((project / "images.yaml").read_text().replace("uid: 1000", "uid: 1001"))
    from buildtool.render import writer

    real = Path.write_text

    def refuse_readme(self, *a, **k):
        if self.name.startswith(".README.md.tmp"):
            raise OSError(30, "Read-only file system")
        return real(self, *a, **k)

    monkeypatch.setattr(writer.Path, "write_text", refuse_readme)
    r = cli("generate")
    assert r.code == 1 and "Read-only" in r.err and "Traceback" not in r.err
    assert snapshot(project / "generated") == before
    assert not [p for p in project.iterdir() if p.name.startswith(".")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_checkout_gives_a_message(project, cli):
    project.chmod(0o555)
    try:
        r = cli("generate")
    finally:
        project.chmod(0o755)
    assert r.code == 1 and "could not write" in r.err


def test_read_only_disk_gives_a_message_not_a_traceback(project, cli, monkeypatch):
    import tempfile

    def erofs(*a, **k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkdtemp", erofs)
    r = cli("generate")
    assert r.code == 1 and "Read-only file system" in r.err


# The slowed generate: every file write and every rename waits a little, so that kills land inside the
# write window (not only in the interpreter's start-up).
SLOW = """
import os, sys, time
import buildtool.render.writer as w
_open, _rename, _exchange = open, os.rename, w._exchange
def slow_open(*a, **k):
    time.sleep(0.002)
    return _open(*a, **k)
def slow_rename(a, b):
    time.sleep(0.05)
    return _rename(a, b)
def slow_exchange(a, b):
    time.sleep(0.05)
    return _exchange(a, b)
w.open = slow_open
w.os.rename = slow_rename
w._exchange = slow_exchange
from buildtool.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_during_generate_never_loses_generated(project):
    """Bounded: 12 kills at spread-out moments; after each, generated/ is a whole tree (old or new), and
    the next run removes whatever the killed one left beside it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("BUILDTOOL_SITE", None)
    run = [sys.executable, "-c", SLOW, "generate"]
    assert subprocess.run(run, cwd=project, env=env, timeout=120, capture_output=True).returncode == 0
    whole = read_tree(project / "generated")
    start = time.monotonic()
    subprocess.run(run, cwd=project, env=env, timeout=120, capture_output=True)
    duration = time.monotonic() - start
    rng = random.Random(11)
    mid_write = 0
    for trial in range(12):
        proc = subprocess.Popen(run, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(duration * (0.3 + 0.7 * rng.random()))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert read_tree(project / "generated") == whole, f"trial {trial}: generated/ is not whole after kill -9"
        mid_write += any(p.name.startswith(".generated.new-") for p in project.iterdir())
    assert mid_write >= 2, "too few kills landed while the new tree was being written: the test proves little"
    assert subprocess.run(run, cwd=project, env=env, timeout=120, capture_output=True).returncode == 0
    assert read_tree(project / "generated") == whole
    assert not [p.name for p in project.iterdir() if p.name.startswith(".generated.")]
