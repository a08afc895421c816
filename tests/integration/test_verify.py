"""`buildtool verify` against real images on a real engine.

The smoke images must have been built (`make build`, or `buildtool build`); a case whose
image is missing is skipped with the command that builds it, except the two that can make
their own small image from any built smoke image (CUDA libraries from PyPI, onnxruntime CPU).

Deliberately broken images, one test per case, each asserting that the matching check fails
(and, in the same run, passes on the intact image):
  - a wrong Python pin (the plan's pin altered)           -> python/python-version fails
  - fuse removed (FROM a built image, dpkg --purge)       -> fuse/fuse-present fails
  - libnccl removed (FROM a CUDA image, rm + ldconfig)    -> cuda checks fail
  - onnxruntime CPU where OpenVINO's provider is expected -> onnxruntime/provider-listed fails
Broken images are built with plain `DOCKER_BUILDKIT=1 docker build` from Dockerfiles written
into tmp_path, and removed at the end.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from buildtool.checks.session import RUN_LABEL
from buildtool.engine import client as engine

REPO = Path(__file__).resolve().parents[2]
CA_BUNDLE = Path(os.environ.get("BUILDTOOL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))

pytestmark = [pytest.mark.engine]


# Fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smoke(docker_ok):
    """The smoke group's plan entries (image name -> entry), with `built` telling which are on the engine."""
    from buildtool.config.loader import load_config
    from buildtool.lock.format import load_lock
    from buildtool.plan.expand import select
    from buildtool.render.generate import generate
    from buildtool.verify.runner import build_plan, image_present

    if not (REPO / "images.lock").exists():
        pytest.skip("no images.lock (run `buildtool lock`)")
    config = load_config(REPO / "images.yaml")
    g = generate(config, load_lock(REPO / "images.lock"))
    chosen = select(config, g.expansion.variants, None, ())
    plan = build_plan(config, g, [v.name for v in chosen])
    for entry in plan:
        entry["built"] = image_present(entry["tag"])
    return {e["image"]: e for e in plan}


def _has(entry: dict, check_id: str) -> bool:
    return any(c["id"] == check_id for c in entry["checks"])


def built_entry(smoke: dict, check_id: str | None = None) -> dict | None:
    """A built smoke image (with the given check, if any); the smallest plan first."""
    for entry in sorted(smoke.values(), key=lambda e: len(e["checks"])):
        if entry["built"] and (check_id is None or _has(entry, check_id)):
            return copy.deepcopy({k: v for k, v in entry.items() if k != "built"})
    return None


def need(smoke: dict, check_id: str | None = None) -> dict:
    entry = built_entry(smoke, check_id)
    if entry is None:
        what = f"with {check_id}" if check_id else "at all"
        pytest.skip(f"no built smoke image {what}: run `make build` (or `buildtool build`) first")
    return entry


