"""issue 15's pure parts: inventory parsing, SBOM vs lock, the SBOM and provenance documents (validated with
their libraries, and shown to fail validation when broken), the referrers tag schema and index, security fixes."""

from __future__ import annotations

import json

import pytest

from buildtool.attest import provenance, sbom
from buildtool.attest.compare import differences, upstream
from buildtool.attest.inventory import Inventory, from_results, parse_dpkg_rows, split_sections
from buildtool.attest.layers import BaseFacts, Download, ImageFacts, Layer, downloads_of
from buildtool.cli.verbs.attestations import check_referrer, parse_reference
from buildtool.edges.referrers import Descriptor, artifact_manifest, merged_index, referrers_tag, sha256_digest
from buildtool.errors import UserError
from buildtool.lock.format import DebPin, PipPin
from buildtool.publish.release import ImageNotes, Manifest, render_notes
from buildtool.publish.security import security_fixes, security_pins

H = "ab" * 32


def _deb(name, version, archive="debian", pocket=""):
    return DebPin(name, version, "amd64", archive, f"pool/main/{name[0]}/{name}/{name}_{version}_amd64.deb", H, 100, pocket)


def _facts(debs=(), pip=(), manifest=(("bash", "5.2.15-2+b7", "amd64"), ("libc6", "2.36-9+deb12u9", "amd64"))):
    base = BaseFacts("debian12", "debian", "12", "bookworm", "", {"tool": "debootstrap", "suite": "bookworm", "mirror": "http://deb.debian.org/debian",
                     "variant": "minbase", "components": "main"}, "20261201T120000Z", (("bookworm", "Sat, 10 Jan 2026", H),),
                     {"debian": "http://deb.debian.org/debian", "debian-security": "http://security.debian.org/debian-security"},
                     frozenset({"debian-security"}), tuple(manifest), H)
    layers = (Layer("debian12", "base", "", "buildtool/base-debian12:x", "base debian12"),
              Layer("debian12.sys", "system", "1" * 64, "buildtool/debian12.sys:h-" + "1" * 20, "system", tuple(debs)),
              Layer("debian12.sys.py", "python", "2" * 64, "buildtool/debian12.sys.py:h-" + "2" * 20, "python system-python (system-python)",
                    (), tuple(pip), (Download("tools.uv", "pkg:pypi/uv@0.13.9", "cd" * 32),)))
    return ImageFacts("img", "debian12.sys.py", layers[-1].tag, "2" * 64, base, layers)


DPKG_OUT = ("bash\t5.2.15-2+b7\tii \tamd64\tbash\t5.2.15-2\n"
            "libc6:amd64\t2.36-9+deb12u9\tii \tamd64\tglibc\t2.36-9+deb12u9\n"
            "curl\t7.88.1-10+deb12u14\tii \tamd64\tcurl\t\n"
            "python3-setuptools-whl\t66.1.1-1+deb12u1\tii \tall\tsetuptools\t\n"
            "gone\t1.0\trc \tamd64\t\t\n")
PIP_OUT = json.dumps([{"name": "NumPy", "version": "2.4.6"}, {"name": "setuptools", "version": "66.1.1"}])


def _inventory():
    return from_results({"dpkg": (0, DPKG_OUT), "pip-list": (0, PIP_OUT), "conda-list": (0, "")}, "verify run test")


def test_dpkg_rows_keep_installed_packages_their_arch_and_source():
    rows = {d.name: d for d in parse_dpkg_rows(DPKG_OUT)}
    assert set(rows) == {"bash", "libc6", "curl", "python3-setuptools-whl"}  # "rc" (removed, config left) is not installed
    assert rows["libc6"].source == "glibc" and rows["libc6"].source_version == ""  # same version as the binary
    assert rows["bash"].source == "" and rows["bash"].source_version == "5.2.15-2"  # a binNMU: its source version differs
    assert rows["curl"].arch == "amd64"


def test_inventory_round_trips_and_split_sections_reads_the_collect_script_output():
    inv = _inventory()
    assert Inventory.from_json(json.loads(json.dumps(inv.to_json()))) == inv
    assert inv.pip_versions == {"numpy": "2.4.6", "setuptools": "66.1.1"}
    text = "@@dpkg\n" + DPKG_OUT + "\n@@rc 0\n@@pip-list\n" + PIP_OUT + "\n@@rc 0\n@@conda-list\n\n@@rc 0\n"
    assert from_results(split_sections(text), "verify run test") == inv


