"""`buildtool sbom` on a real smoke image (issue 15): verify gathers the inventory in the running
container, `buildtool sbom` prints a CycloneDX 1.6 document made from it, and

  - cyclonedx-python-lib's strict JSON validator accepts it (called here, not through buildtool);
  - it lists >= 50 packages with purls (pkg:deb/<distro>/... with arch and distro, pkg:pypi/... with
    the lock's wheel sha256);
  - every dpkg and pip package verify found is in it at the version verify found;
  - it and the lock agree: buildtool.attest.compare finds no difference the lock cannot explain.

Needs the smoke image built (`make build` / `make test` builds it first); skipped with the command otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("BUILDTOOL_SBOM_IMAGE", "onnxruntime1.23.2-cpu-debian12")

pytestmark = [pytest.mark.engine]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BUILDTOOL_")}


def _facts():
    from buildtool.attest.layers import image_facts
    from buildtool.config.loader import load_config
    from buildtool.lock.format import bind_bases, load_lock
    from buildtool.render.generate import generate

    lock = load_lock(REPO / "images.lock")
    config = bind_bases(load_config(REPO / "images.yaml", None, _env()), lock)
    return image_facts(config, generate(config, lock), lock, IMAGE)


def test_sbom_of_a_smoke_image_is_valid_lists_what_verify_found_and_agrees_with_the_lock(docker_ok, tmp_path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from packageurl import PackageURL

    from buildtool.attest.compare import differences
    from buildtool.attest.inventory import from_reports

    facts = _facts()
    try:
        docker_ok.images.get(facts.tag)
    except Exception:
        pytest.skip(f"{facts.tag} is not built: `buildtool build --filter name={IMAGE}`")
    reports = tmp_path / "reports"
    t = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "buildtool", "verify", "--filter", f"name={IMAGE}", "--reports", str(reports)],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    verify_s = time.monotonic() - t
    inv = from_reports(reports, IMAGE, facts.tag)
    assert inv is not None and inv.source.startswith("verify run "), "verify recorded no inventory"
    assert len(inv.dpkg) > 50 and inv.pip

    t = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "buildtool", "sbom", IMAGE, "--format", "cyclonedx-json", "--reports", str(reports)],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    sbom_s = time.monotonic() - t
    text = done.stdout
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    comps = doc["components"]
    purls = [c["purl"] for c in comps if c.get("purl")]
    assert len(purls) >= 50, len(purls)
    by_purl_type = {}
    for c in comps:
        if c.get("purl"):
            by_purl_type.setdefault(c["purl"].split("/", 1)[0], {})[c["name"]] = c
    distro = f"{facts.base.family}-{facts.base.version}"
    for d in inv.dpkg:
        c = by_purl_type["pkg:deb"].get(d.name)
        assert c is not None and c["version"] == d.version, (d, c)
        purl = PackageURL.from_string(c["purl"])
        assert (purl.type, purl.namespace, purl.name, purl.version) == ("deb", facts.base.family, d.name, d.version), purl
        assert purl.qualifiers == {"arch": d.arch, "distro": distro}, purl
    pins = facts.locked_pip
    for name, version in inv.pip:
        c = by_purl_type["pkg:pypi"].get(name)
        assert c is not None and c["version"] == version, (name, c)
        if name in pins:
            assert [h["content"] for h in c.get("hashes", [])] == [pins[name].sha256], name
    # Relationships: image -> layers -> packages; every package hangs off something.
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    root = doc["metadata"]["component"]["bom-ref"]
    assert {f"layer:{layer.node}" for layer in facts.layers} <= set(deps[root])
    reachable = {r for refs in deps.values() for r in refs}
    assert all(c["bom-ref"] in reachable for c in comps if c.get("purl"))
    # The SBOM's packages against the lock: nothing the lock cannot explain.
    assert differences(inv, facts) == []
    print(f"sbom figures: {IMAGE}: {len(purls)} purls ({len(inv.dpkg)} dpkg, {len(inv.pip)} pip), {len(text)} bytes; "
          f"verify {verify_s:.1f} s, sbom {sbom_s:.1f} s")
