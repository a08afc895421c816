"""`buildtool lock`, the pure parts: dpkg version ordering and Packages parsing (debversion), what apt
prints in the resolver container (apt_resolve), which closure a layer installs (Lock.layer_debs),
the report of `lock --check` (lock.check.classify), pip reports, and an offline end-to-end lock.

What apt really resolves against a real signed archive is tested in tests/integration.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from buildtool.config.loader import load_config
from buildtool.engine import client as engine
from buildtool.errors import UserError
from buildtool.lock import debversion as dv
from buildtool.lock.apt_sources import AptSource
from buildtool.lock.check import check_lock, classify, render_report
from buildtool.lock.format import AptIndex, BaseApt, DebPin, Lock, PipPin, PipSet, bind_bases, dump_lock, install_key, load_lock, manifest_digest
from buildtool.render.generate import generate
from buildtool.resolve import apt as lock_apt
from buildtool.resolve import apt_resolve as ar
from buildtool.resolve import lock_command
from buildtool.resolve import pip as lr
from buildtool.resolve import uv as luv

ROOT = Path(__file__).resolve().parents[2]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- Debian version ordering (dpkg's verrevcmp) ------------------------------------------------


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
        ("3.0.22-1~deb12u2", "3.0.15-1~deb12u1", 1),
    ],
)
def test_compare_debian_versions(a: str, b: str, sign: int) -> None:
    result = dv.compare_debian_versions(a, b)
    assert (result > 0) - (result < 0) == sign
    back = dv.compare_debian_versions(b, a)
    assert (back > 0) - (back < 0) == -sign


def test_debian_sort_order() -> None:
    versions = ["1.0", "1.0-1", "1.0~beta", "1:0.9", "1.0+b1", "0.9.9"]
    ordered = sorted(versions, key=functools.cmp_to_key(dv.compare_debian_versions))
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
    assert list(dv.iter_packages(PACKAGES)) == [("fuse3", "3.14.0-4"), ("openmpi-bin", "4.1.4-3+b1"), ("openmpi-bin", "4.1.4-3")]


def test_candidates_pick_the_highest_version() -> None:
    best = dv.candidates(dv.iter_packages(PACKAGES))
    assert best == {"fuse3": "3.14.0-4", "openmpi-bin": "4.1.4-3+b1"}


# --- what apt prints: apt-get install -s ---------------------------------------------------------

SIMULATION = """\
NOTE: This is only a simulation!
      apt-get needs root privileges for real execution.
