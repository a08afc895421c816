"""A flavor that exists only here proves the registry drives everything downstream of the plan.

"rocm-like" is an accelerator flavor registered from this test: its own device kind ("amd"), its own
images-table column ("ROCm"), its own derived check, its own partial (carried inline), its own
executable context file. A small matrix goes expand -> plan -> render -> images table -> check plan ->
verify's device detection and the check session's docker flags -> serving's CPU leaves, and no module
under buildtool/ names the flavor or its kind.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from fake_lock import fake_lock

from buildtool import components
from buildtool.checks import FAMILIES, CheckImpl, lookup
from buildtool.checks.session import ImageSession
from buildtool.components import DEVICE_KINDS, FLAVORS, Check, Column, DeviceKind, Flavor, registered
from buildtool.components.base import dash
from buildtool.config.loader import load_config
from buildtool.config.schema import Version
from buildtool.render.generate import generate
from buildtool.serving import image as serving
from buildtool.verify import checkplan
from buildtool.verify import runner as verify

SHA = "a" * 64
AMD = DeviceKind("amd", ("--device", "/dev/kfd", "--device", "/dev/dri", "--group-add", "video"))

PARTIAL = """\
# ROCm {{ fields.rocm }} ({{ facts['accelerator.kind'] }}, for device kind {{ facts['accelerator.device'] }})
COPY --chmod=0755 rocm-ready /usr/local/bin/rocm-ready
RUN rocm-ready {{ fields.rocm }}
"""


class RocmLikeFlavor(Flavor):
    name = "rocm-like"
    axis = "accelerator"
    kind = "rocm"
    device = "amd"
    fields = {"rocm": Version()}
    required = ("rocm",)
    template_source = PARTIAL
    executables = frozenset({"rocm-ready"})
    columns = (Column("ROCm", lambda f: dash(f.get("accelerator.rocm"))),)

    def facts(self, component, base, apt_pins):
        return {"version": component.fields["rocm"], "rocm": component.fields["rocm"]}

    def env(self, component, facts):
        return {"HIP_VISIBLE_DEVICES": "all"}

    def context_files(self, component, facts):
        return {"rocm-ready": "#!/bin/sh\necho rocm \"$1\"\n"}

    def checks(self, component, facts):
        return (Check("rocm", "agent-visible", {"rocm": facts["accelerator.rocm"]}, device=self.device),)


IMAGES_YAML = f"""\
schema: 1
project: {{name: plugin-images, source: "https://example.invalid/x", licenses: MIT}}
system: {{user: app, uid: 1000, workdir: /home/app}}
bases:
  debian12:
    family: debian
    version: "12"
    codename: bookworm
    image: debian:bookworm-slim@sha256:{SHA}
    python: "3.11.2"
    tag: debian12
    bootstrap: {{tool: debootstrap, suite: bookworm, mirror: "http://deb.debian.org/debian"}}
components:
  python:
    sys: {{flavor: system-python, pip: "25.3", tag: "py{{version}}"}}
  mpi:
    none: {{flavor: none, tag: ""}}
  accelerator:
    cpu: {{flavor: none, tag: "cpu"}}
    cu128: {{flavor: cuda-wheels, cuda: "12.8.90", cudnn: "9.10.2.21", nccl: "2.27.3", wheels: {{nvidia-cuda-runtime-cu12: "12.8.90"}}, tag: "cuda{{cuda_mm}}"}}
    rocm62: {{flavor: rocm-like, rocm: "6.2.4", tag: "rocm{{rocm}}"}}
  onnxruntime:
    none: {{flavor: none, tag: ""}}
matrix:
  axes:
    os: [debian12]
    python: [sys]
    mpi: [none]
    accelerator: [cpu, cu128, rocm62]
    onnxruntime: [none]
  exclude: []
  rules:
    - id: rocm-on-a-venv
      reason: a property a plugin's rule names
      when: {{accelerator.kind: rocm}}
      require: {{python.venv: true}}
tags:
  image: "{{accelerator.tag}}-{{python.tag}}-{{os.tag}}"
default_group: all
groups:
  all:
    select: [{{}}]
