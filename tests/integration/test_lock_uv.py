"""`buildtool lock`'s pip half against the real PyPI: uv resolves a small set, the lock keeps the wheel's sha256.

Needs PyPI (or the site's index through BUILDTOOL_PYPI_INDEX); no engine.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from buildtool.lock.format import PipPin
from buildtool.resolve import pip as lr
from buildtool.resolve import uv as luv

pytestmark = pytest.mark.network


def pypi_wheels(name: str, version: str) -> dict[str, str]:
    """filename -> sha256 of every wheel of the release, from PyPI's JSON API (the release's page; the
    project's page where a proxy answers only that one)."""
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/{version}/json", timeout=60) as response:
            files = json.load(response)["urls"]
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=60) as response:
            files = json.load(response)["releases"][version]
    return {f["filename"]: f["digests"]["sha256"] for f in files if f["packagetype"] == "bdist_wheel"}


def test_uv_resolves_packaging_and_locks_its_wheel_hash(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))  # really asks the index, not a warm cache
    pins = luv.run_uv(luv.UvJob(luv.PipRequest("3.11", ("packaging==25.0",), ())), lr.PYPI)
    wheels = pypi_wheels("packaging", "25.0")
    assert pins == (PipPin("packaging", "25.0", wheels["packaging-25.0-py3-none-any.whl"]),)


def test_uv_honours_constraints_preferences_and_upgrade_package(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    request = luv.PipRequest("3.11", ("onnxruntime==1.23.2",), ("numpy==2.3.1",))
    pins = {p.name: p for p in luv.run_uv(luv.UvJob(request, ("packaging==24.2",)), lr.PYPI)}
    assert "numpy" not in pins  # the ancestor's numpy satisfies it: not reinstalled
    assert pins["packaging"].version == "24.2"  # the previous pin is kept where it still fits
    assert pins["packaging"].sha256 == pypi_wheels("packaging", "24.2")["packaging-24.2-py3-none-any.whl"]
    moved = {p.name: p for p in luv.run_uv(luv.UvJob(request, ("packaging==24.2",), ("packaging",)), lr.PYPI)}
    assert moved["packaging"].version != "24.2" and {n: p for n, p in moved.items() if n != "packaging"} == {
        n: p for n, p in pins.items() if n != "packaging"}


def test_uv_failure_names_the_requirement(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    with pytest.raises(luv.ResolveError) as failed:
        luv.run_uv(luv.UvJob(luv.PipRequest("3.11", ("packaging==25.0", "packaging-does-not-exist-here==1.0"), ())), lr.PYPI)
    reason = str(failed.value)
    assert "No solution found" in reason
    assert luv.culprits(("packaging==25.0", "packaging-does-not-exist-here==1.0"), reason) == ("packaging-does-not-exist-here==1.0",)