Inst libssl3 (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64])
Inst libc6 [2.36-9+deb12u9] (2.36-9+deb12u13 Debian:12.13/oldstable [amd64])
Inst tzdata (2025b-0+deb12u2 Debian:12.13/oldstable [all])
Inst libgcc-s1:amd64 (12.2.0-14+deb12u1 Debian:12.13/oldstable [amd64])
Conf libssl3 (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64])
Conf libc6 (2.36-9+deb12u13 Debian:12.13/oldstable [amd64])
Remv something-else [1.0-1]
"""


def test_parse_simulation_reads_installs_and_upgrades() -> None:
    assert ar.parse_simulation(SIMULATION) == {
        "libssl3": ("3.0.22-1~deb12u2", "amd64"),
        "libc6": ("2.36-9+deb12u13", "amd64"),  # an upgrade: the new version, not the one in [brackets]
        "tzdata": ("2025b-0+deb12u2", "all"),
        "libgcc-s1": ("12.2.0-14+deb12u1", "amd64"),  # the multiarch qualifier is not part of the name
    }


def test_parse_pockets_names_the_pocket_of_each_install_security_first() -> None:
    assert ar.parse_pockets(SIMULATION) == {"libssl3": "oldstable-security", "libc6": "oldstable", "tzdata": "oldstable", "libgcc-s1": "oldstable"}
    both = "Inst curl (7.81.0-1ubuntu1.20 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64])\n"
    assert ar.parse_pockets(both) == {"curl": "jammy-security"}


def test_parse_simulation_of_nothing_to_do_is_empty() -> None:
    assert ar.parse_simulation("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n") == {}


# --- what apt prints: apt-get --print-uris -------------------------------------------------------

ARCHIVES = {"debian": "http://deb.debian.org/debian", "debian-security": "http://security.debian.org/debian-security"}

URIS = "\n".join([
    # apt 2.6 prints an empty hash column: the line ends in a space
    "'http://security.debian.org/debian-security/pool/updates/main/o/openssl/libssl3_3.0.22-1%7edeb12u2_amd64.deb' "
    "libssl3_3.0.22-1~deb12u2_amd64.deb 2039888 ",
    "'http://deb.debian.org/debian/pool/main/g/glibc/libc6_2.36-9%2bdeb12u13_amd64.deb' libc6_2.36-9+deb12u13_amd64.deb 2757936 "
    "MD5Sum:0123456789abcdef0123456789abcdef",
    "'http://deb.debian.org/debian/pool/main/t/tzdata/tzdata_2025b-0%2bdeb12u2_all.deb' tzdata_2025b-0+deb12u2_all.deb 260864",
]) + "\n"


def test_parse_uris_matches_each_url_to_its_archive() -> None:
    assert ar.parse_uris(URIS, ARCHIVES) == {
        "libssl3": ("debian-security", "pool/updates/main/o/openssl/libssl3_3.0.22-1~deb12u2_amd64.deb"),  # %7e unquoted
        "libc6": ("debian", "pool/main/g/glibc/libc6_2.36-9+deb12u13_amd64.deb"),
        "tzdata": ("debian", "pool/main/t/tzdata/tzdata_2025b-0+deb12u2_all.deb"),
    }


def test_parse_uris_takes_the_archive_whose_url_is_a_whole_prefix() -> None:
    archives = {"a": "http://mirror.example/debian", "b": "http://mirror.example/debian-security/"}
    line = "'http://mirror.example/debian-security/pool/updates/main/c/curl/curl_7.88.1-10%2bdeb12u14_amd64.deb' curl_7.88.1-10+deb12u14_amd64.deb 316000 "
    assert ar.parse_uris(line, archives) == {"curl": ("b", "pool/updates/main/c/curl/curl_7.88.1-10+deb12u14_amd64.deb")}


def test_parse_uris_refuses_a_url_outside_the_archives() -> None:
    line = "'http://evil.example/debian/pool/main/c/curl/curl_1_amd64.deb' curl_1_amd64.deb 10 "
    with pytest.raises(ar.ResolveError, match="in none of the configured archives"):
        ar.parse_uris(line, ARCHIVES)


# --- the container's whole output -> a base's lock entry ------------------------------------------

SOURCES = (
    AptSource("debian", "http://deb.debian.org/debian", "bookworm", ("main",)),
    AptSource("debian", "http://deb.debian.org/debian", "bookworm-updates", ("main",)),
    AptSource("debian-security", "http://security.debian.org/debian-security", "bookworm-security", ("main",)),
)

# name -> (version, arch, archive id, pool filename, size)
DEBS = {
    "ca-certificates": ("20230311", "all", "debian", "pool/main/c/ca-certificates/ca-certificates_20230311_all.deb", 153000),
    "openssl": ("3.0.22-1~deb12u2", "amd64", "debian-security", "pool/updates/main/o/openssl/openssl_3.0.22-1~deb12u2_amd64.deb", 1430000),
    "libssl3": ("3.0.22-1~deb12u2", "amd64", "debian-security", "pool/updates/main/o/openssl/libssl3_3.0.22-1~deb12u2_amd64.deb", 2039888),
    "curl": ("7.88.1-10+deb12u14", "amd64", "debian", "pool/main/c/curl/curl_7.88.1-10+deb12u14_amd64.deb", 316000),
    "libc6": ("2.36-9+deb12u13", "amd64", "debian", "pool/main/g/glibc/libc6_2.36-9+deb12u13_amd64.deb", 2757936),
    "python3": ("3.11.2-1+b1", "amd64", "debian", "pool/main/p/python3-defaults/python3_3.11.2-1+b1_amd64.deb", 26000),
    "libpython3.11": ("3.11.2-6+deb12u6", "amd64", "debian", "pool/main/p/python3.11/libpython3.11_3.11.2-6+deb12u6_amd64.deb", 1987000),
}
# what apt would install for each requested set (names beyond the request are dependencies)
CLOSURES = {
    "ca-certificates curl": ["ca-certificates", "openssl", "libssl3", "curl"],
    "ca-certificates curl | python3": ["ca-certificates", "openssl", "libssl3", "curl", "libc6", "python3", "libpython3.11"],
}
CHAINS = [[("curl", "ca-certificates")], [("curl", "ca-certificates"), ("python3",)]]
MANIFEST = ["dpkg 1.21.22 amd64", "base-files 12.4+deb12u12 amd64", "libc6 2.36-9+deb12u9 amd64"]


def _inst(name: str) -> str:
    version, arch, archive, _, _ = DEBS[name]
    origin = "Debian-Security:12/oldstable-security" if archive == "debian-security" else "Debian:12.13/oldstable"
    old = "[2.36-9+deb12u9] " if name == "libc6" else ""  # libc6 is in the base: an upgrade
    return f"Inst {name} {old}({version} {origin} [{arch}])"


def _uri(name: str) -> str:
    version, arch, archive, filename, size = DEBS[name]
    url = f"{ARCHIVES[archive]}/{filename}".replace("~", "%7e").replace("+", "%2b")
    return f"'{url}' {filename.rsplit('/', 1)[1]} {size} "


def _stanza(name: str, **override: str) -> str:
    version, arch, _, filename, size = DEBS[name]
    fields = {"Package": name, "Version": version, "Filename": filename, "Size": str(size), "SHA256": sha(filename), **override}
    return "".join(f"{k}: {v}\n" for k, v in fields.items() if v)


def container_output(closures: dict[str, list[str]] = CLOSURES, stanzas: dict[str, str] | None = None, end: bool = True) -> str:
    """What resolver_script prints for CHAINS (numbered as name_sets numbers them), with some apt noise."""
    out = [
        "@@INDEXES",
        f"deb.debian.org_debian_dists_bookworm_InRelease {sha('release')} Sat, 10 Jan 2026 10:49:47 UTC",
        f"deb.debian.org_debian_dists_bookworm-updates_InRelease {sha('updates')} Mon, 01 Dec 2026 08:21:02 UTC",
        f"security.debian.org_debian-security_dists_bookworm-security_InRelease {sha('security')} Mon, 01 Dec 2026 12:00:09 UTC",
        "@@MANIFEST",
        *MANIFEST,
    ]
    for i, key in enumerate(sorted(closures)):
        out += [f"@@SET {i}", *(_inst(n) for n in closures[key]), f"@@URIS {i}", *(_uri(n) for n in closures[key])]
    names = sorted({n for c in closures.values() for n in c})
    out += ["@@SHOW", *(stanzas or {}).get("", "").splitlines(), *"".join((stanzas or {}).get(n, _stanza(n)) for n in names).splitlines()]
    if end:
        out.append("@@END")
    return "\n".join(out) + "\n"


def test_name_sets_are_the_cumulative_chain_prefixes_in_key_order() -> None:
    assert ar.name_sets(CHAINS) == ["ca-certificates curl", "ca-certificates curl python3"]
    assert sorted(CLOSURES) == [install_key(CHAINS[0]), install_key(CHAINS[1])]


def test_split_sections_reads_every_section() -> None:
    run = ar.split_sections("Reading package lists...\n" + container_output())
    assert run.indexes[0][:3] == ("bookworm", sha("release"), "Sat, 10 Jan 2026 10:49:47 UTC")
    assert [i[0] for i in run.indexes] == ["bookworm", "bookworm-updates", "bookworm-security"]
    assert run.manifest == tuple(MANIFEST)
    assert sorted(run.sets) == ["0", "1"]
    assert ar.parse_simulation(run.sets["1"][0])["python3"] == ("3.11.2-1+b1", "amd64")
    assert run.stanzas[("libssl3", "3.0.22-1~deb12u2")]["Filename"] == DEBS["libssl3"][3]


def test_split_sections_without_the_end_marker_is_an_error() -> None:
    with pytest.raises(ar.ResolveError, match="stopped before it finished"):
        ar.split_sections(container_output(end=False))


def test_build_base_apt_end_to_end() -> None:
    entry = ar.build_base_apt(ar.split_sections(container_output()), SOURCES, CHAINS, "20261201T120000Z")
    assert entry.archives == ARCHIVES
    assert entry.components == ("main",)
    assert entry.resolved_at == "20261201T120000Z"
    assert entry.indexes == (
        AptIndex("bookworm", "debian", "Sat, 10 Jan 2026 10:49:47 UTC", sha("release")),
        AptIndex("bookworm-security", "debian-security", "Mon, 01 Dec 2026 12:00:09 UTC", sha("security")),
        AptIndex("bookworm-updates", "debian", "Mon, 01 Dec 2026 08:21:02 UTC", sha("updates")),
    )
    assert entry.manifest == tuple(sorted(MANIFEST))
    assert entry.content == manifest_digest(MANIFEST)
    assert set(entry.packages) == set(DEBS)  # every .deb of every closure, once
    for name, (version, arch, archive, filename, size) in DEBS.items():
        pocket = "oldstable-security" if archive == "debian-security" else "oldstable"  # what apt's Inst line named
        assert entry.packages[name] == DebPin(name, version, arch, archive, filename, sha(filename), size, pocket)
    assert entry.installs == {key: tuple(sorted(names)) for key, names in CLOSURES.items()}
    text = dump_lock(Lock(path="images.lock", bases={"debian12": entry}))
    assert '"libssl3": {"arch": "amd64", "archive": "debian-security", "filename": "pool/updates/main/o/openssl/' in text


def test_build_base_apt_round_trips_through_the_lock_file(tmp_path: Path) -> None:
    entry = ar.build_base_apt(ar.split_sections(container_output()), SOURCES, CHAINS, "20261201T120000Z")
    path = tmp_path / "images.lock"
    path.write_text(dump_lock(Lock(path=str(path), bases={"debian12": entry})), encoding="utf-8")
    assert load_lock(path).bases == {"debian12": entry}


def test_build_base_apt_refuses_a_stanza_whose_filename_disagrees() -> None:
    moved = {"curl": _stanza("curl", Filename="pool/main/c/curl/curl_7.88.1-10+deb12u14_arm64.deb")}
    with pytest.raises(ar.ResolveError, match=r"curl 7.88.1-10\+deb12u14: apt fetches pool/main/c/curl/curl_7.88.1-10\+deb12u14_amd64.deb "
                                              r"but the index names pool/main/c/curl/curl_7.88.1-10\+deb12u14_arm64.deb"):
        ar.build_base_apt(ar.split_sections(container_output(stanzas=moved)), SOURCES, CHAINS, "20261201T120000Z")


@pytest.mark.parametrize("override", [{"SHA256": ""}, {"SHA256": "abc"}, {"Size": ""}])
def test_build_base_apt_refuses_a_stanza_without_sha256_or_size(override: dict[str, str]) -> None:
    broken = {"openssl": _stanza("openssl", **override)}
    with pytest.raises(ar.ResolveError, match=r"the index gives no SHA256 and Size for openssl 3.0.22-1~deb12u2"):
        ar.build_base_apt(ar.split_sections(container_output(stanzas=broken)), SOURCES, CHAINS, "20261201T120000Z")


def test_build_base_apt_refuses_a_package_apt_would_not_download() -> None:
    text = container_output().replace(_uri("curl") + "\n", "")
    with pytest.raises(ar.ResolveError, match="apt would install curl 7.88.1-10\\+deb12u14 but printed no download for it"):
        ar.build_base_apt(ar.split_sections(text), SOURCES, CHAINS, "20261201T120000Z")


def test_build_base_apt_refuses_a_requested_name_apt_installs_nothing_for() -> None:
    # ca-certificates already in the base: apt installs nothing for it, so no layer could pin it
    closures = {key: [n for n in names if n != "ca-certificates"] for key, names in CLOSURES.items()}
    with pytest.raises(ar.ResolveError, match="apt installs nothing for 'ca-certificates'"):
        ar.build_base_apt(ar.split_sections(container_output(closures)), SOURCES, CHAINS, "20261201T120000Z")


def test_resolver_script_asks_apt_for_each_name_set_in_order() -> None:
    script = ar.resolver_script(SOURCES, ar.name_sets(CHAINS), "/etc/apt/keyrings/site.gpg")
    assert "deb [signed-by=/etc/apt/keyrings/site.gpg] http://security.debian.org/debian-security bookworm-security main" in script
    assert script.index("echo '@@SET 0'") < script.index("echo '@@URIS 0'") < script.index("echo '@@SET 1'") < script.index("echo '@@END'")
    assert "apt-get install -s -y --no-install-recommends ca-certificates curl python3 " in script


# --- a layer installs its chain's closure minus its parent's ---------------------------------------


def _entry() -> BaseApt:
    return ar.build_base_apt(ar.split_sections(container_output()), SOURCES, CHAINS, "20261201T120000Z")


def test_layer_debs_is_the_chain_closure_minus_the_parents() -> None:
    lock = Lock(path="images.lock", bases={"debian12": _entry()})
    system = lock.layer_debs("debian12", CHAINS[0])
    assert [d.name for d in system] == ["ca-certificates", "curl", "libssl3", "openssl"]
    python = lock.layer_debs("debian12", CHAINS[1])
    assert [d.name for d in python] == ["libc6", "libpython3.11", "python3"]  # not what the system layer has
    assert python[0] == DebPin("libc6", *DEBS["libc6"][:4], sha(DEBS["libc6"][3]), DEBS["libc6"][4], "oldstable")
    # the order of names within a layer does not matter, only which they are
    assert lock.layer_debs("debian12", [("ca-certificates", "curl"), ("python3",)]) == python


def test_layer_debs_of_a_layer_that_asks_for_nothing_is_empty() -> None:
    lock = Lock(path="images.lock", bases={"debian12": _entry()})
    assert lock.layer_debs("debian12", CHAINS[0] + [()]) == ()
    assert lock.layer_debs("debian12", []) == ()


def test_layer_debs_names_a_closure_the_lock_lacks() -> None:
    lock = Lock(path="images.lock", bases={"debian12": _entry()})
    with pytest.raises(UserError, match="base 'debian12' has no resolved closure for 'ca-certificates curl \\| mpich'"):
        lock.layer_debs("debian12", [("curl", "ca-certificates"), ("mpich",)])
    with pytest.raises(UserError, match="no apt lock for base 'debian13'"):
        lock.layer_debs("debian13", CHAINS[0])


def test_two_manifests_give_two_base_tags(fixtures_dir: Path) -> None:
    """What a base contains is part of its tag: bind_bases puts the lock's manifest digest into Base.content."""
    config = load_config(fixtures_dir / "minimal" / "images.yaml", None, {})
    entry = _entry()
    one = bind_bases(config, Lock(path="a", bases={"debian12": entry})).bases["debian12"]
    two = bind_bases(config, Lock(path="b", bases={"debian12": replace(entry, manifest=entry.manifest + ("tzdata 2025b-0+deb12u2 all",))})).bases["debian12"]
    assert one.content == entry.content and two.content != one.content
    assert one.local_ref != two.local_ref
    assert one.recipe_id == two.recipe_id  # the same recipe: only the content differs
    unlocked = bind_bases(config, Lock(path="c")).bases["debian12"]
    assert unlocked.content == "" and unlocked.local_ref not in (one.local_ref, two.local_ref)
    assert bind_bases(config, Lock(path="d", bases={"debian12": replace(entry, manifest=())})).bases["debian12"] == unlocked


