"""Shared helpers for the unit tests: fixture files, a CLI runner, a clean environment."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildtool.cli.main import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _no_site_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's BUILDTOOL_* variables must not leak into unit tests."""
    import os

    for name in list(os.environ):
        if name.startswith("BUILDTOOL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def fixture_copy(tmp_path: Path):
    """copy(name) -> a fresh copy of tests/fixtures/<name>/ under tmp_path (returns the folder)."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(FIXTURES / name, dest)
        return dest

    return copy


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """run(*argv) -> CliResult: buildtool's main() in-process, with its exit code and output."""

    def run(*argv: str) -> CliResult:
        capsys.readouterr()  # drop anything printed before
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
