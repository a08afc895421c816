"""Each check family's evaluation against fake probe results: it asserts against the pins, and its
failure message names what differs. No engine."""

from __future__ import annotations

import json

import pytest

from buildtool.checks import FAMILIES, UnknownCheck, conda, declared, fuse, hygiene, lookup, mpi, onnxruntime, python, system
from buildtool.checks import os as os_release
from buildtool.checks.base import CheckFailed, Image, Result
from buildtool.checks.linker import LDCONFIG, find_library, parse_ldconfig

MODELS = __import__("pathlib").Path(__file__).resolve().parents[1] / "images" / "models"


def image(results: dict[str, Result] | None = None, inspect: dict | None = None, checks=(), **entry) -> Image:
    base = {"image": "img", "tag": "buildtool/x:h-1", "user": "app", "uid": 1000, "checks": list(checks)}
    return Image(entry={**base, **entry}, inspect=inspect or {}, results=dict(results or {}), assets=MODELS)


def ok(stdout: str = "", rc: int = 0, stderr: str = "") -> Result:
    return Result(rc, stdout, stderr)


def run(family: str, name: str, img: Image, params: dict) -> str:
    impl = lookup(family, name)
    for probe in impl.probes(img, params):  # every probe a check asks for must be answered in these tests
        assert probe.key in img.results, f"test forgot probe {probe.key}"
    return impl.evaluate(img, params)


def test_registry_covers_every_family_the_components_emit():
    assert set(FAMILIES) == {"os", "system", "fuse", "python", "conda", "mpi", "cuda", "gpu", "onnxruntime", "extras", "labels", "hygiene", "declared"}
    with pytest.raises(UnknownCheck):
        lookup("mpi", "no-such-check")
    with pytest.raises(UnknownCheck):
        lookup("nope", "x")
    assert lookup("declared", "anything-users-name") is declared.DECLARED


OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'


def test_os_release():
    img = image({"os-release": ok(OS_RELEASE)})
    assert "bookworm" in run("os", "os-release", img, {"id": "debian", "version_id": "12"})
    with pytest.raises(CheckFailed, match="VERSION_ID='12'.*VERSION_ID='13'"):
        run("os", "os-release", img, {"id": "debian", "version_id": "13"})
    assert os_release.parse_os_release('ID="ubuntu"\nVERSION_ID="22.04"\n# c\n') == {"ID": "ubuntu", "VERSION_ID": "22.04"}


def test_non_root_user():
    inspect = {"Config": {"User": "1000", "WorkingDir": "/home/app", "Env": ["PATH=/opt/venv/bin:/usr/bin", "VIRTUAL_ENV=/opt/venv"]}}
    img = image({"whoami": ok("1000\napp\n/home/app\n")}, inspect)
    assert run("system", "non-root-user", img, {"user": "app"}) == "uid 1000 (app)"
    root = image({"whoami": ok("0\nroot\n/\n")}, inspect)
    with pytest.raises(CheckFailed, match="root"):
        run("system", "non-root-user", root, {"user": "app"})
    other = image({"whoami": ok("1000\nubuntu\n/\n")}, inspect)
    with pytest.raises(CheckFailed, match="'ubuntu'"):
        run("system", "non-root-user", other, {"user": "app"})
    no_user_line = image({"whoami": ok("1000\napp\n/\n")}, {"Config": {"User": ""}})
    with pytest.raises(CheckFailed, match="User"):
        run("system", "non-root-user", no_user_line, {"user": "app"})