# --- lock --check: stale, security, outdated ----------------------------------------------------------

ROOTS = {"debian": "http://deb.debian.org/debian", "debian-security": "http://security.debian.org/debian-security"}


def _pin(name: str, version: str, archive: str = "debian") -> DebPin:
    filename = f"pool/main/{name[0]}/{name}/{name}_{version}_amd64.deb"
    return DebPin(name, version, "amd64", archive, filename, sha(filename), 1000)


def _check_entry() -> BaseApt:
    pins = [_pin("libssl3", "3.0.15-1~deb12u1", "debian-security"), _pin("tzdata", "2025a-0+deb12u1"), _pin("curl", "7.88.1-10+deb12u12"),
            _pin("gone", "1.0-1"), _pin("newer-than-index", "4.0-2"), _pin("nowhere", "1.0-1"), _pin("both", "5.0-1")]
    return BaseApt(archives=dict(ROOTS), components=("main",),
                   indexes=(AptIndex("bookworm", "debian", "d", "a" * 64), AptIndex("bookworm-security", "debian-security", "d", "b" * 64),
                            AptIndex("bookworm-updates", "debian", "d", "c" * 64)),
                   resolved_at="20261201T000000Z", manifest=("dpkg 1.21.22 amd64",), packages={p.name: p for p in pins}, installs={})


