"""lock_resolve: dpkg version ordering, Packages parsing, pip reports, and an offline end-to-end lock."""

from __future__ import annotations

import functools
import lzma
from pathlib import Path

import pytest

from buildtool import lock_resolve as lr
from buildtool.config import load_config
from buildtool.generate import generate
from buildtool.lock import Lock, PipPin, load_lock

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("a", "b", "sign"),
    [
        ("1.0", "1.0", 0),
        ("1.01", "1.1", 0),  # numeric parts compare as numbers
        ("1.0~rc1", "1.0", -1),  # '~' sorts before the end of the string
        ("1.0~~", "1.0~", -1),
        ("1.0", "1.0.", -1),
        ("1.0a", "1.0", 1),
        ("1.0a", "1.0+", -1),  # letters sort before other symbols
        ("1:0.1", "2.0", 1),  # the epoch wins
        ("2.9.9-6+b1", "2.9.9-6", 1),  # binNMU
        ("7.88.1-10+deb12u15", "7.88.1-10+deb12u9", 1),
        ("20240203~22.04.1", "20240203", -1),  # backport below the original
        ("4.3.0+really4.2.1-1", "4.2.1-1", 1),
        ("1.2-3-4", "1.2-3-5", -1),  # the revision is after the last hyphen
        ("10", "9", 1),
    ],
)
def test_compare_debian_versions(a: str, b: str, sign: int) -> None:
    result = lr.compare_debian_versions(a, b)
    assert (result > 0) - (result < 0) == sign
    back = lr.compare_debian_versions(b, a)
    assert (back > 0) - (back < 0) == -sign


def test_debian_sort_order() -> None:
    versions = ["1.0", "1.0-1", "1.0~beta", "1:0.9", "1.0+b1", "0.9.9"]
    ordered = sorted(versions, key=functools.cmp_to_key(lr.compare_debian_versions))
    assert ordered == ["0.9.9", "1.0~beta", "1.0", "1.0-1", "1.0+b1", "1:0.9"]


PACKAGES = """\
Package: fuse3
Version: 3.14.0-4
Description: Filesystem in Userspace (3.x version)
 Version: 9.9 inside a description is not a field
 .
 more text

Package: openmpi-bin
Source: openmpi (4.1.4-3)
Version: 4.1.4-3+b1
Depends: libc6 (>= 2.34)

Package: openmpi-bin
Version: 4.1.4-3
Package-Type: deb
"""


def test_iter_packages_reads_name_and_version_only() -> None:
    assert list(lr.iter_packages(PACKAGES)) == [("fuse3", "3.14.0-4"), ("openmpi-bin", "4.1.4-3+b1"), ("openmpi-bin", "4.1.4-3")]


def test_candidates_pick_the_highest_version() -> None:
    best = lr.candidates(lr.iter_packages(PACKAGES))
    assert best == {"fuse3": "3.14.0-4", "openmpi-bin": "4.1.4-3+b1"}


def test_choose_versions_names_what_is_missing() -> None:
    available = {"fuse3": "3.14.0-4", "curl": "7.88.1-10"}
    assert lr.choose_versions(["curl", "fuse3"], available, "debian12") == {"curl": "7.88.1-10", "fuse3": "3.14.0-4"}
    with pytest.raises(lr.ResolveError, match="debian12.*libfuse2t64"):
        lr.choose_versions(["curl", "libfuse2t64"], available, "debian12")


def _install(name: str, version: str, archive: dict) -> dict:
    return {"metadata": {"name": name, "version": version}, "download_info": {"url": f"https://x/{name}.whl", "archive_info": archive}}


def test_pins_from_report_normalizes_names_and_reads_hashes() -> None:
    report = {
        "version": "1",
        "install": [
            _install("PyYAML", "6.0.2", {"hashes": {"sha256": "a" * 64}}),
            _install("nvidia_cudnn_cu12", "9.10.2.21", {"hash": "sha256=" + "b" * 64}),
        ],
    }
    assert lr.pins_from_report(report) == (PipPin("nvidia-cudnn-cu12", "9.10.2.21", "b" * 64), PipPin("pyyaml", "6.0.2", "a" * 64))


def test_pins_from_report_without_sha256_fails() -> None:
    with pytest.raises(lr.ResolveError, match="no sha256 for mpi4py"):
        lr.pins_from_report({"install": [_install("mpi4py", "4.1.2", {"hash": "md5=00"})]})


def test_new_pins_drop_only_identical_inherited_pins() -> None:
    pins = (PipPin("numpy", "2.3.1", "a" * 64), PipPin("onnxruntime", "1.23.2", "b" * 64), PipPin("pip", "25.3", "c" * 64))
    kept = lr.new_pins(pins, ("numpy==2.3.1", "pip==25.2"))
    assert [p.name for p in kept] == ["onnxruntime", "pip"]