def test_image_config_workdir_and_env():
    inspect = {"Config": {"WorkingDir": "/home/app", "Env": ["PATH=/opt/venv/bin:/usr/local/bin:/usr/bin", "VIRTUAL_ENV=/opt/venv"]}}
    img = image({"whoami": ok("1000\napp\n/home/app\n")}, inspect)
    params = {"workdir": "/home/app", "env": {"PATH": "/opt/venv/bin:$PATH", "VIRTUAL_ENV": "/opt/venv"}}
    run("system", "image-config", img, params)
    with pytest.raises(CheckFailed, match="PATH.*does not start with '/opt/conda/bin:'"):
        run("system", "image-config", img, {**params, "env": {"PATH": "/opt/conda/bin:$PATH"}})
    with pytest.raises(CheckFailed, match="WorkingDir is '/home/app', expected '/work'"):
        run("system", "image-config", img, {**params, "workdir": "/work"})


LDCONFIG_OUT = """3 libs found in cache `/etc/ld.so.cache'
\tlibfuse3.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libfuse3.so.3
\tlibfuse.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libfuse.so.2
\tlibcudnn_ops.so.9 (libc6,x86-64) => /opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib/libcudnn_ops.so.9
"""


def test_ldconfig_parsing_and_stems():
    cache = parse_ldconfig(LDCONFIG_OUT)
    assert find_library(cache, "libfuse3") == ["libfuse3.so.3"]
    assert find_library(cache, "libcudnn") == []  # libcudnn_ops is not libcudnn


def test_fuse_present_and_missing():
    img = image({LDCONFIG.key: ok(LDCONFIG_OUT), fuse.FUSERMOUNT.key: ok("fusermount3 /usr/bin/fusermount3\n")})
    assert "libfuse3.so.3" in run("fuse", "fuse-present", img, {})
    no_lib = image({LDCONFIG.key: ok("0 libs found\n"), fuse.FUSERMOUNT.key: ok("fusermount3 /usr/bin/fusermount3\n")})
    with pytest.raises(CheckFailed, match="no libfuse"):
        run("fuse", "fuse-present", no_lib, {})
    no_bin = image({LDCONFIG.key: ok(LDCONFIG_OUT), fuse.FUSERMOUNT.key: ok("")})
    with pytest.raises(CheckFailed, match="fusermount"):
        run("fuse", "fuse-present", no_bin, {})


def test_python_version_against_the_pin():
    img = image({python.PYTHON_VERSION.key: ok("/opt/venv/bin/python\nPython 3.11.2\n")})
    assert run("python", "python-version", img, {"version": "3.11.2"}) == "/opt/venv/bin/python: Python 3.11.2"
    with pytest.raises(CheckFailed, match=r"is 3\.11\.2, the pin is 3\.12\.0"):
        run("python", "python-version", img, {"version": "3.12.0"})
    missing = image({python.PYTHON_VERSION.key: ok("", rc=127)})
    with pytest.raises(CheckFailed, match="no `python` on PATH"):
        run("python", "python-version", missing, {"version": "3.11.2"})


def test_pip_check():
    pip_list = ok(json.dumps([{"name": "pip", "version": "25.3"}]))
    good = image({python.PIP_CHECK.key: ok("No broken requirements found.\n"), "pip-list": pip_list})
    run("python", "pip-check", good, {})
    bad = image({python.PIP_CHECK.key: ok("onnxruntime 1.24.4 requires numpy, which is not installed.\n", rc=1), "pip-list": pip_list})
    with pytest.raises(CheckFailed, match="requires numpy"):
        run("python", "pip-check", bad, {})


def test_conda():
    prefix = "/opt/conda"
    results = {conda.CONDA_VERSION.key: ok("conda 24.9.2\n"), conda.CONDA_INFO.key: ok(json.dumps({"root_prefix": prefix})),
               python.PYTHON_VERSION.key: ok("/opt/conda/bin/python\nPython 3.11.10\n"), conda.pkgs_probe(prefix).key: ok("/opt/conda/pkgs/urls.txt\n")}
    run("conda", "conda-version", image(results), {"version": "24.9.2", "prefix": prefix})
    results[conda.pkgs_probe(prefix).key] = ok("/opt/conda/pkgs/urls.txt\n/opt/conda/pkgs/numpy-2.1.0-py311h\n")
    results[python.PYTHON_VERSION.key] = ok("/usr/bin/python\nPython 3.11.10\n")
    with pytest.raises(CheckFailed) as err:
        run("conda", "conda-version", image(results), {"version": "24.11.0", "prefix": prefix})
    assert "the pin is 24.11.0" in str(err.value) and "not conda's" in str(err.value) and "pkgs" in str(err.value)