POCKETS = {
    "bookworm": {"libssl3": "3.0.15-1~deb12u1", "tzdata": "2025b-0+deb12u1", "curl": "7.88.1-10+deb12u12", "gone": "1.0-1",
                 "newer-than-index": "4.0-1", "both": "5.0-3"},
    "bookworm-security": {"libssl3": "3.0.22-1~deb12u2", "both": "5.0-2"},
    "bookworm-updates": {"curl": "7.88.1-10+deb12u14"},
}


def test_classify_sorts_pins_into_stale_security_and_outdated() -> None:
    stale, security, outdated = classify("debian12", _check_entry(), _indexes(POCKETS), {"gone"}, ROOTS)
    assert [(p.package, p.locked, p.available, p.pocket, p.url) for p in stale] == [
        ("gone", "1.0-1", "1.0-1", "bookworm", "http://deb.debian.org/debian/pool/main/g/gone/gone_1.0-1_amd64.deb")]
    assert [(p.package, p.locked, p.available, p.pocket) for p in security] == [
        ("curl", "7.88.1-10+deb12u12", "7.88.1-10+deb12u14", "bookworm-updates"),
        ("libssl3", "3.0.15-1~deb12u1", "3.0.22-1~deb12u2", "bookworm-security"),
    ]
    assert [(p.package, p.locked, p.available, p.pocket) for p in outdated] == [
        ("both", "5.0-1", "5.0-3", "bookworm"),  # the newest across pockets counts: here the point release
        ("tzdata", "2025a-0+deb12u1", "2025b-0+deb12u1", "bookworm"),
    ]
    assert all(p.base == "debian12" for p in stale + security + outdated)


def test_classify_of_a_current_lock_reports_nothing() -> None:
    entry = _check_entry()
    current = {"bookworm": {n: p.version for n, p in entry.packages.items()}}
    assert classify("debian12", entry, _indexes(current), set(), ROOTS) == ([], [], [])


def _indexes(pockets: dict[str, dict[str, str]]) -> dict:
    from buildtool.lock.check import PocketIndex

    return {suite: PocketIndex(suite, dict(v), frozenset(v.items())) for suite, v in pockets.items()}


def test_check_lock_asks_for_every_pin_and_reads_every_pocket() -> None:
    from buildtool.config.model import Site

    entry = _check_entry()
    lock = Lock(path="images.lock", bases={"debian12": entry})
    site = Site(registry="", namespace="", ca_bundle=None, apt_mirror=None, pypi_index=None, credentials="env", source="test",
                apt_snapshot="https://snapshot.debian.org/archive/{archive}/{timestamp}")
    asked: list[str] = []
    read: list[str] = []

    def exists(url: str) -> bool:
        asked.append(url)
        return "/gone_" not in url

    def fetch(url: str) -> str:
        read.append(url)
        suite = url.split("/dists/", 1)[1].split("/", 1)[0]
        return "".join(f"Package: {n}\nVersion: {v}\n\n" for n, v in POCKETS[suite].items())

    report = check_lock(lock, site, exists=exists, fetch=fetch)
    snapshot = "https://snapshot.debian.org/archive/debian/20261201T000000Z"
    assert sorted(asked) == sorted(f"{snapshot if p.archive == 'debian' else snapshot.replace('/debian/', '/debian-security/')}/{p.filename}"
                                   for p in entry.packages.values())
    # what is new is read from the live archive (a snapshot's indexes say nothing about today)
    assert "http://deb.debian.org/debian/dists/bookworm-updates/main/binary-amd64/Packages.xz" in read and len(read) == 3
    assert report.checked == len(entry.packages)
    assert [p.package for p in report.stale] == ["gone"] and report.stale_bases() == ["debian12"]
    assert [p.package for p in report.security] == ["curl", "libssl3"]
    text = render_report(report)
    assert "1 stale" in text and "buildtool lock --refresh-stale" in text and "--base debian12" in text


# --- pip ---------------------------------------------------------------------------------------------