def test_pip_command_isolated_binary_only_for_the_target_python(tmp_path: Path) -> None:
    request = lr.PipRequest("3.9", ("mpi4py==4.1.2",), ("pip==25.3",))
    cmd = lr.pip_command("py", request, tmp_path / "r.json", tmp_path / "t", tmp_path / "c.txt", "https://pypi.example/simple")
    assert cmd[:4] == ["py", "-m", "pip", "--isolated"]
    assert cmd[-1] == "mpi4py==4.1.2"
    for flag, value in (("--python-version", "3.9"), ("--target", str(tmp_path / "t")), ("-c", str(tmp_path / "c.txt")),
                        ("--index-url", "https://pypi.example/simple"), ("--report", str(tmp_path / "r.json"))):
        assert cmd[cmd.index(flag) + 1] == value
    assert {"--dry-run", "--ignore-installed", "--only-binary=:all:"} <= set(cmd)
    platforms = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--platform"]
    assert platforms[0] == "manylinux_2_31_x86_64" and "manylinux_2_17_x86_64" in platforms and "manylinux1_x86_64" in platforms


# --- offline end to end: fake archive and fake pip, the project's images.yaml ------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch):
    """Packages.xz offering every name any base asks for, and a pip that pins each requirement."""
    config = load_config(ROOT / "images.yaml", None)
    names = sorted({n for b in config.bases.values() for n in lr.apt_names(config, b)})
    index = "".join(f"Package: {n}\nVersion: 1.0-1\n\nPackage: {n}\nVersion: 1.0-2\n\n" for n in names)
    monkeypatch.setattr(lr, "_fetch", lambda url: lzma.compress(index.encode()))
    calls: list[lr.PipRequest] = []

    def fake_pip(request: lr.PipRequest, index_url: str) -> tuple[PipPin, ...]:
        calls.append(request)
        pins = tuple(PipPin(r.split("==")[0], r.split("==")[1], "0" * 64) for r in request.requires) + (PipPin("numpy", "2.0.0", "1" * 64),)
        return lr.new_pins(tuple(sorted(pins, key=lambda p: p.name)), request.constraints)

    monkeypatch.setattr(lr, "run_pip", fake_pip)
    return config, calls


def test_resolve_lock_offline_is_accepted_by_generate(offline, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, calls = offline
    lock_path = tmp_path / "images.lock"
    assert lr.resolve_lock(config, lock_path, only=None, jobs=2)
    lock = load_lock(lock_path)
    generate(config, lock)  # every apt pin and pip set the render asks for is there, and none is stale
    assert len(calls) == len(set(calls)) < len(lock.pip)  # identical sets across bases resolve once
    debian = next(k for k, b in config.bases.items() if b.bootstrap)
    assert set(lock.apt[debian].values()) == {"1.0-2"}
    assert "Packages.xz sha256" in lock.sources[debian]
    seeded = [k for k, b in config.bases.items() if not b.bootstrap]
    assert all(lock.sources[k].startswith("seed:") for k in seeded)
    out = capsys.readouterr().out
    assert all(f"warning: {k}:" in out for k in seeded)
    child = next(s for s in lock.pip.values() if s.constraints)
    assert "numpy" not in {p.name for p in child.pins}  # an ancestor already pins it


def test_resolve_lock_writes_nothing_when_a_set_fails(offline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, _ = offline

    def failing(request: lr.PipRequest, index_url: str) -> tuple[PipPin, ...]:
        raise lr.ResolveError("ERROR: No matching distribution found")

    monkeypatch.setattr(lr, "run_pip", failing)
    lock_path = tmp_path / "images.lock"
    assert not lr.resolve_lock(config, lock_path, only=None, jobs=2)
    assert not lock_path.exists()


def test_resolve_lock_writes_nothing_when_the_archive_is_unreachable(offline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, _ = offline

    def unreachable(url: str) -> bytes:
        raise lr.ResolveError(f"could not download {url}: timed out")

    monkeypatch.setattr(lr, "_fetch", unreachable)
    lock_path = tmp_path / "images.lock"
    assert not lr.resolve_lock(config, lock_path, only=None, jobs=1)
    assert not lock_path.exists()


def test_seeded_bases_keep_pins_already_locked(offline) -> None:
    config, _ = offline
    base = next(b for b in config.bases.values() if not b.bootstrap)
    old = Lock(path="x", apt={base.key: {"curl": "9.9-1"}}, sources={base.key: "seed: earlier"})
    pins, source = lr.resolve_seeded(config, base, old)
    assert pins["curl"] == "9.9-1"
    assert pins["ca-certificates"] == lr.SEED[base.codename]["ca-certificates"]
    assert source.startswith(f"seed: {base.codename} archive unreachable")