def test_the_lock_explains_everything_or_each_difference_is_named():
    debs = (_deb("curl", "7.88.1-10+deb12u14"),)
    facts = _facts(debs, (PipPin("numpy", "2.4.6", H),))
    facts = ImageFacts(facts.image, facts.node, facts.tag, facts.content_hash,
                       BaseFacts(**{**facts.base.__dict__, "manifest": (*facts.base.manifest, ("python3-setuptools-whl", "66.1.1-1+deb12u1", "all"))}),
                       facts.layers)
    assert differences(_inventory(), facts) == []  # setuptools: seeded by venv from python3-setuptools-whl 66.1.1
    broken = _facts((_deb("curl", "7.88.1-10+deb12u12"), _deb("openssl", "3.0.22-1")), (PipPin("numpy", "2.4.5", H), PipPin("onnx", "1.0", H)))
    found = differences(_inventory(), broken)
    assert "dpkg curl: installed 7.88.1-10+deb12u14, the lock pins 7.88.1-10+deb12u12" in found
    assert any(f.startswith("dpkg python3-setuptools-whl 66.1.1-1+deb12u1: installed, but neither") for f in found)
    assert "dpkg openssl: the lock pins 3.0.22-1 for a layer of this image, but it is not installed" in found
    assert "pip numpy: installed 2.4.6, the lock pins 2.4.5" in found
    assert "pip onnx: the lock pins 1.0, but `pip list` does not show it" in found
    assert not any(f.startswith("pip setuptools") for f in found)  # the installed python3-setuptools-whl still seeds it
    no_whl = Inventory(tuple(d for d in _inventory().dpkg if d.name != "python3-setuptools-whl"), _inventory().pip, (), "test")
    assert any(f.startswith("pip setuptools 66.1.1: installed, but no pip set") for f in differences(no_whl, broken))
    assert upstream("1:2.3+dfsg-4") == "2.3" and upstream("66.1.1-1+deb12u1") == "66.1.1"


def test_downloads_of_any_flavor_shape():
    fields = {"installer": {"url": "https://x.invalid/i.sh", "sha256": H}, "repo": {"keyring": "https://x.invalid/k.gpg", "keyring_sha256": H}}
    assert {(d.key, d.url) for d in downloads_of(fields)} == {("installer", "https://x.invalid/i.sh"), ("repo.keyring", "https://x.invalid/k.gpg")}


def test_sbom_is_valid_cyclonedx_with_purls_hashes_and_relationships():
    facts = _facts((_deb("curl", "7.88.1-10+deb12u14"),), (PipPin("numpy", "2.4.6", H),))
    doc = sbom.build(facts, _inventory(), digest="sha256:" + H, repository="reg.invalid/ns/img")
    assert sbom.validate(doc.text) is None
    data = json.loads(doc.text)
    comps = {c["bom-ref"]: c for c in data["components"]}
    curl = comps["pkg:deb/debian/curl@7.88.1-10%2Bdeb12u14?arch=amd64&distro=debian-12"]
    assert curl["hashes"] == [{"alg": "SHA-256", "content": H}]
    assert {"name": "buildtool:deb-filename", "value": "pool/main/c/curl/curl_7.88.1-10+deb12u14_amd64.deb"} in curl["properties"]
    assert comps["pkg:pypi/numpy@2.4.6"]["hashes"] == [{"alg": "SHA-256", "content": H}]
    assert "hashes" not in comps["pkg:pypi/setuptools@66.1.1"]  # venv-seeded: no wheel in the lock
    assert doc.packages == 6 and data["metadata"]["component"]["purl"].startswith("pkg:oci/img@sha256")
    deps = {d["ref"]: d.get("dependsOn", []) for d in data["dependencies"]}
    assert curl["bom-ref"] in deps["layer:debian12.sys"]  # the layer the lock says installed it
    assert "pkg:pypi/numpy@2.4.6" in deps["layer:debian12.sys.py"]
    assert "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12" in deps["layer:debian12"]  # the base's own
    assert set(deps["image:img"]) >= {"layer:debian12", "layer:debian12.sys", "layer:debian12.sys.py"}
    base = comps["layer:debian12"]
    assert base["type"] == "operating-system" and {"name": "buildtool:snapshot-time", "value": "20261201T120000Z"} in base["properties"]