PYLOCK = """\
lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11"

[[packages]]
name = "Protobuf"
version = "7.36.2"
wheels = [
    { url = "https://files.example/p/protobuf-7.36.2-py3-none-any.whl", size = 1, hashes = { sha256 = "AAA" } },
    { url = "https://files.example/p/protobuf-7.36.2-cp310-abi3-manylinux2014_x86_64.whl", size = 1, hashes = { sha256 = "BBB" } },
]

[[packages]]
name = "nvidia_cudnn_cu12"
version = "9.10.2.21"
wheels = [{ url = "https://files.example/n/nvidia_cudnn_cu12-9.10.2.21-py3-none-manylinux_2_27_x86_64.whl", hashes = { sha256 = "CCC" } }]
""".replace("AAA", "a" * 64).replace("BBB", "b" * 64).replace("CCC", "c" * 64)


def test_pins_from_pylock_keeps_the_hash_of_the_wheel_that_installs() -> None:
    # the abi3 manylinux wheel outranks the pure one for CPython 3.11 (as pip and uv pick it); names are canonical
    assert luv.pins_from_pylock(PYLOCK, "3.11") == (PipPin("nvidia-cudnn-cu12", "9.10.2.21", "c" * 64), PipPin("protobuf", "7.36.2", "b" * 64))


