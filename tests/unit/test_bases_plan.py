"""Pure logic of `buildtool bases`: the bootstrap plan, refs, scrubbing, state, and the make order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildtool.config.model import Base, Bootstrap
from buildtool.engine import base_results as R
from buildtool.engine import bases as B
from buildtool.engine import bootstrap as BS
from buildtool.engine import client as engine
from buildtool.engine.progress import human_size
from buildtool.errors import OperationError


def _base(key: str = "debian12", bootstrap: Bootstrap | None = None, image: str | None = None) -> Base:
    return Base(
        key=key, family="debian", version="12", codename="bookworm",
        image=image or "debian:bookworm-slim@sha256:" + "a" * 64,
        python="3.11.2", tag=key, bootstrap=bootstrap,
    )


BOOKWORM = Bootstrap("debootstrap", "bookworm", "http://deb.debian.org/debian", "minbase", ("main", "contrib"))


def test_debootstrap_command_from_recipe():
    plan = BS.bootstrap_plan(_base(bootstrap=BOOKWORM))
    assert plan is not None
    assert plan.command("/tmp/x/rootfs") == [
        "debootstrap", "--variant=minbase", "--components=main,contrib", "bookworm", "/tmp/x/rootfs", "http://deb.debian.org/debian",
    ]
    assert plan.sources_list() == "deb http://deb.debian.org/debian bookworm main contrib\n"
    assert plan.mirror == plan.recipe_mirror


def test_site_mirror_overrides_recipe_mirror_but_not_the_recipe_id():
    base = _base(bootstrap=BOOKWORM)
    plan = BS.bootstrap_plan(base, "http://mirror.example/debian/")
    assert plan is not None
    assert plan.command("/t")[-1] == "http://mirror.example/debian"
    assert plan.sources_list() == "deb http://mirror.example/debian bookworm main contrib\n"
    assert plan.recipe_mirror == "http://deb.debian.org/debian"
    # The local name stays the recipe's: the site overlay never changes what images build FROM.
    assert plan.local_ref == base.local_ref == f"buildtool/base-debian12:{base.recipe_id}"
    assert BS.recipe_record(base, plan)["mirror_used"] == "http://mirror.example/debian"
    assert "mirror_used" not in BS.recipe_record(base, BS.bootstrap_plan(base))


def test_no_recipe_no_plan():
    assert BS.bootstrap_plan(_base(key="ubuntu22.04")) is None


def test_unsupported_tool_is_an_operation_error():
    plan = BS.bootstrap_plan(_base(bootstrap=Bootstrap("debuerreotype", "bookworm", "http://deb.debian.org/debian", "minbase", ("main",))))
    assert plan is not None
    with pytest.raises(OperationError, match="debuerreotype"):
        plan.command("/t")


def test_import_changes_carry_cmd_path_and_labels():
    base = _base(bootstrap=BOOKWORM)
    plan = BS.bootstrap_plan(base)
    assert plan is not None
    changes = plan.import_changes()
    assert 'CMD ["/bin/bash"]' in changes
    assert any(c.startswith("ENV PATH=/usr/local/sbin:") for c in changes)
    assert f"LABEL io.buildtool.base.key={base.key}" in changes
    assert f"LABEL io.buildtool.base.recipe={base.recipe_id}" in changes
    assert "LABEL io.buildtool.base.suite=bookworm" in changes
    assert plan.labels()["io.buildtool.base.recipe"] == base.recipe_id


@pytest.mark.parametrize(("ref", "expected"), [
    ("buildtool/base-debian12:368e10e88830", ("buildtool/base-debian12", "368e10e88830")),
    ("127.0.0.1:5000/ns/img:1.0", ("127.0.0.1:5000/ns/img", "1.0")),
    ("127.0.0.1:5000/ns/img", ("127.0.0.1:5000/ns/img", "latest")),
    ("ubuntu", ("ubuntu", "latest")),
    ("ubuntu:22.04@sha256:" + "b" * 64, ("ubuntu", "sha256:" + "b" * 64)),
    ("nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04@sha256:" + "c" * 64, ("nvidia/cuda", "sha256:" + "c" * 64)),
    ("reg:5000/x@sha256:" + "d" * 64, ("reg:5000/x", "sha256:" + "d" * 64)),
])
def test_split_ref(ref, expected):
    assert engine.split_ref(ref) == expected


def test_digest_ref_drops_the_tag():
    assert B._digest_ref("debian:bookworm-slim@sha256:" + "a" * 64) == "debian@sha256:" + "a" * 64
    assert B._digest_ref("debian:bookworm-slim") == "debian:bookworm-slim"


def test_offline_and_pull_timeout_from_env():
    assert B.offline({"BUILDTOOL_OFFLINE": "1"}) and B.offline({"BUILDTOOL_OFFLINE": "true"})
    assert not B.offline({}) and not B.offline({"BUILDTOOL_OFFLINE": "0"})
    assert B.pull_timeout({}) == 20
    assert B.pull_timeout({"BUILDTOOL_PULL_TIMEOUT": "5"}) == 5
    assert B.pull_timeout({"BUILDTOOL_PULL_TIMEOUT": "soon"}) == 20


def test_table_and_sizes():
    rows = [
        R.BaseResult("debian12", "buildtool/base-debian12:abc", "bootstrapped", 31.24, 214_000_000, "sha256:" + "e" * 64),
        R.BaseResult("ubuntu22.04", "buildtool/base-ubuntu22.04:def", "failed", 0.01),
    ]
    table = R.render_table(rows).splitlines()
    assert table[0].split() == ["BASE", "STATUS", "SECONDS", "SIZE", "IMAGE", "ID", "LOCAL", "REF"]
    assert table[1].split()[:6] == ["debian12", "bootstrapped", "31.2", "214", "MB", "e" * 12]
    assert table[2].split()[:4] == ["ubuntu22.04", "failed", "0.0", "-"]
    assert human_size(3_500_000_000) == "3.50 GB"
    assert rows[0].row()["seconds"] == 31.2


def test_scrub_makes_the_rootfs_clean(tmp_path: Path):
    root = tmp_path / "rootfs"
    for rel in ("var/cache/apt/archives/partial", "var/lib/apt/lists/partial", "etc/apt/sources.list.d", "var/log/apt"):
        (root / rel).mkdir(parents=True)
    (root / "var/cache/apt/archives/libc6_2.36_amd64.deb").write_text("x")
    (root / "var/cache/apt/pkgcache.bin").write_text("x")
    (root / "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease").write_text("x")
    (root / "var/log/bootstrap.log").write_text("x")
    (root / "etc/resolv.conf").write_text("nameserver 10.0.0.1\n")
    (root / "etc/machine-id").write_text("1234\n")
    (root / "etc/apt/sources.list.d/debian.sources").write_text("Types: deb\n")
    plan = BS.bootstrap_plan(_base(bootstrap=BOOKWORM))
    assert plan is not None
    BS._scrub(str(root), plan)
    assert list((root / "var/cache/apt/archives").iterdir()) == [root / "var/cache/apt/archives/partial"]
    assert not (root / "var/cache/apt/pkgcache.bin").exists()
    assert [p.name for p in (root / "var/lib/apt/lists").iterdir()] == ["partial"]
    assert not (root / "var/log/bootstrap.log").exists()
    assert not (root / "etc/machine-id").exists()
    assert (root / "etc/resolv.conf").read_text() == ""
    assert (root / "etc/apt/sources.list").read_text() == plan.sources_list()
    assert list((root / "etc/apt/sources.list.d").iterdir()) == []


def test_state_merges_and_keeps_sorted_keys(tmp_path: Path):
    path = tmp_path / ".state" / "bases.json"
    base = _base(bootstrap=BOOKWORM)
    ok = R.BaseResult("debian12", base.local_ref, "bootstrapped", 30.0, 1000, "sha256:1", recipe=BS.recipe_record(base, None))
    R.save_state(path, [ok])
    failed = R.BaseResult("debian12", base.local_ref, "failed", 1.0, detail="boom")
    other = R.BaseResult("debian11", "buildtool/base-debian11:x", "present", 0.1, 2000, "sha256:2")
    R.save_state(path, [failed, other])
    text = path.read_text()
    state = json.loads(text)
    assert list(state) == ["debian11", "debian12"]
    assert state["debian12"]["status"] == "failed"
    assert state["debian12"]["image_id"] == "sha256:1"  # what was made before is not forgotten
    assert text == json.dumps(state, indent=2, sort_keys=True) + "\n"


def test_remove_rootfs_deletes_plain_trees(tmp_path: Path):
    d = tmp_path / "buildtool-base-x"
    (d / "rootfs/etc").mkdir(parents=True)
    (d / "rootfs/etc/os-release").write_text("x")
    BS._remove_rootfs(str(d))
    assert not d.exists()


# ----------------------------------------------------------------- the make order, with fakes for the edges


class _Recorder:
    def __init__(self) -> None:
        self.local: dict[str, str] = {}
        self.pull: str | Exception = OperationError("no such host")
        self.calls: list[tuple] = []
        self.bootstrapped: list[tuple] = []  # (base key, accept_drift, locked manifest) of each _bootstrap call


@pytest.fixture
def fake_edges(monkeypatch):
    rec = _Recorder()

    monkeypatch.setattr(engine, "image_id", lambda client, ref: rec.local.get(ref))

    def tag(client, image_id, ref):
        rec.calls.append(("tag", image_id, ref))
        rec.local[ref] = image_id

    monkeypatch.setattr(engine, "tag", tag)

    def pull(image, timeout):
        rec.calls.append(("pull", image, timeout))
        if isinstance(rec.pull, Exception):
            raise rec.pull
        return rec.pull

    monkeypatch.setattr(B, "_pull", pull)

    def bootstrap(client, plan, result, log_dir, base, accept_drift=False, locked_manifest=()):
        rec.calls.append(("bootstrap", plan.suite, plan.mirror))
        rec.bootstrapped.append((base.key, accept_drift, locked_manifest))
        result.status, result.image_id = "bootstrapped", "sha256:boot"

    monkeypatch.setattr(B, "bootstrap_base", bootstrap)
    monkeypatch.delenv("BUILDTOOL_OFFLINE", raising=False)
    return rec


def _make(base: Base, force: bool = False, tmp: Path = Path("/nonexistent"), accept_drift: bool = False,
          locked_manifest: tuple[str, ...] = ()) -> R.BaseResult:
    result = R.BaseResult(base.key, base.local_ref)
    B._make_base(None, base, BS.bootstrap_plan(base), force, result, tmp, accept_drift, locked_manifest)
    return result


def test_present_base_is_not_touched(fake_edges):
    base = _base(bootstrap=BOOKWORM)
    fake_edges.local[base.local_ref] = "sha256:old"
    r = _make(base)
    assert (r.status, r.image_id) == ("present", "sha256:old")
    assert fake_edges.calls == []


def test_force_bootstraps_again(fake_edges):
    base = _base(bootstrap=BOOKWORM)
    fake_edges.local[base.local_ref] = "sha256:old"
    r = _make(base, force=True)
    assert r.status == "bootstrapped"
    assert [c[0] for c in fake_edges.calls] == ["pull", "bootstrap"]


def test_pull_failure_falls_back_to_bootstrap(fake_edges):
    r = _make(_base(bootstrap=BOOKWORM))
    assert r.status == "bootstrapped"
    assert "no such host" in r.detail


def test_offline_skips_the_pull_when_there_is_a_recipe(fake_edges, monkeypatch):
    monkeypatch.setenv("BUILDTOOL_OFFLINE", "1")
    r = _make(_base(bootstrap=BOOKWORM))
    assert r.status == "bootstrapped"
    assert [c[0] for c in fake_edges.calls] == ["bootstrap"]


def test_pulled_image_is_tagged(fake_edges):
    fake_edges.pull = "sha256:pulled"
    base = _base(bootstrap=BOOKWORM)
    r = _make(base)
    assert (r.status, r.image_id) == ("pulled", "sha256:pulled")
    assert ("tag", "sha256:pulled", base.local_ref) in fake_edges.calls
    assert "bootstrap" not in [c[0] for c in fake_edges.calls]


def test_digest_image_already_local_needs_no_network(fake_edges):
    base = _base(key="ubuntu22.04", image="ubuntu:22.04@sha256:" + "b" * 64)
    fake_edges.local["ubuntu@sha256:" + "b" * 64] = "sha256:loaded"
    r = _make(base)
    assert (r.status, r.image_id) == ("pulled", "sha256:loaded")
    assert fake_edges.calls == [("tag", "sha256:loaded", base.local_ref)]


def test_no_recipe_and_no_pull_names_the_base(fake_edges):
    base = _base(key="ubuntu22.04", image="ubuntu:22.04@sha256:" + "b" * 64)
    with pytest.raises(OperationError) as exc:
        _make(base)
    msg = str(exc.value)
    assert msg.startswith("base ubuntu22.04 cannot be made here: pull of ubuntu:22.04@sha256:")
    assert "(no such host)" in msg and "no bootstrap recipe" in msg


# ----------------------------------------------------------------- locked bases: tagged by their manifest

STATUS = """\
Package: base-files
Status: install ok installed
Priority: required
Architecture: amd64
Version: 12.4+deb12u12
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.
 Version: 99 (a continuation line is not a field)