def test_mpi_version_match_rules():
    assert mpi.version_matches("mpirun (Open MPI) 4.1.4\n", "4.1.4", [])[0]
    assert mpi.version_matches("HYDRA build details:\n    Version:  4.0.2\n", "4.0.2", [])[0]
    intel = "Intel(R) MPI Library for Linux* OS, Version 2021.17 Build 20251113 (id: abc)\n"
    assert mpi.version_matches(intel, "2021.17.2", ["impi-rt 2021.17.2 (pip)"])[0]
    assert not mpi.version_matches(intel, "2021.17.2", [])[0]  # a shorter report needs the package db's word
    ok_, note = mpi.version_matches("mpirun (Open MPI) 4.1.4\n", "4.1.6", [])
    assert not ok_ and "4.1.4" in note and "4.1.6" in note


def test_mpi_checks():
    dpkg = ok("openmpi-bin\t4.1.4-3+b1\tii \nlibopenmpi3\t4.1.4-3+b1\tii \n")
    pip_list = ok(json.dumps([{"name": "mpi4py", "version": "4.1.2"}]))
    results = {"dpkg": dpkg, "pip-list": pip_list, mpi.MPIRUN_VERSION.key: ok("/usr/bin/mpirun\nmpirun (Open MPI) 4.1.4\n"),
               mpi.TWO_RANKS.key: ok("c1\nc1\n"), mpi.MPI4PY.key: ok("1 2 3 Open MPI v4.1.4\n0 2 3 Open MPI v4.1.4\n")}
    img = image(results)
    assert "4.1.4" in run("mpi", "mpirun-version", img, {"flavor": "openmpi", "version": "4.1.4"})
    assert "allreduce ok" in run("mpi", "two-rank-run", img, {"mpi4py": True})
    results[mpi.TWO_RANKS.key] = ok("", rc=1, stderr="mpirun has detected an attempt to run as root")
    with pytest.raises(CheckFailed, match="as root"):
        run("mpi", "two-rank-run", image(results), {"mpi4py": False})
    results[mpi.TWO_RANKS.key] = ok("c1\nc1\n")
    results[mpi.MPI4PY.key] = ok("0 1 1 x\n")
    with pytest.raises(CheckFailed, match="mpi4py ranks"):
        run("mpi", "two-rank-run", image(results), {"mpi4py": True})


def test_mpi_probes_pick_oversubscribe_at_run_time():
    assert "--oversubscribe" in mpi.TWO_RANKS.command and "Open MPI" in mpi.TWO_RANKS.command
    assert [p.key for p in lookup("mpi", "two-rank-run").probes(image(), {"mpi4py": False})] == [mpi.TWO_RANKS.key]


def test_every_mpi_launch_gets_a_private_tmpdir(tmp_path):
    """The launch probes run in parallel inside one container: each gets its own fresh TMPDIR, so
    Open MPI launches never share (or clean up under each other) a session directory in /tmp.
    Run for real with bash and a stand-in `mpirun` that reports the TMPDIR it got."""
    import subprocess

    fake = tmp_path / "mpirun"
    fake.write_text('#!/bin/bash\n[ "$1" = --version ] && { echo "mpirun (Open MPI) 4.1.4"; exit 0; }\n'
                    'echo "args=$* tmpdir=$TMPDIR"; test -d "$TMPDIR" && test -w "$TMPDIR"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    runs = [subprocess.run(["bash", "-c", probe.command], capture_output=True, text=True, env=env, timeout=30)
            for probe in (mpi.TWO_RANKS, mpi.TWO_RANKS, mpi.MPI4PY)]
    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr for r in runs]
    dirs = [r.stdout.split("tmpdir=")[1].strip() for r in runs]
    assert len(set(dirs)) == 3 and all(d.startswith(str(tmp_path) + "/") for d in dirs)
    assert "-n 2 --oversubscribe hostname" in runs[0].stdout


