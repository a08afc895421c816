"""The site overlay: file keys and BUILDTOOL_* variables accept what sites use, through the same types."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildtool.config.site import load_site
from buildtool.errors import UserError


def test_good_values_from_the_environment(tmp_path: Path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    site = load_site(None, {
        "BUILDTOOL_REGISTRY": "registry.example.com:5000", "BUILDTOOL_NAMESPACE": "team/ml", "BUILDTOOL_CA_BUNDLE": str(ca),
        "BUILDTOOL_APT_MIRROR": "http://mirror.example/debian", "BUILDTOOL_PYPI_INDEX": "https://bob:s3cret@mirror.example/simple/",
        "BUILDTOOL_CREDENTIALS": "docker-config", "BUILDTOOL_INSECURE_REGISTRY": "1",
    })
    assert (site.registry, site.namespace, site.credentials, site.insecure) == ("registry.example.com:5000", "team/ml", "docker-config", True)
    assert site.pypi_index == "https://bob:s3cret@mirror.example/simple/"


def test_good_values_from_a_file(tmp_path: Path):
    path = tmp_path / "site.yaml"
    path.write_text("registry: \"[::1]:5000\"\nnamespace: buildtool\nmirrors: {pypi: \"https://m.example/simple\"}\ninsecure: true\n")
    site = load_site(path, {})
    assert site.registry == "[::1]:5000" and site.insecure is True and site.pypi_index == "https://m.example/simple"


@pytest.mark.parametrize(("var", "value"), [("BUILDTOOL_REGISTRY", "https://r.example"), ("BUILDTOOL_PYPI_INDEX", "https://m.example/\n-i x"),
                                            ("BUILDTOOL_CA_BUNDLE", "/nonexistent.pem"), ("BUILDTOOL_NAMESPACE", "My Team")])
def test_bad_variables_name_themselves(var, value):
    with pytest.raises(UserError) as err:
        load_site(None, {var: value})
    text = err.value.render()
    assert text.startswith("error: environment:") and f"key: {var}" in text and "expected:" in text