Package: dpkg
Status: install ok installed
Architecture: amd64
Version: 1.21.22

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: half-done
Status: install ok unpacked
Architecture: amd64
Version: 2.0-1

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2025b-0+deb12u1
"""


def _rootfs(tmp_path: Path, status: str = STATUS) -> Path:
    root = tmp_path / "rootfs"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(status, encoding="utf-8")
    return root


def test_debootstrap_command_with_keyring_and_script():
    plan = BS.bootstrap_plan(_base(bootstrap=BOOKWORM))
    assert plan is not None
    assert plan.command("/r", "/k/ubuntu.gpg", "/usr/share/debootstrap/scripts/gutsy") == [
        "debootstrap", "--variant=minbase", "--components=main,contrib", "--keyring=/k/ubuntu.gpg", "bookworm", "/r",
        "http://deb.debian.org/debian", "/usr/share/debootstrap/scripts/gutsy",
    ]
    assert "--no-check-gpg" not in plan.command("/r")


def test_rootfs_manifest_reads_only_installed_packages(tmp_path: Path):
    assert BS.rootfs_manifest(str(_rootfs(tmp_path))) == (
        "base-files 12.4+deb12u12 amd64",
        "dpkg 1.21.22 amd64",
        "tzdata 2025b-0+deb12u1 all",
    )


def test_manifest_changes_names_what_moved():
    locked = ("base-files 12.4+deb12u11 amd64", "dpkg 1.21.22 amd64", "gone 1 amd64")
    actual = ("base-files 12.4+deb12u12 amd64", "dpkg 1.21.22 amd64", "new 2 amd64")
    assert BS.manifest_changes(locked, actual) == [
        "base-files: 12.4+deb12u11 -> 12.4+deb12u12", "gone: 1 -> (absent)", "new: (absent) -> 2",
    ]
    assert BS.manifest_changes(actual, actual) == []


def test_the_manifest_is_part_of_the_base_tag():
    from dataclasses import replace

    from buildtool.lock.format import manifest_digest

    base = _base(bootstrap=BOOKWORM)
    one, two = ("base-files 12.4+deb12u11 amd64",), ("base-files 12.4+deb12u12 amd64",)
    ref_one, ref_two = BS.content_ref(base, one), BS.content_ref(base, two)
    assert ref_one != ref_two != base.local_ref
    assert ref_one == replace(base, content=manifest_digest(one)).local_ref
    assert ref_one.startswith("buildtool/base-debian12:")
    # the manifest's order does not matter, only what it holds
    assert BS.content_ref(base, ("b 1 amd64", "a 1 amd64")) == BS.content_ref(base, ("a 1 amd64", "b 1 amd64"))


def test_a_locked_bootstrapped_base_is_never_pulled(fake_edges):
    fake_edges.pull = "sha256:pulled"  # the upstream image would answer, but holds other packages
    base = _base(bootstrap=BOOKWORM)
    from dataclasses import replace

    locked = replace(base, content="c" * 64)
    r = _make(locked, accept_drift=True, locked_manifest=("dpkg 1.21.22 amd64",))
    assert r.status == "bootstrapped"
    assert [c[0] for c in fake_edges.calls] == ["bootstrap"]
    assert fake_edges.bootstrapped == [("debian12", True, ("dpkg 1.21.22 amd64",))]
    assert "pull" not in r.detail


def test_a_locked_base_without_a_recipe_still_pulls(fake_edges):
    from dataclasses import replace

    fake_edges.pull = "sha256:pulled"
    base = replace(_base(key="ubuntu22.04", image="ubuntu:22.04@sha256:" + "b" * 64), content="c" * 64)
    r = _make(base)
    assert (r.status, r.image_id) == ("pulled", "sha256:pulled")


@pytest.fixture
def fake_debootstrap(monkeypatch, tmp_path: Path):
    """_bootstrap with debootstrap, scrub and import faked: the 'rootfs' gets the status file in `rec['status']`."""
    rec: dict = {"status": STATUS, "tags": []}
    monkeypatch.setenv("BUILDTOOL_TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(BS.shutil, "which", lambda name: "/usr/sbin/" + name)

    def run_logged(argv, log, what, log_path):
        target = Path(argv[-2])
        (target / "var/lib/dpkg").mkdir(parents=True)
        (target / "var/lib/dpkg/status").write_text(rec["status"], encoding="utf-8")

    monkeypatch.setattr(BS, "_run_logged", run_logged)
    monkeypatch.setattr(BS, "_scrub", lambda target, plan: None)
    monkeypatch.setattr(BS, "_import", lambda target, plan, log, log_path: "sha256:imported")
    monkeypatch.setattr(engine, "image_size", lambda client, image: None)
    monkeypatch.setattr(engine, "tag", lambda client, image, ref: rec["tags"].append((image, ref)))
    return rec


def _bootstrap(base: Base, tmp_path: Path, **kw) -> R.BaseResult:
    plan = BS.bootstrap_plan(base)
    assert plan is not None
    result = R.BaseResult(base.key, base.local_ref)
    BS.bootstrap_base(None, plan, result, tmp_path / "logs" / "bases", base, **kw)
    return result


def test_bootstrap_tags_the_image_by_its_manifest(fake_debootstrap, tmp_path: Path):
    from dataclasses import replace

    from buildtool.lock.format import manifest_digest

    manifest = BS.rootfs_manifest(str(_rootfs(tmp_path)))
    base = replace(_base(bootstrap=BOOKWORM), content=manifest_digest(manifest))
    r = _bootstrap(base, tmp_path)
    assert (r.status, r.image_id, r.manifest, r.drift) == ("bootstrapped", "sha256:imported", manifest, [])
    assert fake_debootstrap["tags"] == [("sha256:imported", base.local_ref)]


def test_bootstrap_refuses_a_base_that_drifted_from_the_lock(fake_debootstrap, tmp_path: Path):
    from dataclasses import replace

    from buildtool.lock.format import manifest_digest

    locked = ("base-files 12.4+deb12u11 amd64", "dpkg 1.21.22 amd64", "tzdata 2025b-0+deb12u1 all")
    base = replace(_base(bootstrap=BOOKWORM), content=manifest_digest(locked))
    with pytest.raises(OperationError, match=r"other packages than images.lock records \(1 differ: base-files: 12.4\+deb12u11 -> 12.4\+deb12u12\)"):
        _bootstrap(base, tmp_path, locked_manifest=locked)
    assert fake_debootstrap["tags"] == [], "a drifted base is never tagged"

    r = _bootstrap(base, tmp_path, accept_drift=True, locked_manifest=locked)  # what `buildtool lock` does
    assert r.drift == ["base-files: 12.4+deb12u11 -> 12.4+deb12u12"]
    assert r.ref == BS.content_ref(base, r.manifest) != base.local_ref
    assert fake_debootstrap["tags"] == [("sha256:imported", r.ref)]