class Images:
    """Builds throwaway images FROM real ones and removes them at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tags: list[str] = []
        self.suffix = secrets.token_hex(3)

    def build(self, name: str, dockerfile: str, network: bool = False, timeout: int = 1800) -> str:
        context = self.root / name
        context.mkdir(parents=True, exist_ok=True)
        (context / "Dockerfile").write_text(dockerfile, encoding="utf-8")
        tag = f"buildtool-verify-test/{name}:{self.suffix}"
        cmd = [engine.buildkit_cli(), "build", "-q", "--network", "host", "-t", tag]
        if network and CA_BUNDLE.exists():
            cmd += ["--secret", f"id=ca-bundle,src={CA_BUNDLE}"]
        done = subprocess.run([*cmd, str(context)], capture_output=True, text=True, timeout=timeout, env={**os.environ, "DOCKER_BUILDKIT": "1"})
        assert done.returncode == 0, f"docker build {name} failed:\n{done.stderr[-3000:]}"
        self.tags.append(tag)
        return tag

    def remove(self) -> None:
        if self.tags:
            subprocess.run([engine.docker_cli(), "rmi", "-f", *self.tags], capture_output=True)


@pytest.fixture(scope="session")
def images(tmp_path_factory, docker_ok):
    made = Images(tmp_path_factory.mktemp("broken-images"))
    yield made
    made.remove()


def verify(plan: list[dict], tmp_path: Path, **kw):
    from buildtool.verify.runner import verify_plan

    rc, summary = verify_plan(plan, tmp_path / "reports", jobs=2, **kw)
    left = subprocess.run([engine.docker_cli(), "ps", "-aq", "--filter", f"label={RUN_LABEL}={summary.run}"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "verify left containers behind"
    return rc, {i.image: i for i in summary.images}, summary


def status(outcome, check_id: str) -> tuple[str, str]:
    for c in outcome.checks:
        if c.check == check_id:
            return c.status, c.message
    raise AssertionError(f"{check_id} not in {[c.check for c in outcome.checks]}")


def renamed(entry: dict, suffix: str, tag: str | None = None) -> dict:
    out = copy.deepcopy(entry)
    out["image"] = f"{entry['image']}-{suffix}"
    if tag:
        out["tag"] = tag
    return out


def set_params(entry: dict, check_id: str, **params) -> None:
    for c in entry["checks"]:
        if c["id"] == check_id:
            c["params"].update(params)
            return
    raise AssertionError(f"{check_id} not in the plan of {entry['image']}")


# The real smoke images -------------------------------------------------------------------------------


def test_built_smoke_images_pass_through_the_cli(smoke, tmp_path, capsys):
    """`buildtool verify --format json` on every built smoke image: all checks that ran passed, GPU tier never 'passed'
    without a GPU, reports written, per-image checking time measured."""
    from buildtool.cli.main import main

    names = [name for name, e in smoke.items() if e["built"]]
    if not names:
        pytest.skip("no smoke image is built: run `make build` first")
    rc = main(["verify", "--config", str(REPO / "images.yaml"), "--filter", "name=" + ",".join(names), "--reports", str(tmp_path / "reports"),
               "--format", "json", "--jobs", "2"])
    data = json.loads(capsys.readouterr().out)
    failures = {i["image"]: [c for c in i["checks"] if c["status"] == "failed"] or i["error"] for i in data["images"] if not i["ok"]}
    assert rc == 0 and data["ok"], f"failed checks: {json.dumps(failures, indent=1)}"
    run_dir = Path(data["reports"])
    assert (run_dir / "junit.xml").exists() and (run_dir / "report.md").exists()
    for image in data["images"]:
        print(f"{image['image']}: {image['checking_seconds']:.2f} s of checking after the container started")
        assert image["checking_seconds"] < 30
        for c in image["checks"]:
            if c["tier"] == "gpu" and not data["gpu"]["run"]:
                assert c["status"] == "not-run" and c["message"].startswith("no GPU")


# Broken images: each must fail its matching check ----------------------------------------------------


def test_wrong_python_pin_fails_python_version(smoke, tmp_path):
    intact = need(smoke, "python/python-version")
    wrong = renamed(intact, "wrong-python")
    pin = next(c["params"]["version"] for c in intact["checks"] if c["id"] == "python/python-version")
    major, minor, *rest = pin.split(".")
    bad_pin = ".".join([major, str(int(minor) + 1), *rest])
    set_params(wrong, "python/python-version", version=bad_pin)
    rc, by_image, _ = verify([intact, wrong], tmp_path)
    assert rc != 0
    assert status(by_image[intact["image"]], "python/python-version")[0] == "passed"
    state, message = status(by_image[wrong["image"]], "python/python-version")
    assert state == "failed" and pin in message and bad_pin in message


def test_missing_fuse_fails_fuse_check(smoke, images, tmp_path):
    intact = need(smoke, "fuse/fuse-present")
    tag = images.build("no-fuse", f"""FROM {intact['tag']}