def test_a_broken_sbom_fails_the_library_validation():
    text = sbom.build(_facts(), _inventory()).text
    data = json.loads(text)
    data["components"][0]["type"] = "not-a-type"
    assert sbom.validate(json.dumps(data)) is not None
    data = json.loads(text)
    del data["specVersion"]
    assert sbom.validate(json.dumps(data)) is not None


def _statement():
    facts = _facts((_deb("curl", "7.88.1-10+deb12u14"),), (PipPin("numpy", "2.4.6", H),))
    inputs = provenance.Inputs("c" * 64, "d" * 64, "0123abc", {"debian12": "sha256:" + "e" * 64, "debian12.sys": "sha256:" + "f" * 64},
                               "https://ci.invalid/builder", "20261201.v1", finished="2026-12-01T12:00:00.123456789Z")
    return provenance.build(facts, inputs, repository="reg.invalid/ns/img", digest="sha256:" + H)


def test_provenance_is_a_valid_slsa_v1_statement_naming_inputs_and_dependencies():
    st = _statement()
    assert provenance.validate(provenance.dumps(st)) is None
    bd = st["predicate"]["buildDefinition"]
    assert "buildtool=" in bd["buildType"]
    assert bd["externalParameters"]["images.lock"] == {"sha256": "d" * 64} and bd["externalParameters"]["node"] == "debian12.sys.py"
    uris = {d["uri"] for d in bd["resolvedDependencies"]}
    assert "http://deb.debian.org/debian/pool/main/c/curl/curl_7.88.1-10+deb12u14_amd64.deb" in uris
    assert "pkg:pypi/numpy@2.4.6" in uris and "http://deb.debian.org/debian" in uris  # the bootstrap recipe's mirror
    assert {"name": "layer debian12.sys", "uri": "buildtool/debian12.sys:h-" + "1" * 20, "digest": {"sha256": "f" * 64}} in bd["resolvedDependencies"]
    assert st["predicate"]["runDetails"]["builder"]["id"] == "https://ci.invalid/builder"


@pytest.mark.parametrize("breakage", [
    lambda s: s["predicate"]["buildDefinition"].update(extra=1),
    lambda s: s.update(predicateType="https://slsa.dev/provenance/v0.2"),
    lambda s: s["predicate"]["runDetails"]["builder"].update(id=""),
    lambda s: s.update(subject=[]),
    lambda s: s["predicate"]["buildDefinition"]["resolvedDependencies"][0].update(digest={"sha256": "xyz"}),
    lambda s: s["predicate"]["runDetails"]["metadata"].update(finishedOn="yesterday"),
])
def test_a_broken_provenance_fails_validation(breakage):
    st = _statement()
    breakage(st)
    assert provenance.validate(json.dumps(st)) is not None


def test_builder_id_from_site_then_ci_then_host():
    assert provenance.builder_id("https://site.invalid/b", {}) == "https://site.invalid/b"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_WORKFLOW_REF": "o/r/.github/workflows/w.yml@refs/heads/main"}
    assert provenance.builder_id(None, env) == "https://github.com/o/r/.github/workflows/w.yml@refs/heads/main"
    assert provenance.builder_id(None, {}).startswith("urn:buildtool:host:")


def test_referrers_tag_schema_as_the_spec_tabulates_it():
    assert referrers_tag("sha256:" + "a" * 64) == "sha256-" + "a" * 64
    assert referrers_tag("sha512:" + "a" * 128) == "sha512-" + "a" * 64
    odd = ("test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall+truncation:"
           "alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOfCharactersToExcerciseEncodedTruncation")
    assert referrers_tag(odd) == "test-algorithm-using-algorithm-s-alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot"