def _ort_results(providers, pip_rows, model_out=None, provider="CPUExecutionProvider"):
    img = image()
    results = {onnxruntime.ORT_INFO.key: ok(json.dumps({"version": "1.23.2", "providers": providers, "device": "CPU"})),
               "pip-list": ok(json.dumps(pip_rows))}
    if model_out is not None:
        results[onnxruntime.tiny_model_probe(img, provider).key] = ok(json.dumps(model_out))
    img.results = results
    return img


def test_onnxruntime_provider_listed():
    pip_rows = [{"name": "onnxruntime", "version": "1.23.2"}]
    img = _ort_results(["AzureExecutionProvider", "CPUExecutionProvider"], pip_rows)
    run("onnxruntime", "provider-listed", img, {"provider": "CPUExecutionProvider"})
    with pytest.raises(CheckFailed, match="OpenVINOExecutionProvider is not in get_available_providers"):
        run("onnxruntime", "provider-listed", img, {"provider": "OpenVINOExecutionProvider"})
    both = _ort_results(["CPUExecutionProvider"], pip_rows + [{"name": "onnxruntime-gpu", "version": "1.24.4"}])
    with pytest.raises(CheckFailed, match="side by side"):
        run("onnxruntime", "provider-listed", both, {"provider": "CPUExecutionProvider"})


def test_onnxruntime_tiny_model():
    spec = json.loads((MODELS / "tiny_linear.json").read_text())
    good = {"providers": ["OpenVINOExecutionProvider", "CPUExecutionProvider"], "y": spec["y"]}
    img = _ort_results([], [], good, "OpenVINOExecutionProvider")
    assert "2 rows match" in run("onnxruntime", "tiny-model-cpu", img, {"provider": "OpenVINOExecutionProvider"})
    fell_back = _ort_results([], [], {"providers": ["CPUExecutionProvider"], "y": spec["y"]}, "OpenVINOExecutionProvider")
    with pytest.raises(CheckFailed, match="fell back"):
        run("onnxruntime", "tiny-model-cpu", fell_back, {"provider": "OpenVINOExecutionProvider"})
    wrong = [row[:] for row in spec["y"]]
    wrong[1][2] += 0.5
    bad = _ort_results([], [], {"providers": ["CPUExecutionProvider"], "y": wrong})
    with pytest.raises(CheckFailed, match=r"y\[1\]\[2\]"):
        run("onnxruntime", "tiny-model-cpu", bad, {"provider": "CPUExecutionProvider"})


def test_tiny_model_probe_copies_the_model_and_passes_the_input():
    probe = onnxruntime.tiny_model_probe(image(), "CPUExecutionProvider")
    assert probe.files == (("tiny_linear.onnx", onnxruntime.MODEL_PATH),)
    assert (MODELS / "tiny_linear.onnx").stat().st_size > 0
    assert "InferenceSession" in probe.command and onnxruntime.MODEL_PATH in probe.command


def test_labels_superset():
    img = image(inspect={"Config": {"Labels": {"a": "1", "b": "2", "extra": "x"}}})
    run("labels", "labels-match", img, {"labels": {"a": "1", "b": "2"}})
    with pytest.raises(CheckFailed, match=r"2 of 3 labels differ: b='2', want '3'; c missing"):
        run("labels", "labels-match", img, {"labels": {"a": "1", "b": "3", "c": "4"}})