USER 0
RUN pkgs="$(dpkg-query -W -f '${{db:Status-Abbrev}} ${{Package}}\\n' 'fuse*' 'libfuse*' | awk '$1 == "ii" {{print $2}}')" \\
 && test -n "$pkgs" && dpkg --purge --force-depends $pkgs && ldconfig
USER {intact['uid']}
""")
    broken = renamed(intact, "no-fuse", tag)
    rc, by_image, _ = verify([intact, broken], tmp_path)
    assert rc != 0
    assert status(by_image[intact["image"]], "fuse/fuse-present")[0] == "passed"
    state, message = status(by_image[broken["image"]], "fuse/fuse-present")
    assert state == "failed" and "libfuse" in message


def _cuda_entry(smoke: dict, images: Images) -> dict:
    """A built smoke CUDA image, else the smallest CUDA image from PyPI wheels FROM a built smoke image."""
    entry = built_entry(smoke, "cuda/library-versions")
    if entry is not None:
        return entry
    base = need(smoke, "python/python-version")
    pins = {"cuda": "12.8.90", "cudnn": "9.10.2.21", "nccl": "2.27.3"}
    wheels = f"nvidia-cuda-runtime-cu12=={pins['cuda']} nvidia-cudnn-cu12=={pins['cudnn']} nvidia-nccl-cu12=={pins['nccl']}"
    tag = images.build("cuda-min", f"""FROM {base['tag']}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
