"""images.yaml `apt_repositories` + `extras`: the schema, which layer installs them, what is rendered, locked and verified.
(The real thing, a signed local repository through lock, build and verify: tests/integration/test_extras_repo.py.)"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fake_lock import fake_lock
from matrix_fixture import IMAGES_YAML, load

from buildtool.config.model import AptRepository
from buildtool.errors import UserError
from buildtool.lock.apt_sources import AptSource, fetch_roots
from buildtool.render.generate import generate
from buildtool.resolve import apt_resolve as ar
from buildtool.verify.checkplan import checks_for

KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZtest+/=\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n"


def _yaml(tmp_path: Path, on: str, *, sha: str | None = None, key: str = KEY, key_path: str = "keys/vendor.asc", repos: str = "[vendor]") -> str:
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "vendor.asc").write_text(key)
    digest = sha or hashlib.sha256(key.encode()).hexdigest()
    return IMAGES_YAML + f"""apt_repositories:
  vendor:
    url: "https://packages.example.invalid/debian/"
    suite: bookworm
    components: [main]
    key: {key_path}
    key_sha256: {digest}
extras:
  - on: {on}
    apt: [vendor-tool, zlib1g-dev]
    repositories: {repos}
"""


def _generated(tmp_path: Path, text: str):
    config = load(tmp_path, text)
    return config, generate(config, fake_lock(config))


def test_extras_go_into_the_layer_of_the_deepest_axis_named(tmp_path) -> None:
    config, g = _generated(tmp_path, _yaml(tmp_path, "{os: debian12, mpi: openmpi}"))
    with_extras = [n.id for n in g.dag.nodes.values() if n.extras]
    assert with_extras == ["debian12.sys.sys.openmpi"]
    node = g.rendered["debian12.sys.sys.openmpi"]
    files = dict(node.files)
    assert files["apt-vendor.sources"] == ("Types: deb\nURIs: https://packages.example.invalid/debian\nSuites: bookworm\nComponents: main\n"
                                           "Signed-By: /etc/apt/keyrings/buildtool-vendor.asc\n")
    assert files["apt-vendor.asc"] == KEY
    assert 'Pin: origin "packages.example.invalid"' in files["apt-vendor.pref"] and "Pin-Priority: 100" in files["apt-vendor.pref"]
    assert [line.split()[4] for line in files["extra-debs.lock"].splitlines() if not line.startswith("#")] == ["vendor-tool", "zlib1g-dev"]
    assert "vendor-tool" not in files["debs.lock"]  # the flavor's own .debs stay in their own file
    text = node.dockerfile
    assert "COPY --chmod=0644 apt-vendor.asc /etc/apt/keyrings/buildtool-vendor.asc" in text
    assert "source=extra-debs.lock" in text and text.index("source=debs.lock") < text.index("source=extra-debs.lock")
    # The other images on the layer above are untouched: same hash as without extras.
    (tmp_path / "plain").mkdir()
    _, plain = _generated(tmp_path / "plain", IMAGES_YAML)
    assert g.rendered["debian12.sys.sys"].hash == plain.rendered["debian12.sys.sys"].hash
    assert g.rendered["debian12.sys.sys.mpich"].hash == plain.rendered["debian12.sys.sys.mpich"].hash
    assert node.hash != plain.rendered["debian12.sys.sys.openmpi"].hash


def test_os_only_means_the_system_layer_and_the_check_names_the_locked_versions(tmp_path) -> None:
    config, g = _generated(tmp_path, _yaml(tmp_path, "{os: debian12}"))
    assert [n.id for n in g.dag.nodes.values() if n.extras] == ["debian12.sys"]
    checks = [c for c in checks_for(config, g.dag, g.rendered, "debian12.sys.sys.openmpi") if c.family == "extras"]
    assert len(checks) == 1 and checks[0].node == "debian12.sys"
    assert checks[0].params["packages"] == {"vendor-tool": "1.0-1", "zlib1g-dev": "1.0-1"}
    assert checks[0].params["repositories"][0]["sources"] == "/etc/apt/sources.list.d/buildtool-vendor.sources"


def test_a_layer_shared_with_an_image_the_entry_does_not_select_is_refused(tmp_path) -> None:
    # mpi: none installs nothing: the layer is the Python one, which the Open MPI images are built on too.
    with pytest.raises(UserError) as err:
        _generated(tmp_path, _yaml(tmp_path, "{os: debian12, mpi: none, onnxruntime: none, accelerator: cpu}"))
    text = str(err.value)
    assert "extras[0].on" in text and "debian12.sys.sys" in text and "images.yaml:" in text


@pytest.mark.parametrize(("kwargs", "key", "words"), [
    ({"sha": "f" * 64}, "apt_repositories.vendor.key_sha256", "does not have the sha256"),
    ({"key": "not a key\n"}, "apt_repositories.vendor.key", "not an ASCII-armored"),
    ({"key_path": "../outside.asc"}, "apt_repositories.vendor.key", "'..' may not leave"),
    ({"key_path": "keys/missing.asc"}, "apt_repositories.vendor.key", "cannot read the key file"),
    ({"repos": "[nope]"}, "extras[0].repositories[0]", "unknown apt repository"),
])
def test_bad_repositories_are_refused_with_file_line_and_key(tmp_path, kwargs, key, words) -> None:
    text = _yaml(tmp_path, "{os: debian12}", **kwargs)  # (a `key` is written to the file and its sha256 taken: only its form is wrong)
    with pytest.raises(UserError) as err:
        load(tmp_path, text)
    message = str(err.value)
    assert key in message and words in message and "images.yaml:" in message, message


def test_a_repository_key_may_not_take_a_distribution_archive_id(tmp_path) -> None:
    text = _yaml(tmp_path, "{os: debian12}").replace("apt_repositories:\n  vendor:", "apt_repositories:\n  debian:").replace("[vendor]", "[debian]")
    with pytest.raises(UserError, match="apt_repositories.debian"):
        load(tmp_path, text)


REPO = AptRepository("vendor", "https://packages.example.invalid/ubuntu/22.04/prod", "jammy", ("main",), "keys/v.asc", "a" * 64, KEY, 7)


def test_the_resolver_writes_the_repository_as_the_image_gets_it() -> None:
    sources = (AptSource("ubuntu", "http://archive.ubuntu.com/ubuntu", "jammy", ("main",)),)
    script = ar.resolver_script(sources, ["vendor-tool"], "", (REPO,))
    assert "cat > /etc/apt/keyrings/buildtool-vendor.asc <<'BUILDTOOL_FILE'" in script
    assert "Signed-By: /etc/apt/keyrings/buildtool-vendor.asc" in script
    assert script.index("BUILDTOOL_FILE") < script.index("apt-get update")


def test_a_refused_repository_is_said_in_words() -> None:
    stderr = ("W: GPG error: https://packages.example.invalid/ubuntu/22.04/prod jammy InRelease: NO_PUBKEY 0123\n"
              "E: The repository 'https://packages.example.invalid/ubuntu/22.04/prod jammy InRelease' is not signed.\n")
    said = ar.repository_refusal(stderr, (REPO,))
    assert said and "apt refused the third-party repository vendor" in said and "keys/v.asc" in said and "line 7" in said
    assert ar.repository_refusal("E: something else\n", (REPO,)) is None


def test_the_lock_names_the_repository_as_an_archive_and_keeps_its_index_out() -> None:
    sources = (AptSource("ubuntu", "http://archive.ubuntu.com/ubuntu", "jammy", ("main",)),)
    run = ar.AptRun(indexes=(("jammy", "1" * 64, "Mon, 01 Dec 2026", "archive.ubuntu.com_ubuntu_dists_jammy_InRelease"),
                             ("jammy", "2" * 64, "Tue, 02 Dec 2026", "packages.example.invalid_ubuntu_22.04_prod_dists_jammy_InRelease")),
                    manifest=(), sets={}, stanzas={})
    entry = ar.build_base_apt(run, sources, [], "20261201T000000Z", (REPO,))
    assert entry.archives == {"ubuntu": "http://archive.ubuntu.com/ubuntu", "vendor": REPO.url}
    assert [(i.suite, i.sha256) for i in entry.indexes] == [("jammy", "1" * 64)]
    assert ar.parse_uris(f"'{REPO.url}/pool/main/v/vendor-tool/vendor-tool_1.0_amd64.deb' vendor-tool_1.0_amd64.deb 10 ", entry.archives) == {
        "vendor-tool": ("vendor", "pool/main/v/vendor-tool/vendor-tool_1.0_amd64.deb")}


def test_a_snapshot_site_fetches_third_party_files_where_they_were_locked() -> None:
    from dataclasses import replace

    from buildtool.config.site import load_site

    site = replace(load_site(None, {}), apt_snapshot="https://snapshot.debian.org/archive/{archive}/{timestamp}")
    entry = ar.build_base_apt(ar.AptRun((), (), {}, {}), (AptSource("debian", "http://deb.debian.org/debian", "bookworm", ("main",)),), [],
                              "20261201T000000Z", (REPO,))
    roots = fetch_roots(entry, site)
    assert roots == {"debian": "https://snapshot.debian.org/archive/debian/20261201T000000Z", "vendor": REPO.url}


def test_the_extras_check_fails_on_a_version_other_than_the_locked_one() -> None:
    from buildtool.checks import CheckFailed, lookup
    from buildtool.checks.base import DPKG, Image, Result

    impl = lookup("extras", "extra-packages-python")
    params = {"packages": {"vendor-tool": "1.0-1", "vendor-data": "2.0-1"}, "requested": ["vendor-tool"],
              "repositories": [{"key": "vendor", "url": REPO.url, "keyring": REPO.keyring_path, "sources": "/etc/apt/sources.list.d/buildtool-vendor.sources"}]}
    sources = f"@@ /etc/apt/sources.list.d/buildtool-vendor.sources\n{REPO.sources_text()}"

    def image(dpkg: str, listed: str = sources) -> Image:
        return Image(entry={"image": "x", "tag": "t", "checks": []}, inspect={}, results={DPKG.key: Result(0, dpkg, ""),
                                                                                        "extras-sources": Result(0, listed, "")})

    assert [p.key for p in impl.probes(image(""), params)] == [DPKG.key, "extras-sources"]
    good = "vendor-tool\t1.0-1\tii \nvendor-data\t2.0-1\tii \n"
    assert "vendor-tool 1.0-1" in impl.evaluate(image(good), params)
    with pytest.raises(CheckFailed, match="vendor-data 2.0-2 \\(locked 2.0-1\\)"):
        impl.evaluate(image(good.replace("2.0-1", "2.0-2")), params)
    with pytest.raises(CheckFailed, match="vendor-tool not installed"):
        impl.evaluate(image("vendor-data\t2.0-1\tii \n"), params)
    with pytest.raises(CheckFailed, match="not signed-by"):
        impl.evaluate(image(good, sources.replace("Signed-By", "X-Signed-By-Not")), params)


def test_an_entry_that_selects_no_image_is_refused(tmp_path) -> None:
    with pytest.raises(UserError) as err:  # debian12 images use the system Python only (the fixture's exclude)
        _generated(tmp_path, _yaml(tmp_path, "{os: debian12, python: conda}"))
    assert "extras[0] selects no image" in str(err.value) and "extras[0].on" in str(err.value)