def test_best_wheel_follows_the_tag_ranking_of_the_target_python() -> None:
    wheels = [{"url": f"https://x/{f}", "hashes": {"sha256": h * 64}} for f, h in (
        ("numpy-2.3.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "1"),
        ("numpy-2.3.1-cp311-cp311-manylinux_2_28_x86_64.whl", "2"),
        ("numpy-2.3.1-cp311-cp311-manylinux_2_34_x86_64.whl", "3"),  # needs glibc 2.34: never chosen
        ("numpy-2.3.1-cp311-cp311-musllinux_1_2_x86_64.whl", "4"),
        ("numpy-2.3.1-cp312-cp312-manylinux_2_28_x86_64.whl", "5"))]
    assert luv.best_wheel("numpy", wheels, "3.11")["hashes"]["sha256"] == "2" * 64
    assert luv.best_wheel("numpy", wheels[4:] + wheels[:1], "3.12")["hashes"]["sha256"] == "5" * 64
    with pytest.raises(luv.ResolveError, match="none of its wheels runs on CPython 3.9, manylinux_2_31"):
        luv.best_wheel("numpy", wheels, "3.9")


def test_pins_from_pylock_refuses_a_package_without_wheels_or_hash() -> None:
    with pytest.raises(luv.ResolveError, match="mpi4py 4.1.2 without a wheel"):
        luv.pins_from_pylock('[[packages]]\nname = "mpi4py"\nversion = "4.1.2"\nsdist = { url = "https://x/mpi4py-4.1.2.tar.gz" }\n', "3.11")
    with pytest.raises(luv.ResolveError, match="no sha256 for the pip wheel"):
        luv.pins_from_pylock('[[packages]]\nname = "pip"\nversion = "25.3"\nwheels = [{ url = "https://x/pip-25.3-py3-none-any.whl" }]\n', "3.11")
    with pytest.raises(luv.ResolveError, match="unreadable pylock.toml"):
        luv.pins_from_pylock("[[packages]\n", "3.11")


def test_preferences_file_round_trips_through_the_pylock_reader() -> None:
    text = luv.pylock_preferences(("numpy==2.3.1", "packaging==26.3"))
    assert tomllib.loads(text)["packages"] == [{"name": "numpy", "version": "2.3.1"}, {"name": "packaging", "version": "26.3"}]


def test_new_pins_drop_only_identical_inherited_pins() -> None:
    pins = (PipPin("numpy", "2.3.1", "a" * 64), PipPin("onnxruntime", "1.23.2", "b" * 64), PipPin("pip", "25.3", "c" * 64))
    kept = luv.new_pins(pins, ("numpy==2.3.1", "pip==25.2"))
    assert [p.name for p in kept] == ["onnxruntime", "pip"]


def test_uv_command_binary_only_for_the_target_python_and_platform(tmp_path: Path) -> None:
    job = luv.UvJob(luv.PipRequest("3.9", ("mpi4py==4.1.2",), ("pip==25.3",)), ("mpi4py==4.1.1",), ("mpi4py",))
    cmd = luv.uv_command("/bin/uv", job, tmp_path)
    assert cmd[:3] == ["/bin/uv", "pip", "compile"] and cmd[-1] == str(tmp_path / "requirements.in")
    for flag, value in (("--python-version", "3.9"), ("--python-platform", "x86_64-manylinux_2_31"), ("--only-binary", ":all:"),
                        ("-c", str(tmp_path / "constraints.txt")), ("-o", str(tmp_path / "pylock.toml")), ("--format", "pylock.toml"),
                        ("--upgrade-package", "mpi4py")):
        assert cmd[cmd.index(flag) + 1] == value
    assert {"--no-config", "--generate-hashes", "--no-header", "--no-annotate"} <= set(cmd)
    assert not any("index" in arg for arg in cmd)  # the index (maybe with credentials) goes by environment only


def test_uv_environment_passes_index_and_ca_and_drops_host_uv_settings() -> None:
    host = {"PATH": "/bin", "UV_INDEX_URL": "https://elsewhere/simple", "UV_CONSTRAINT": "/etc/c.txt", "UV_CACHE_DIR": "/c",
            "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
    env = luv.uv_environment("https://u:s3cret@pypi.example/simple", None, host)
    assert env == {"PATH": "/bin", "UV_CACHE_DIR": "/c", "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
                   "UV_DEFAULT_INDEX": "https://u:s3cret@pypi.example/simple"}
    assert luv.uv_environment(lr.PYPI, "/site/ca.pem", host)["SSL_CERT_FILE"] == "/site/ca.pem"
    assert luv.uv_environment(lr.PYPI, None, {"PATH": "/bin"})["UV_SYSTEM_CERTS"] == "1"


def test_combined_bundle_is_the_host_bundle_then_the_sites(tmp_path: Path) -> None:
    host, site = tmp_path / "host.pem", tmp_path / "site.pem"
    host.write_text("HOST CA\n")
    site.write_text("SITE CA\n")
    out = luv.combined_bundle(str(site), tmp_path, {"SSL_CERT_FILE": str(host)})
    assert out is not None and Path(out).read_text() == "HOST CA\nSITE CA\n"
    assert luv.combined_bundle(None, tmp_path, {"SSL_CERT_FILE": str(host)}) is None


def test_redact_hides_index_credentials() -> None:
    index = "https://u:s3cret@pypi.example/simple"
    said = luv.redact(f"error: Failed to fetch {index}/numpy/ (user u, token s3cret)", index)
    assert said == "error: Failed to fetch https://***@pypi.example/simple/numpy/ (user u, token ***)"
    assert luv.redact("plain", lr.PYPI) == "plain"


def test_uv_reason_and_culprits_name_the_requirement() -> None:
    output = ("Resolved 2 packages in 3ms\nerror: No solution found when resolving dependencies\n  cause: Because nosuch-pkg was not found "
              "in the package registry and you require nosuch-pkg==1.0, we can conclude that your requirements are unsatisfiable.\n")
    reason = luv.uv_reason(output)
    assert reason.startswith("error: No solution found") and "Resolved" not in reason
    assert luv.culprits(("pip==25.3", "nosuch_pkg==1.0"), reason) == ("nosuch_pkg==1.0",)
    assert luv.culprits(("pip==25.3",), "error: network unreachable") == ("pip==25.3",)


# --- which sets a lock run resolves (incremental by default) ---------------------------------------------

OLD = luv.PipRequest("3.11", ("onnxruntime==1.23.2",), ("pip==25.3",))
OLD_SET = PipSet("3.11", OLD.requires, OLD.constraints, (PipPin("numpy", "2.3.1", "1" * 64), PipPin("onnxruntime", "1.23.2", "2" * 64),
                                                         PipPin("packaging", "26.3", "3" * 64)))
PREVIOUS = ("numpy==2.3.1", "onnxruntime==1.23.2", "packaging==26.3")


@pytest.mark.parametrize(
    ("found", "request_", "upgrade", "packages", "job"),
    [
        (OLD_SET, OLD, False, frozenset(), None),  # unchanged: kept byte-identical, uv not run
        (None, OLD, False, frozenset(), luv.UvJob(OLD)),  # missing: resolved fresh
        (OLD_SET, OLD, True, frozenset(), luv.UvJob(OLD)),  # --upgrade: fresh, no preferences
        (OLD_SET, replace(OLD, requires=("onnxruntime==1.24.1",)), False, frozenset(),
         luv.UvJob(replace(OLD, requires=("onnxruntime==1.24.1",)), PREVIOUS)),  # request changed: old pins preferred
        (OLD_SET, replace(OLD, constraints=("pip==25.4",)), False, frozenset(),
         luv.UvJob(replace(OLD, constraints=("pip==25.4",)), PREVIOUS)),  # an ancestor's pin moved
        (OLD_SET, OLD, False, frozenset({"packaging"}), luv.UvJob(OLD, PREVIOUS, ("packaging",))),  # pins it: only it moves
        (OLD_SET, OLD, False, frozenset({"onnxruntime", "torch"}), luv.UvJob(OLD, PREVIOUS, ("onnxruntime",))),  # requires it
        (OLD_SET, OLD, False, frozenset({"torch"}), None),  # does not contain it: untouched
    ],
)
def test_plan_job_decides_what_a_lock_run_resolves(found, request_, upgrade, packages, job) -> None:
    assert lr.plan_job(found, request_, upgrade, packages) == job


# --- offline end to end: apt's output and pip faked, the project's images.yaml ------------------------


def fake_apt_output(sources: tuple[AptSource, ...], chains: list[list[tuple[str, ...]]]) -> str:
    """What the resolver container would print if every requested name installed itself and one dependency."""
    main = sources[0]
    out = ["@@INDEXES", *(f"{main.url.split('//', 1)[1].replace('/', '_')}_dists_{s.suite}_InRelease {sha(s.suite)} Mon, 01 Dec 2026 00:00:00 UTC"
                          for s in sources), "@@MANIFEST", "base-files 1 amd64"]
    stanzas = {}
    for i, names in enumerate(ar.name_sets(chains)):
        debs = sorted({d for n in names.split() for d in (n, f"dep-of-{n}")})
        out.append(f"@@SET {i}")
        out += [f"Inst {d} (1.0-2 Archive:1/stable [amd64])" for d in debs]
        out.append(f"@@URIS {i}")
        for d in debs:
            filename = f"pool/main/{d[0]}/{d}/{d}_1.0-2_amd64.deb"
            out.append(f"'{main.url}/{filename}' {d}_1.0-2_amd64.deb 1000 ")
            stanzas[d] = f"Package: {d}\nVersion: 1.0-2\nFilename: {filename}\nSize: 1000\nSHA256: {sha(filename)}\n"
    out += ["@@SHOW", *"".join(stanzas[d] for d in sorted(stanzas)).splitlines(), "@@END"]
    return "\n".join(out) + "\n"


FAKE_PYPI = {"numpy": "2.0.0"}  # the newest numpy the fake uv finds


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The project's images.yaml (a copy: the lock writes logs beside it); apt and pip faked at their edges."""
    shutil.copy(ROOT / "images.yaml", tmp_path / "images.yaml")
    config = load_config(tmp_path / "images.yaml", None)
    resolved: list[tuple[str, int]] = []  # (image, name sets) of each resolver run

    def fake_resolve_base_apt(image, sources, chains, keyring=None, log=None):
        resolved.append((image, len(ar.name_sets(chains))))
        return ar.build_base_apt(ar.split_sections(fake_apt_output(sources, chains)), sources, chains, "20261201T000000Z")

    monkeypatch.setattr(lock_apt, "resolve_base_apt", fake_resolve_base_apt)
    monkeypatch.setattr(lock_apt, "_ensure_base_image", lambda client, config, base, old: f"image-of-{base.key}")
    monkeypatch.setattr(engine, "docker_client", lambda: None)
    monkeypatch.setattr(engine, "image_id", lambda client, ref: None)
    monkeypatch.setattr(engine, "tag", lambda client, image, ref: None)
    calls: list[luv.PipRequest] = []
    monkeypatch.setitem(FAKE_PYPI, "numpy", "2.0.0")

    def fake_uv(job: luv.UvJob, index_url: str, ca_bundle: str | None = None) -> tuple[PipPin, ...]:
        request = job.request
        calls.append(request)
        preferred = dict(p.split("==") for p in job.preferences)
        numpy = FAKE_PYPI["numpy"] if "numpy" in job.upgrade_packages else preferred.get("numpy", FAKE_PYPI["numpy"])
        pins = tuple(PipPin(r.split("==")[0], r.split("==")[1], "0" * 64) for r in request.requires) + (PipPin("numpy", numpy, "1" * 64),)
        return luv.new_pins(tuple(sorted(pins, key=lambda p: p.name)), request.constraints)

    monkeypatch.setattr(lr, "run_uv", fake_uv)
    return config, calls, resolved


def test_resolve_lock_offline_is_accepted_by_generate(offline, tmp_path: Path) -> None:
    config, calls, resolved = offline
    lock_path = tmp_path / "images.lock"
    assert lock_command.resolve_lock(config, lock_path, only=None, jobs=2)
    lock = load_lock(lock_path)
    generate(config, lock)  # every closure and pip set the render asks for is there, and none is stale
    assert sorted(lock.bases) == sorted(config.bases)
    amd64 = [c for c in calls if c.machine == "x86_64"]
    assert len(amd64) == len(set(amd64)) == len(lock.pip)  # identical sets across bases resolve once and are stored once
    # a whole lock covers linux/arm64 too: its sets resolved for aarch64 wheels, stored in its own section
    arm64 = [c for c in calls if c.machine == "aarch64"]
    assert arm64 and len(arm64) == len(lock.platforms["linux/arm64"].pip)
    assert any(len(s.nodes) > 1 for s in lock.pip.values())  # ... with every node that installs them
    for key, base in config.bases.items():
        entry = lock.bases[key]
        assert set(entry.versions().values()) == {"1.0-2"}
        assert any(n.startswith("dep-of-") for n in entry.packages)  # dependencies are locked with what asked for them
        assert entry.manifest == ("base-files 1 amd64",)
        # a base that cannot be bootstrapped here is resolved in a container of the one it names
        assert (f"image-of-{base.resolve_on or key}", len(entry.installs)) in resolved
    child = next(s for s in lock.pip.values() if s.constraints)
    assert "numpy" not in {p.name for p in child.pins}  # an ancestor already pins it


def test_relocking_one_base_keeps_the_others_byte_identical(offline, tmp_path: Path) -> None:
    config, _, resolved = offline
    lock_path = tmp_path / "images.lock"
    assert lock_command.resolve_lock(config, lock_path, only=None, jobs=2)
    before = load_lock(lock_path)
    key = next(k for k, b in config.bases.items() if b.bootstrap is not None)
    resolved.clear()
    assert lock_command.resolve_lock(config, lock_path, only="apt", jobs=1, bases=(key,), refreshed_because="pool files gone: x")
    after = load_lock(lock_path)
    assert [image for image, _ in resolved] == [f"image-of-{key}"]
    assert after.bases[key].refreshed and "automatic refresh (pool files gone: x)" in after.bases[key].refreshed[0]
    assert {k: v for k, v in after.bases.items() if k != key} == {k: v for k, v in before.bases.items() if k != key}
    assert after.pip == before.pip


def test_lock_only_pip_is_incremental_and_upgrade_package_moves_just_that_package(offline, tmp_path: Path, capsys) -> None:
    config, calls, _ = offline
    lock_path = tmp_path / "images.lock"
    assert lock_command.resolve_lock(config, lock_path, only=None, jobs=2)
    first = lock_path.read_text()
    calls.clear()
    assert lock_command.resolve_lock(config, lock_path, only="pip", jobs=2)  # nothing changed: uv is not run, not a byte moves
    assert calls == [] and lock_path.read_text() == first

    FAKE_PYPI["numpy"] = "2.0.1"  # a newer numpy appeared; a plain run still moves nothing
    assert lock_command.resolve_lock(config, lock_path, only="pip", jobs=2)
    assert calls == [] and lock_path.read_text() == first

    assert lock_command.resolve_lock(config, lock_path, only="pip", jobs=2, upgrade_packages=("NumPy",))
    after = lock_path.read_text()
    old_lines, new_lines = first.splitlines(), after.splitlines()
    assert len(old_lines) == len(new_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines) if a != b]
    assert changed and all("numpy" in a and "numpy" in b for a, b in changed)  # only numpy's lines (pins, and children's constraints)
    assert all(a.replace("2.0.0", "2.0.1") == b for a, b in changed)
    numpy = [p.version for s in load_lock(lock_path).pip.values() for p in s.pins if p.name == "numpy"]
    assert numpy and set(numpy) == {"2.0.1"}
    assert "--upgrade-package numpy: re-resolved" in capsys.readouterr().out


def test_upgrade_package_of_a_package_no_set_has_moves_nothing_and_says_so(offline, tmp_path: Path, capsys) -> None:
    config, calls, _ = offline
    lock_path = tmp_path / "images.lock"
    assert lock_command.resolve_lock(config, lock_path, only="pip", jobs=2)
    first, calls[:] = lock_path.read_text(), []
    assert lock_command.resolve_lock(config, lock_path, only="pip", jobs=2, upgrade_packages=("torch",))
    assert calls == [] and lock_path.read_text() == first
    assert "warning: --upgrade-package torch: no pip set requires or pins it" in capsys.readouterr().err


def test_cli_upgrade_package_refuses_only_apt(capsys) -> None:
    from buildtool.cli.main import main

    assert main(["lock", "--config", str(ROOT / "images.yaml"), "--only", "apt", "--upgrade-package", "packaging"]) == 2
    assert "--upgrade-package moves pip pins" in capsys.readouterr().err


def test_lock_upgrade_re_resolves_every_set(offline, tmp_path: Path) -> None:
    config, calls, _ = offline
    lock_path = tmp_path / "images.lock"
    assert lock_command.resolve_lock(config, lock_path, only="pip", jobs=2)
    first = len(calls)
    calls.clear()
    FAKE_PYPI["numpy"] = "2.0.1"
    assert lock_command.resolve_lock(config, lock_path, only="pip", jobs=2, upgrade=True)
    assert len(calls) >= first  # every distinct set again (children see new constraints: maybe more distinct requests)
    assert '"version": "2.0.0"' not in lock_path.read_text()


def test_resolve_lock_keeps_the_sets_that_resolved_when_one_fails(offline, tmp_path: Path, monkeypatch, capsys) -> None:
    config, _, _ = offline
    real = luv.run_uv

    def failing(job: luv.UvJob, index_url: str, ca_bundle: str | None = None) -> tuple[PipPin, ...]:
        if any(r.startswith("onnxruntime") for r in job.request.requires):
            raise luv.ResolveError("error: No solution found when resolving dependencies\n  cause: Because there is no version of "
                                  "onnxruntime-gpu==1.24.4 and you require onnxruntime-gpu==1.24.4, we can conclude ...")
        return real(job, index_url, ca_bundle)

    monkeypatch.setattr(lr, "run_uv", failing)
    lock_path = tmp_path / "images.lock"
    assert not lock_command.resolve_lock(config, lock_path, only=None, jobs=2)
    err = capsys.readouterr().err
    # named at the images.yaml entry that asks for the pin (issue 14), then the set
    ort_line = next(i for i, t in enumerate(Path(config.path).read_text().splitlines(), 1) if t.strip().startswith("ort-cuda:"))
    assert (f"error: {config.path}:{ort_line}: components.onnxruntime.ort-cuda: the pip set of debian12.sys.system-python.cu128-cudnn9.ort-cuda "
            "(Python 3.11) did not resolve: requirement onnxruntime-gpu==1.24.4;") in err, err
    assert "Because there is no version of onnxruntime-gpu==1.24.4" in err
    assert "not resolved: the set of" not in err  # ONNX Runtime sets are leaves: nothing below them was skipped
    lock = load_lock(lock_path)  # written with what did resolve: one bad requirement keeps the others' work
    assert sorted(lock.bases) == sorted(config.bases)
    assert lock.pip and not any(r.startswith("onnxruntime") for s in lock.pip.values() for r in s.requires)


def test_a_set_below_a_failed_one_is_reported_and_not_resolved(offline, tmp_path: Path, monkeypatch, capsys) -> None:
    config, calls, _ = offline
    real = luv.run_uv

    def failing(job: luv.UvJob, index_url: str, ca_bundle: str | None = None) -> tuple[PipPin, ...]:
        if job.request.requires == ("pip==25.3",) and job.request.python == "3.11":
            raise luv.ResolveError("error: Request failed after 3 retries")
        return real(job, index_url, ca_bundle)

    monkeypatch.setattr(lr, "run_uv", failing)
    assert not lock_command.resolve_lock(config, tmp_path / "images.lock", only="pip", jobs=2)
    err = capsys.readouterr().err
    assert "components.python.system-python: the pip set of debian12.sys.system-python (Python 3.11) did not resolve: requirement pip==25.3;" in err
    assert "error: the pip set of debian12.sys.system-python.ort-cpu not resolved: the set of debian12.sys.system-python above it did not resolve" in err
    assert not any(c.constraints == ("pip==25.3",) and c.python == "3.11" for c in calls)  # nothing resolved against the missing pins


def test_resolve_lock_writes_nothing_when_apt_fails(offline, tmp_path: Path, monkeypatch, capsys) -> None:
    def unreachable(image, sources, chains, keyring=None, log=None):
        raise ar.ResolveError(f"apt in a container of {image} failed (exit 100):\n    E: Failed to fetch {sources[0].url}")

    monkeypatch.setattr(lock_apt, "resolve_base_apt", unreachable)
    config, _, _ = offline
    lock_path = tmp_path / "images.lock"
    assert not lock_command.resolve_lock(config, lock_path, only=None, jobs=1)
    assert not lock_path.exists()
    assert "error: apt: apt in a container of image-of-" in capsys.readouterr().err


def test_check_lock_off_snapshot_asks_only_for_pins_no_index_lists() -> None:
    from buildtool.config.model import Site

    entry = _check_entry()
    lock = Lock(path="images.lock", bases={"debian12": entry})
    site = Site(registry="", namespace="", ca_bundle=None, apt_mirror=None, pypi_index=None, credentials="env", source="test")
    asked: list[str] = []

    def exists(url: str) -> bool:
        asked.append(url)
        return "/gone_" not in url

    def fetch(url: str) -> str:
        suite = url.split("/dists/", 1)[1].split("/", 1)[0]
        listed = {n: v for n, v in POCKETS[suite].items() if n != "gone"}  # "gone" left the index
        return "".join(f"Package: {n}\nVersion: {v}\n\n" for n, v in listed.items())

    report = check_lock(lock, site, exists=exists, fetch=fetch)
    listed = {(n, v) for pocket in POCKETS.values() for n, v in pocket.items() if n != "gone"}
    unlisted = sorted(p.filename for n, p in entry.packages.items() if (n, p.version) not in listed)
    assert sorted(u.split("/", 3)[3].split("/", 1)[1] for u in asked) == unlisted and unlisted
    assert [p.package for p in report.stale] == ["gone"] and report.probed == len(unlisted)


def test_renaming_a_component_key_needs_no_new_lock(fixture_copy, cli) -> None:
    """Pip set ids follow what a set asks for, not component keys: the same lock serves the renamed matrix, same pins."""
    root = fixture_copy("minimal")
    config = root / "images.yaml"
    before = cli("list", "--config", config, "--group", "all", "--format", "json")
    assert before.code == 0, before.err
    text = config.read_text()
    config.write_text(text.replace("    ort-cpu: {flavor", "    onnxruntime-cpu: {flavor").replace("onnxruntime: [none, ort-cpu]", "onnxruntime: [none, onnxruntime-cpu]"))
    lock_text = (root / "images.lock").read_text()
    after = cli("validate", "--config", config)
    assert after.code == 0, after.err  # the node ids changed; the set ids did not
    assert cli("generate", "--config", config).code == 0
    requirements = sorted((root / "generated" / "nodes").glob("*onnxruntime-cpu/requirements.txt"))
    assert requirements and "onnxruntime==1.23.2 --hash=sha256:" in requirements[0].read_text()
    assert (root / "images.lock").read_text() == lock_text


def test_sets_that_ask_alike_are_one_set_with_every_node_that_installs_it() -> None:
    lock = load_lock(Path(__file__).resolve().parents[2] / "images.lock")
    users = [n for s in lock.pip.values() for n in s.nodes]
    assert len(users) == len(set(users))  # a node installs one set
    assert any(len(s.nodes) > 1 for s in lock.pip.values())  # e.g. the pip set of one Python line on two bases
