"""Node ids cannot collide: the key grammar rules it out, and build_dag's check backs it up."""

from __future__ import annotations

import re

import pytest
from fake_lock import fake_lock
from matrix_fixture import IMAGES_YAML, load

from buildtool.config import images_spec as config_module
from buildtool.errors import UserError

TWO_MPI = IMAGES_YAML.replace(
    'openmpi: {flavor: openmpi, mpi4py: "4.1.2", tag: "openmpi{version}"}',
    'm1: {flavor: openmpi, tag: "a{version}"}\n    m1.cu128: {flavor: openmpi, tag: "b{version}"}',
).replace("mpi: [none, openmpi, mpich, intelmpi]", "mpi: [none, m1, m1.cu128, mpich, intelmpi]").replace(
    "{mpi: [openmpi, mpich, intelmpi], onnxruntime", "{mpi: [m1, m1.cu128, mpich, intelmpi], onnxruntime"
).replace("mpi: openmpi, accelerator: cpu", "mpi: m1, accelerator: cpu")


def test_a_dotted_component_key_is_refused_where_it_is_written(tmp_path):
    assert "m1.cu128:" in TWO_MPI
    with pytest.raises(UserError) as err:
        load(tmp_path, TWO_MPI)
    text = err.value.render()
    assert re.search(r"images\.yaml:\d+: malformed value 'm1\.cu128'", text) and "node ids" in text


def test_build_dag_refuses_two_chains_with_one_id(tmp_path, monkeypatch):
    """With the grammar loosened (as a future flavor might), the plan still refuses the collision."""
    monkeypatch.setattr(config_module.COMPONENT_KEY, "pattern", re.compile(r"[a-z0-9][a-z0-9_.-]*"))
    config = load(tmp_path, TWO_MPI)
    with pytest.raises(UserError, match="same node id") as err:
        fake_lock(config)  # expands and plans the matrix: build_dag meets the second chain
    assert "images.yaml:" in err.value.render()