"""

NODE = "debian12.sys.sys.rocm62"


def _shipped() -> tuple:
    return (dict(FLAVORS), dict(DEVICE_KINDS), components.table_columns(), components.flavors_for("accelerator"), dict(FAMILIES))


@pytest.fixture()
def plugin(tmp_path, monkeypatch):
    before = _shipped()
    family = SimpleNamespace(CHECKS={"agent-visible": CheckImpl(lambda image, params: [], lambda image, params: "ok", "an AMD agent")})
    monkeypatch.setitem(FAMILIES, "rocm", family)
    with registered(RocmLikeFlavor(), AMD):
        path = tmp_path / "images.yaml"
        path.write_text(IMAGES_YAML, encoding="utf-8")
        config = load_config(path, env={})
        yield config, generate(config, fake_lock(config))
    monkeypatch.undo()
    assert _shipped() == before  # the shipped registry is as it was


def test_no_stage_module_names_the_plugin():
    root = Path(__file__).resolve().parents[2] / "buildtool"
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "rocm-like" not in text and '"amd"' not in text, path


def test_matrix_renders_with_the_plugin(plugin):
    config, g = plugin
    names = {v.name for v in g.expansion.variants}
    assert names == {"cpu-py3.11.2-debian12", "cuda12.8-py3.11.2-debian12", "rocm6.2.4-py3.11.2-debian12"}
    r = g.rendered[NODE]
    assert "ENV HIP_VISIBLE_DEVICES=all\n\n# ROCm 6.2.4 (rocm, for device kind amd)\n" in r.dockerfile
    assert "COPY --chmod=0755 rocm-ready /usr/local/bin/rocm-ready\nRUN rocm-ready 6.2.4\n" in r.dockerfile
    assert 'io.buildtool.accelerator.flavor="rocm-like"' in r.dockerfile
    assert dict(r.files)["rocm-ready"].startswith("#!/bin/sh\n")
    assert r.mode("rocm-ready") == 0o755 and g.tree[f"nodes/{NODE}/rocm-ready"][1] == 0o755
    assert r.mode("debs.lock") == 0o644
    system = next(n for n in g.rendered if n.endswith(".sys") and n.count(".") == 1)
    assert g.rendered[system].mode("install-debs") == 0o755  # the system flavor's executables still are


def test_images_table_has_the_plugin_column(plugin):
    _, g = plugin
    header, rule, *rows = g.table.splitlines()
    assert header == "| image | group | OS | Python | MPI | CUDA | cuDNN | NCCL | ROCm | ONNX Runtime | node hash |"
    assert rule == "|---" * 11 + "|"
    cells = {row.split(" | ")[0].strip("| `"): row.split(" | ") for row in rows}
    assert cells["rocm6.2.4-py3.11.2-debian12"][5:9] == ["-", "-", "-", "6.2.4"]
    assert cells["cuda12.8-py3.11.2-debian12"][5:9] == ["12.8.90", "9.10.2.21", "2.27.3", "-"]
    assert cells["cpu-py3.11.2-debian12"][5:9] == ["-", "-", "-", "-"]


def test_check_plan_names_the_device_kind(plugin):
    config, g = plugin
    planned = {c.id: c for c in checkplan.checks_for(config, g.dag, g.rendered, NODE)}
    assert planned["rocm/agent-visible"].device == "amd" and planned["rocm/agent-visible"].tier == "gpu"
    assert planned["rocm/agent-visible"].params == {"rocm": "6.2.4"}
    assert planned["python/python-version"].device is None
    cuda = {c.id: c for c in checkplan.checks_for(config, g.dag, g.rendered, "debian12.sys.sys.cu128")}
    assert cuda["gpu/device-visible"].device == "nvidia"
    entry = checkplan.image_plan(config, g.dag, g.rendered, ["rocm6.2.4-py3.11.2-debian12"])[0]
    assert {c["id"]: c["device"] for c in entry["checks"]}["rocm/agent-visible"] == "amd"
    assert lookup("rocm", "agent-visible").doc == "an AMD agent"


def test_verify_tries_each_kind_with_its_own_flags(plugin, monkeypatch):
    config, g = plugin
    names = ["rocm6.2.4-py3.11.2-debian12", "cuda12.8-py3.11.2-debian12", "cpu-py3.11.2-debian12"]
    plan = checkplan.image_plan(config, g.dag, g.rendered, names)
    runs: list[tuple[str, ...]] = []

    def fake_docker(*args, timeout=120):
        runs.append(args)
        ok = "/dev/kfd" in args  # this host has the AMD devices, not NVIDIA's
        return subprocess.CompletedProcess(args, 0 if ok else 125, "", "" if ok else "could not select device driver")

    monkeypatch.setattr(verify, "_docker", fake_docker)
    devices = verify.detect_devices("auto", plan, {e["image"]: True for e in plan})
    assert devices == {"amd": {"on": True, "reason": ""}, "nvidia": {"on": False, "reason": "no GPU: docker run --gpus all failed"}}
    tried = {a[a.index("--entrypoint") + 2]: a for a in runs}
    assert tried[plan[0]["tag"]][:8] == ("run", "--rm", "--device", "/dev/kfd", "--device", "/dev/dri", "--group-add", "video")
    assert tried[plan[1]["tag"]][:4] == ("run", "--rm", "--gpus", "all")
    assert verify.devices_summary(devices) == (True, "nvidia: no GPU: docker run --gpus all failed")

    rocm, cuda, cpu = (ImageSession(e, devices=devices) for e in plan)
    assert rocm.wanted() == {"amd"} and cuda.wanted() == set() and cpu.wanted() == set()
    cuda_check = next(c for c in cuda.entry["checks"] if c["id"] == "gpu/device-visible")
    assert cuda.evaluate(cuda_check).status == "not-run"
    assert cuda.evaluate(cuda_check).message == "no GPU: docker run --gpus all failed"


def test_serving_leaves_out_device_leaves(plugin):
    _, g = plugin
    leaves = [v.name for v in g.expansion.variants if serving.is_cpu_leaf(v)]
    assert leaves == ["cpu-py3.11.2-debian12"]


def test_registering_twice_or_an_unknown_kind_is_refused():
    with registered(RocmLikeFlavor(), AMD):
        with pytest.raises(ValueError):
            components.register(RocmLikeFlavor())
    with pytest.raises(KeyError):
        components.register(RocmLikeFlavor())  # "amd" is gone with the with-block
    assert "rocm-like" not in FLAVORS
    shipped = FLAVORS["system-python"]
    with pytest.raises(ValueError), registered(type("Twin", (RocmLikeFlavor,), {"name": "system-python"})()):
        pass
    assert FLAVORS["system-python"] is shipped  # a refused registration takes nothing away


def test_excludes_and_groups_name_flavor_properties(plugin, tmp_path):
    text = IMAGES_YAML.replace("  exclude: []\n", "  exclude:\n    - {accelerator.kind: rocm, python.venv: \"false\"}\n    - {accelerator.device: amd, python: sys}\n")
    text = text.replace("    select: [{{}}]\n".replace("{{}}", "{}"), "    select: [{accelerator.device: none}]\n")
    path = tmp_path / "props.yaml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path, env={})
    assert config.exclude[0].values == (("python", ()), ("accelerator", ("rocm62",)))  # no venv-less python here
    assert config.exclude[1].values == (("python", ("sys",)), ("accelerator", ("rocm62",)))
    assert config.groups["all"].select[0].values == (("accelerator", ("cpu",)),)


def test_an_unknown_property_value_names_the_known_ones(tmp_path):
    from buildtool.errors import UserError

    text = IMAGES_YAML.replace("rocm62: {flavor: rocm-like, rocm: \"6.2.4\", tag: \"rocm{rocm}\"}", "")
    text = text.replace("[cpu, cu128, rocm62]", "[cpu, cu128]").replace("  exclude: []\n", "  exclude:\n    - {accelerator.kind: rocm}\n")
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_config(path, env={})
    assert "unknown value 'rocm'" in str(caught.value) and "cuda, none" in str(caught.value)


def test_the_shipped_cuda_excludes_are_the_cuda_keys():
    config = load_config(Path(__file__).resolve().parents[2] / "images.yaml", env={})
    cuda = tuple(k for k in config.axes["accelerator"] if config.component("accelerator", k).flavor != "none")
    by_axis = [dict(sel.values) for sel in config.exclude]
    assert {"python": ("system-python",), "os": ("ubuntu22.04", "ubuntu24.04"), "accelerator": cuda} in by_axis
    assert {"mpi": ("mpich", "intelmpi"), "accelerator": cuda} in by_axis