USER 0
RUN --mount=type=secret,id=ca-bundle,target=/run/secrets/ca-bundle \\
    PIP_CERT=/run/secrets/ca-bundle pip install --no-cache-dir --no-deps --disable-pip-version-check {wheels} \\
 && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \\
 && ls -d "$site"/nvidia/*/lib > /etc/ld.so.conf.d/nvidia-wheels.conf && ldconfig
USER {base['uid']}
""", network=True)
    entry = renamed(base, "cuda-min", tag)
    entry["checks"] = [c for c in entry["checks"] if c["family"] in ("os", "system", "python")]
    entry["checks"] = [c for c in entry["checks"] if c["id"] not in ("python/pip-check", "system/image-config")]  # --no-deps
    entry["checks"] += [
        {"id": "cuda/libraries-resolvable", "family": "cuda", "name": "libraries-resolvable", "node": "test", "tier": "cpu",
         "params": {"libs": ["libcudart", "libcudnn", "libnccl"]}},
        {"id": "cuda/library-versions", "family": "cuda", "name": "library-versions", "node": "test", "tier": "cpu", "params": pins},
    ]
    return entry


@pytest.mark.network
def test_removed_libnccl_fails_cuda_checks(smoke, images, tmp_path):
    intact = _cuda_entry(smoke, images)
    tag = images.build("no-nccl", f"""FROM {intact['tag']}
USER 0
RUN test -n "$(find / -xdev -name 'libnccl*.so*' -print -quit)" \\
 && find / -xdev -name 'libnccl*.so*' -delete && ldconfig
USER {intact['uid']}
""")
    broken = renamed(intact, "no-nccl", tag)
    rc, by_image, _ = verify([intact, broken], tmp_path)
    assert rc != 0
    assert status(by_image[intact["image"]], "cuda/libraries-resolvable")[0] == "passed"
    assert status(by_image[intact["image"]], "cuda/library-versions")[0] == "passed"
    state, message = status(by_image[broken["image"]], "cuda/libraries-resolvable")
    assert state == "failed" and "libnccl" in message
    state, message = status(by_image[broken["image"]], "cuda/library-versions")
    assert state == "failed" and "libnccl" in message


@pytest.mark.network
def test_onnxruntime_without_expected_provider_fails(smoke, images, tmp_path):
    intact = built_entry(smoke, "onnxruntime/provider-listed")
    if intact is None or not any(c["params"].get("provider") == "CPUExecutionProvider" for c in intact["checks"] if c["id"] == "onnxruntime/provider-listed"):
        base = need(smoke, "python/python-version")
        tag = images.build("ort-cpu", f"""FROM {base['tag']}
USER 0
RUN --mount=type=secret,id=ca-bundle,target=/run/secrets/ca-bundle \\
    PIP_CERT=/run/secrets/ca-bundle pip install --no-cache-dir --disable-pip-version-check onnxruntime==1.23.2
USER {base['uid']}
""", network=True)
        intact = renamed(base, "ort-cpu", tag)
        intact["checks"] = [c for c in intact["checks"] if c["family"] in ("os", "python")]
        intact["checks"] += [
            {"id": f"onnxruntime/{name}", "family": "onnxruntime", "name": name, "node": "test", "tier": "cpu", "params": {"provider": "CPUExecutionProvider"}}
            for name in ("provider-listed", "tiny-model-cpu")]
    expects_openvino = renamed(intact, "expects-openvino")
    set_params(expects_openvino, "onnxruntime/provider-listed", provider="OpenVINOExecutionProvider")
    set_params(expects_openvino, "onnxruntime/tiny-model-cpu", provider="OpenVINOExecutionProvider")
    rc, by_image, _ = verify([intact, expects_openvino], tmp_path)
    assert rc != 0
    assert status(by_image[intact["image"]], "onnxruntime/provider-listed")[0] == "passed"
    assert status(by_image[intact["image"]], "onnxruntime/tiny-model-cpu")[0] == "passed"
    state, message = status(by_image[expects_openvino["image"]], "onnxruntime/provider-listed")
    assert state == "failed" and "OpenVINOExecutionProvider is not in get_available_providers()" in message
    assert status(by_image[expects_openvino["image"]], "onnxruntime/tiny-model-cpu")[0] == "failed"


def test_missing_image_is_an_error_not_a_pass(smoke, tmp_path):
    entry = need(smoke)
    ghost = renamed(entry, "ghost", "buildtool-verify-test/never-built:nope")
    rc, by_image, summary = verify([ghost], tmp_path)
    assert rc != 0 and not summary.ok
    assert "not on the engine" in by_image[ghost["image"]].error


def test_name_claiming_another_mpi_fails_name_matches_mpi(smoke, images, tmp_path):
    """AzureML-Containers#133: an image named openmpi4.1.0 that carried 3.1.2. A real image FROM a built smoke MPI
    image, named and labelled as an images.yaml with a literal MPI tag (`tag: "openmpi4.1.0"`) would name it, fails
    mpi/name-matches-mpi, while the intact image passes it."""
    import re

    intact = need(smoke, "mpi/name-matches-mpi")
    part = next(c["params"]["tag"] for c in intact["checks"] if c["id"] == "mpi/name-matches-mpi")
    carried = next(c["params"]["version"] for c in intact["checks"] if c["id"] == "mpi/mpirun-version")
    claim = "3.1.2" if carried.startswith("4.1.0") else "4.1.0"
    lying = re.sub(r"\d+(?:\.\d+)+", claim, part) if re.search(r"\d", part) else part + claim
    name = intact["image"].replace(part, lying, 1)
    tag = images.build("mpi-name-lies", f'FROM {intact["tag"]}\nLABEL io.buildtool.mpi.version="{claim}" org.opencontainers.image.title="{name}"\n')
    broken = copy.deepcopy(intact)
    broken.update(image=name, tag=tag)
    set_params(broken, "mpi/name-matches-mpi", tag=lying, claims=[claim])  # what a literal `tag: "openmpi4.1.0"` plans
    rc, by_image, _ = verify([intact, broken], tmp_path)
    assert rc != 0
    assert status(by_image[intact["image"]], "mpi/name-matches-mpi")[0] == "passed", status(by_image[intact["image"]], "mpi/name-matches-mpi")
    state, message = status(by_image[name], "mpi/name-matches-mpi")
    assert state == "failed" and f"says {claim}" in message and carried.split(".")[0] in message, message
    assert "mpirun --version" in message and "MPI_Get_library_version" in message, message