def test_hygiene():
    clean = image({hygiene.CACHES.key: ok(""), hygiene.SECRETS.key: ok(""), conda.pkgs_probe("/opt/venv").key: ok("")},
                  {"Config": {"Env": ["PATH=/usr/bin"]}})
    run("hygiene", "no-caches", clean, {"python_prefix": "/opt/venv"})
    run("hygiene", "no-build-secrets", clean, {})
    dirty = image({hygiene.CACHES.key: ok("apt-lists /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease\n"
                                          "pip-cache /root/.cache/pip/http-v2\n"),
                   hygiene.SECRETS.key: ok("run-secrets /run/secrets/ca-bundle\nsecret-file /usr/local/share/ca-bundle\n"),
                   conda.pkgs_probe("/opt/venv").key: ok("")},
                  {"Config": {"Env": ["PIP_INDEX_URL=https://u:p@mirror.example/simple", "SSL_CERT_FILE=/run/secrets/ca-bundle"]}})
    with pytest.raises(CheckFailed, match="apt lists left.*pip cache left"):
        run("hygiene", "no-caches", dirty, {"python_prefix": "/opt/venv"})
    with pytest.raises(CheckFailed) as err:
        run("hygiene", "no-build-secrets", dirty, {})
    text = str(err.value)
    assert "/run/secrets is not empty" in text and "/usr/local/share/ca-bundle" in text
    assert "PIP_INDEX_URL carries credentials" in text and "SSL_CERT_FILE=/run/secrets/ca-bundle" in text


def test_hygiene_probe_looks_for_secret_files_outside_etc_ssl():
    assert "-path /etc/ssl" in hygiene.SECRETS.command and "ca-bundle" in hygiene.SECRETS.command
    assert hygiene.SECRETS.user == "root" and hygiene.CACHES.user == "root"


def test_declared_command():
    params = {"kind": "command", "command": "getent passwd app | cut -d: -f7", "stdout": "^/bin/bash$"}
    probe = declared.command_probe(params)
    img = image({probe.key: ok("/bin/bash\n")})
    run("declared", "bash-is-default-shell", img, params)
    img = image({probe.key: ok("/bin/sh\n")})
    with pytest.raises(CheckFailed, match="does not match"):
        run("declared", "bash-is-default-shell", img, params)
    assert declared.command_problems({"command": "false", "exit": 1}, 1, "", "") == []
    assert declared.command_probe({"command": "id", "user": "root"}).user == "root"


def test_declared_file():
    params = {"kind": "file", "file": "/usr/bin/fusermount3", "mode": "4755", "owner": "root"}
    probe = declared.file_probe(params)
    run("declared", "f", image({probe.key: ok("4755 root root regular file\n")}), params)
    with pytest.raises(CheckFailed, match="mode 0755, expected 4755"):
        run("declared", "f", image({probe.key: ok("755 root root regular file\n")}), params)
    with pytest.raises(CheckFailed, match="does not exist"):
        run("declared", "f", image({probe.key: ok("missing\n")}), params)
    assert declared.file_problems({"file": "/x", "exists": False}, "missing") == []
    assert declared.file_problems({"file": "/x", "owner": "app:app"}, "644 app root regular file") == ["/x is owned by app:root, expected app:app"]


def test_declared_env_and_label():
    img = image(inspect={"Config": {"Env": ["LANG=C.UTF-8"], "Labels": {"k": "v"}}})
    run("declared", "e", img, {"kind": "env", "env": {"LANG": "C.UTF-8"}})
    with pytest.raises(CheckFailed, match="OMPI_MCA_x is not set"):
        run("declared", "e", img, {"kind": "env", "env": {"OMPI_MCA_x": "none"}})
    run("declared", "l", img, {"kind": "label", "label": {"k": "v"}})
    with pytest.raises(CheckFailed, match="label k='v', expected 'w'"):
        run("declared", "l", img, {"kind": "label", "label": {"k": "w"}})


def test_a_probe_that_never_answered_fails_the_check():
    with pytest.raises(CheckFailed, match="did not run"):
        system.CHECKS["non-root-user"].evaluate(image(), {"user": "app"})
