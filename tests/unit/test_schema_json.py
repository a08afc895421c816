"""`buildtool schema`: images.yaml's JSON Schema, made from the loader's schema objects, and its committed copy."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from buildtool.cli.main import main
from buildtool.config.schema_json import images_schema, images_schema_text
from buildtool.config.source import load_yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def validator():
    schema = images_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def shipped():
    return load_yaml(ROOT / "images.yaml").data


def test_committed_copy_is_what_buildtool_schema_prints(capsys):
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == images_schema_text()
    assert (ROOT / "schema" / "images.schema.json").read_text(encoding="utf-8") == printed, \
        "schema/images.schema.json is stale: run `buildtool schema > schema/images.schema.json`"
    assert json.loads(printed)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_shipped_images_yaml_points_at_the_committed_copy_and_validates(validator, shipped):
    assert (ROOT / "images.yaml").read_text(encoding="utf-8").splitlines()[0] == "# yaml-language-server: $schema=schema/images.schema.json"
    assert [e.message for e in validator.iter_errors(shipped)] == []


def _first_component(doc, axis, flavor):
    return next(body for body in doc["components"][axis].values() if body["flavor"] == flavor)


def _broken(shipped, change):
    doc = copy.deepcopy(shipped)
    change(doc)
    return doc


@pytest.mark.parametrize("change", [
    pytest.param(lambda d: _first_component(d, "mpi", "openmpi").update(prefix="/opt"), id="unknown-field-of-the-flavor"),
    pytest.param(lambda d: _first_component(d, "mpi", "openmpi").update(version="4.1.4"), id="another-flavor's-field"),
    pytest.param(lambda d: _first_component(d, "mpi", "intelmpi").pop("version"), id="missing-required-field"),
    pytest.param(lambda d: _first_component(d, "mpi", "openmpi").update(flavor="rocm"), id="unknown-flavor"),
    pytest.param(lambda d: _first_component(d, "mpi", "openmpi").update(flavor="conda"), id="flavor-of-another-axis"),
    pytest.param(lambda d: _first_component(d, "mpi", "openmpi").pop("flavor"), id="no-flavor"),
    pytest.param(lambda d: d["system"].update(uid="1000"), id="uid-is-a-string"),
    pytest.param(lambda d: d["system"].update(uid=0), id="uid-out-of-range"),
    pytest.param(lambda d: d.update(schema=[1]), id="schema-is-a-list"),
    pytest.param(lambda d: d.update(colour="blue"), id="unknown-top-level-key"),
    pytest.param(lambda d: next(iter(d["bases"].values())).update(python=3.11), id="version-is-a-number"),
    pytest.param(lambda d: d["matrix"]["axes"].pop("mpi"), id="missing-axis"),
])
def test_wrong_documents_do_not_validate(validator, shipped, change):
    doc = _broken(shipped, change)
    assert not validator.is_valid(doc)


def test_every_flavor_field_is_in_the_schema():
    from buildtool.components import FLAVORS

    schema = images_schema()
    for name, fl in FLAVORS.items():
        branches = schema["properties"]["components"]["properties"][fl.axis]["additionalProperties"]["allOf"]
        (then,) = [b["then"] for b in branches if b["if"]["properties"]["flavor"]["const"] == name]
        assert set(fl.fields) <= set(then["properties"]), name
        assert set(fl.required) <= set(then["required"]), name
