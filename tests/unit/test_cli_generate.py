"""generate / check / list / matrix through the CLI, on a tmp copy of a small matrix."""

from __future__ import annotations

import json
import os

import pytest
from fake_lock import fake_lock
from matrix_fixture import load

from buildtool.cli.main import main
from buildtool.lock.format import dump_lock
from buildtool.render.outputs import README_BEGIN, README_END


@pytest.fixture()
def project(tmp_path, monkeypatch):
    config = load(tmp_path)
    (tmp_path / "images.lock").write_text(dump_lock(fake_lock(config)), encoding="utf-8")
    (tmp_path / "README.md").write_text(f"# x\n\n{README_BEGIN}\n{README_END}\n\nafter\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BUILDTOOL_SITE", raising=False)
    return tmp_path


def test_generate_then_check_is_clean(project, capsys):
    assert main(["generate"]) == 0
    assert (project / "generated/nodes/debian12.sys/Dockerfile").is_file()
    assert os.access(project / "generated/nodes/debian12.sys/register-libs", os.X_OK)
    readme = (project / "README.md").read_text()
    assert "| `openmpi1.0-py3.11.2-debian12` | smoke |" in readme
    assert readme.endswith("\nafter\n")
    assert main(["check"]) == 0


@pytest.mark.parametrize("edit", ["dockerfile", "debs-lock", "extra-file", "deleted-file", "readme", "mode"])
def test_check_fails_after_any_hand_edit(project, capsys, edit):
    assert main(["generate"]) == 0
    target = project / "generated/nodes/debian12.sys.sys.openmpi/Dockerfile"
    if edit == "dockerfile":
        text = target.read_text()
        target.write_text(text.replace("install-debs /tmp/buildtool/debs.lock", "apt-get install -y openmpi-bin"))
        assert target.read_text() != text, "the edit changed nothing"
    elif edit == "debs-lock":
        debs = target.with_name("debs.lock")
        text = debs.read_text()
        debs.write_text(text.replace("openmpi-bin 1.0-1 amd64", "openmpi-bin 1.0-2 amd64"))
        assert debs.read_text() != text, "the edit changed nothing"
    elif edit == "extra-file":
        (project / "generated/nodes/debian12.sys/notes.txt").write_text("hi")
    elif edit == "deleted-file":
        target.unlink()
    elif edit == "readme":
        (project / "README.md").write_text((project / "README.md").read_text().replace("smoke", "smoky", 1))
    elif edit == "mode":
        (project / "generated/nodes/debian12.sys/register-libs").chmod(0o644)
    capsys.readouterr()
    assert main(["check"]) == 1
    out = capsys.readouterr()
    assert "stale" in out.err
    assert out.out.strip(), "check must print what differs"


def test_generate_is_byte_identical_on_rerun(project):
    assert main(["generate"]) == 0
    first = {p: p.read_bytes() for p in sorted((project / "generated").rglob("*")) if p.is_file()}
    assert main(["generate"]) == 0
    second = {p: p.read_bytes() for p in sorted((project / "generated").rglob("*")) if p.is_file()}
    assert first == second


def test_failed_generate_leaves_previous_output_intact(project, capsys):
    assert main(["generate"]) == 0
    before = (project / "generated/plan.json").read_text()
    # Break the lock: the closure a layer needs disappears, so rendering fails before anything is written.
    lock = (project / "images.lock").read_text().replace('libopenmpi-dev openmpi-bin": [', 'libopenmpi-dev openmpi-bin-x": [')
    assert 'openmpi-bin-x": [' in lock
    (project / "images.lock").write_text(lock)
    assert main(["generate"]) == 2
    err = capsys.readouterr().err
    assert "components.mpi.openmpi needs apt pins images.lock does not have" in err and "openmpi-bin libopenmpi-dev" in err, err
    assert (project / "generated/plan.json").read_text() == before
    assert not list(project.glob(".generated.*"))


def test_write_failure_midway_keeps_old_tree(project, monkeypatch):
    from buildtool.render import writer

    assert main(["generate"]) == 0
    before = sorted(p.relative_to(project) for p in (project / "generated").rglob("*"))
    calls = {"n": 0}

    def disk_fills_up(path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(28, "No space left on device")
        return open(path, *args, **kwargs)

    monkeypatch.setattr(writer, "open", disk_fills_up, raising=False)  # the writer's open(), the sixth file fails
    assert main(["generate"]) == 1
    assert sorted(p.relative_to(project) for p in (project / "generated").rglob("*")) == before
    assert not list(project.glob(".generated.*"))
    assert calls["n"] == 6


def test_list_json_and_why_excluded(project, capsys):
    assert main(["list", "--group", "all", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["image"] for r in rows} >= {"openmpi1.0-py3.11.2-debian12", "mpich1.0-py3.11.2-debian12"}
    assert all(r["tag"].startswith("buildtool/") for r in rows)
    assert main(["list", "--why-excluded"]) == 0
    out = capsys.readouterr().out
    assert "os=debian12 python=sys mpi=none accelerator=cu118 onnxruntime=ortcuda\n    dropped by rule ort-gpu-major" in out


def test_matrix_levels_follow_the_dag(project, capsys):
    assert main(["matrix", "--group", "smoke"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"levels": 3, "nodes_per_level": [1, 1, 1]}
    assert main(["matrix", "--group", "smoke", "--level", "2"]) == 0
    job = json.loads(capsys.readouterr().out)["include"][0]
    assert job["node"] == "debian12.sys.sys.openmpi"
    assert job["parent_tag"].startswith("buildtool/debian12.sys.sys:h-")
    assert main(["matrix", "--level", "9"]) == 2


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_modes_follow_the_tree_whatever_the_umask(tmp_path, umask):
    from buildtool.render.writer import read_tree, write_tree_atomically

    tree = {"a/Dockerfile": ("FROM x\n", 0o644), "a/run": ("#!/bin/sh\n", 0o755), "b/c/d.txt": ("é\n", 0o644)}
    old = os.umask(umask)
    try:
        write_tree_atomically(tmp_path / "out", tree)
    finally:
        os.umask(old)
    modes = {rel: (tmp_path / "out" / rel).stat().st_mode & 0o777 for rel in tree}
    assert modes == {rel: mode for rel, (_, mode) in tree.items()}
    assert read_tree(tmp_path / "out") == tree