def test_artifact_manifest_and_the_referrers_index():
    subject = Descriptor("application/vnd.docker.distribution.manifest.v2+json", "sha256:" + H, 1234)
    body = artifact_manifest(subject, sbom.MEDIA_TYPE, b"{}", {"io.buildtool.attestation": "sbom"}, "sbom.cdx.json")
    m = json.loads(body)
    assert m["artifactType"] == sbom.MEDIA_TYPE and m["subject"] == {"mediaType": subject.media_type, "digest": subject.digest, "size": 1234}
    assert m["config"]["digest"] == sha256_digest(b"{}") == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    assert m["layers"][0]["digest"] == sha256_digest(b"{}") and m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    other = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "9" * 64, "size": 5,
             "artifactType": "application/vnd.dev.cosign.simplesigning.v1+json"}
    old = {**other, "digest": "sha256:" + "8" * 64, "artifactType": sbom.MEDIA_TYPE, "annotations": {"io.buildtool.attestation": "sbom"}}
    new = Descriptor("application/vnd.oci.image.manifest.v1+json", sha256_digest(body), len(body), sbom.MEDIA_TYPE, {"io.buildtool.attestation": "sbom"})
    index = json.loads(merged_index({"manifests": [other, old]}, new))
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [d["digest"] for d in index["manifests"]] == [other["digest"], new.digest]  # another tool's entry kept, buildtool's old SBOM replaced


def test_check_referrer_wants_the_subject_and_a_valid_document():
    digest = "sha256:" + H
    text = provenance.dumps(_statement()).encode()
    assert check_referrer("provenance", {"subject": {"digest": digest}}, text, digest) == []
    assert "its subject is" in check_referrer("provenance", {"subject": {"digest": "sha256:" + "0" * 64}}, text, digest)[0]
    assert check_referrer("provenance", {"subject": {"digest": "sha256:" + "0" * 64}}, text, "sha256:" + "0" * 64)[-1] == \
        "the statement's subject is not this digest"
    assert check_referrer("sbom", {"subject": {"digest": digest}}, b'{"bomFormat": "CycloneDX"}', digest)[0].startswith("not valid CycloneDX")


def test_parse_reference():
    assert parse_reference("127.0.0.1:5150/ns/img@sha256:" + H) == ("127.0.0.1:5150", "ns/img", None, "sha256:" + H)
    assert parse_reference("reg.invalid/ns/img:20261201.v1") == ("reg.invalid", "ns/img", "20261201.v1", None)
    for bad in ("img", "reg.invalid/ns/img", "reg.invalid/ns/img@sha256:xyz", "reg.invalid/NS/img:t"):
        with pytest.raises(UserError):
            parse_reference(bad)


def test_security_fixes_come_from_security_pockets_only():
    facts = _facts((_deb("openssl", "3.0.22-1~deb12u2", "debian-security"), _deb("curl", "7.81.0-1ubuntu1.20", "ubuntu", "jammy-security"),
                    _deb("tzdata", "2025b-0+deb12u2", "debian", "bookworm-updates"), _deb("libc6", "2.36-9+deb12u13", "debian")))
    pins = security_pins(facts)
    assert pins == {"openssl": ("3.0.22-1~deb12u2", "debian-security"), "curl": ("7.81.0-1ubuntu1.20", "jammy-security")}
    before = {"openssl": "3.0.21-1", "tzdata": "2025a-0", "libc6": "2.36-9+deb12u9", "curl": "7.81.0-1ubuntu1.20"}
    after = {"openssl": "3.0.22-1~deb12u2", "tzdata": "2025b-0+deb12u2", "libc6": "2.36-9+deb12u13", "curl": "7.81.0-1ubuntu1.20"}
    fixes = security_fixes(before, after, pins)
    assert [(f.name, f.before, f.after) for f in fixes] == [("openssl", "3.0.21-1", "3.0.22-1~deb12u2")]  # curl unchanged
    notes = render_notes("20261202.v1", "reg", "ns", "abc", [ImageNotes("img", "reg/ns/img", "sha256:" + "1" * 64, ["t"], {}, Manifest(after, {}),
                                                                       "20261201.v1", "sha256:" + "2" * 64, {}, Manifest(before, {}), pins)])
    assert "### Security fixes: 1 apt packages from a -security pocket" in notes
    assert "| openssl | 3.0.21-1 | 3.0.22-1~deb12u2 | debian-security |" in notes and "1 security fixes" in notes
