"""Valid input loads: the test fixture, the repository's own images.yaml, and a few valid variations."""

from __future__ import annotations

import json
from pathlib import Path

from buildtool.config.loader import load_config

REPO = Path(__file__).resolve().parents[2]


def test_fixture_loads(fixtures_dir: Path) -> None:
    config = load_config(fixtures_dir / "minimal" / "images.yaml", env={})
    assert list(config.bases) == ["debian12"]
    assert config.axes == {
        "os": ("debian12",),
        "python": ("system-python",),
        "mpi": ("none", "openmpi"),
        "accelerator": ("cpu",),
        "onnxruntime": ("none", "ort-cpu"),
    }
    assert [r.id for r in config.rules] == ["onnxruntime-without-mpi", "onnxruntime-python"]
    assert config.default_group == "smoke" and set(config.groups) == {"smoke", "rest"}
    assert config.components["mpi"]["openmpi"].flavor == "openmpi"
    assert config.system.locale == "C.UTF-8"  # the default
    assert config.site.source == "defaults"


def test_fixture_validates_with_its_lock(cli, fixtures_dir: Path) -> None:
    result = cli("validate", "--config", fixtures_dir / "minimal" / "images.yaml")
    assert result.code == 0, result.err
    assert result.err == ""
    assert "3 images" in result.out and "1 combinations dropped" in result.out


def test_fixture_lists_images(cli, fixtures_dir: Path) -> None:
    result = cli("list", "--config", fixtures_dir / "minimal" / "images.yaml", "--group", "all", "--format", "json")
    assert result.code == 0, result.err
    names = sorted(row["image"] for row in json.loads(result.out))
    assert names == ["debian12", "onnxruntime1.23.2-cpu-debian12", "openmpi4.1.4-debian12"]


def test_repository_images_yaml_loads() -> None:
    # Loading the config needs no lock (images.lock may not exist yet).
    config = load_config(REPO / "images.yaml", env={})
    assert config.bases and config.rules and config.default_group in config.groups
    for axis, values in config.axes.items():
        assert values, axis


def test_valid_variations_are_accepted(fixture_copy, cli) -> None:
    folder = fixture_copy("minimal")
    config = folder / "images.yaml"
    text = config.read_text(encoding="utf-8")
    # an include may give a one-item list; a conda component off the axes; a site overlay with a CA bundle
    text = text.replace("  include: []", "  include:\n    - {os: debian12, python: system-python, mpi: [none], accelerator: cpu, onnxruntime: none}")
    text = text.replace("  mpi:\n", """\
    conda:
      flavor: conda
      installer:
        url: https://repo.anaconda.com/miniconda/Miniconda3-py311_24.9.2-0-Linux-x86_64.sh
        sha256: 62ef806265659c47e37e22e8f9adce29e75c4ea0497e619c280f54c823887c4f
      conda: "24.9.2"
      python: "3.11.10"
      channels: [conda-forge]
  mpi:
""", 1)
    config.write_text(text, encoding="utf-8")
    bundle = folder / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", encoding="utf-8")
    site = folder / "site.yaml"
    site.write_text(f"registry: registry.example:5000\ncredentials: docker-config\nca_bundle: {bundle}\nmirrors: {{apt: 'http://deb.debian.org/debian'}}\n",
                    encoding="utf-8")
    result = cli("validate", "--config", config, "--site", site)
    assert result.code == 0, result.err
    assert str(site) in result.out


def test_two_none_components_on_one_axis_are_an_error(tmp_path, capsys):
    from matrix_fixture import IMAGES_YAML, write_config

    from buildtool.cli.main import main

    text = IMAGES_YAML.replace('    none: {flavor: none, tag: ""}\n    openmpi:', '    none: {flavor: none, tag: ""}\n    nompi: {flavor: none, tag: "x"}\n    openmpi:', 1)
    path = write_config(tmp_path, text)
    assert main(["validate", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "axis 'mpi' has two components with flavor 'none'" in err
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith("nompi:"))
    assert f"images.yaml:{line}:" in err
