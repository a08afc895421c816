"""Fixtures shared by the engine tests."""

from __future__ import annotations

import pytest

from buildtool.engine import client as engine
from buildtool.errors import OperationError


@pytest.fixture(scope="session")
def docker_ok():
    """A docker SDK client of the running engine; the test is skipped (with the reason) when none answers."""
    try:
        return engine.docker_client()
    except OperationError as exc:
        pytest.skip(f"no Docker Engine: {exc} (`make engine` or .ci/run starts one)")
