"""The pure parts of `buildtool build`: needed nodes, stale contexts, the docker argv, retries, CA bundle choice."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fake_lock import fake_lock
from matrix_fixture import load

from buildtool.engine.build import needed_nodes, pip_conf_text, resolve_ca_bundle, stale_contexts
from buildtool.engine.node_build import build_command, transient_cause
from buildtool.errors import OperationError
from buildtool.plan.expand import select
from buildtool.render.generate import generate
from buildtool.render.writer import write_tree_atomically
from buildtool.runlog import new_run_folder


@pytest.fixture()
def gen(tmp_path):
    config = load(tmp_path)
    return config, generate(config, fake_lock(config))


def test_needed_nodes_are_the_chains_without_bases_parents_first(gen):
    config, g = gen
    chosen = select(config, g.expansion.variants, None, ())
    nodes = needed_nodes(g, chosen)
    assert nodes and not any(g.dag.nodes[n].stage == "base" for n in nodes)
    for v in chosen:  # every chain is in, each node once
        assert {n.id for n in g.dag.chain(g.dag.variant_node[v.name]) if n.stage != "base"} <= set(nodes)
    assert len(nodes) == len(set(nodes))
    pos = {n: i for i, n in enumerate(nodes)}
    for n in nodes:
        parent = g.dag.nodes[n].parent
        if parent in pos:
            assert pos[parent] < pos[n]


def test_stale_contexts_catch_missing_edited_and_non_executable_files(gen, tmp_path):
    config, g = gen
    chosen = select(config, g.expansion.variants, None, ())
    nodes = needed_nodes(g, chosen)
    out = tmp_path / "generated"
    assert any("missing" in p for p in stale_contexts(g, nodes, out))
    write_tree_atomically(out, g.tree)
    assert stale_contexts(g, nodes, out) == []
    leaf = nodes[-1]
    (out / "nodes" / leaf / "Dockerfile").write_text(g.rendered[leaf].dockerfile + "RUN false\n")
    assert stale_contexts(g, nodes, out) == [f"{out}/nodes/{leaf}/Dockerfile: differs from images.yaml + images.lock"]
    (out / "nodes" / leaf / "Dockerfile").write_text(g.rendered[leaf].dockerfile)
    system = next(n for n in nodes if g.dag.nodes[n].stage == "system")
    (out / "nodes" / system / "with-build-secrets").chmod(0o644)
    assert stale_contexts(g, nodes, out) == [f"{out}/nodes/{system}/with-build-secrets: not executable"]


def test_build_command_has_no_tag_no_build_arg_and_secrets_by_file(tmp_path):
    argv = build_command("/usr/bin/docker", tmp_path / "ctx", tmp_path / "iid", {"io.buildtool.hash": "abc"},
                         {"ca-bundle": Path("/etc/ssl/certs/ca-certificates.crt")})
    assert argv[:2] == ["/usr/bin/docker", "build"]
    assert "-t" not in argv and "--tag" not in argv and "--build-arg" not in argv
    assert argv[argv.index("--network") + 1] == "host"
    assert argv[argv.index("--iidfile") + 1] == str(tmp_path / "iid")
    assert argv[argv.index("--secret") + 1] == "id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt"
    assert argv[argv.index("--label") + 1] == "io.buildtool.hash=abc"
    assert argv[-1] == str(tmp_path / "ctx")
    assert "--progress=plain" in argv


@pytest.mark.parametrize("line", [
    "#9 12.3 ERROR: Exception: ... ReadTimeoutError: HTTPSConnectionPool(host='files.pythonhosted.org', port=443): Read timed out.",
    "#9 4.5 Err:1 http://deb.debian.org/debian bookworm/main amd64 openmpi-bin 4.1.4-3+b1\n#9 4.5   503  Service Unavailable [IP: 1.2.3.4 80]",
    "#9 3.1 W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'",
    "#9 2.0 urllib3.exceptions.ProtocolError: ('Connection broken: IncompleteRead(0 bytes read, 10 more expected)', ...)",
    "#9 2.0 ConnectionResetError: [Errno 104] Connection reset by peer",
    "#9 7.7 curl: (28) Operation timed out after 30000 milliseconds",
    "#9 1.0 ERROR: HTTP error 502 while getting https://files.pythonhosted.org/x.whl",
])
def test_transient_download_errors_are_recognised(line):
    assert transient_cause("#8 DONE 0.1s\n" + line + "\n#9 ERROR: process did not complete") is not None


@pytest.mark.parametrize("text", [
    "#9 [4/5] RUN false\n#9 ERROR: process \"/bin/bash -o pipefail -c false\" did not complete successfully: exit code: 1",
    "#9 0.4 ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.",
    "#9 0.4 E: Version '9.9' for 'openmpi-bin' was not found",
])
def test_real_failures_are_not_retried(text):
    assert transient_cause(text) is None


def test_the_cause_shown_drops_buildkits_prefix():
    assert transient_cause("#12 3.456 requests.exceptions.ReadTimeout: Read timed out.") == "requests.exceptions.ReadTimeout: Read timed out."


def test_ca_bundle_precedence(tmp_path):
    cli, site, host = tmp_path / "cli.pem", tmp_path / "site.pem", tmp_path / "host.pem"
    for p in (cli, site, host):
        p.write_text("x")
    assert resolve_ca_bundle(cli, str(site), host) == cli.resolve()
    assert resolve_ca_bundle(None, str(site), host) == site.resolve()
    assert resolve_ca_bundle(None, None, host) == host
    assert resolve_ca_bundle(None, None, tmp_path / "absent.pem") is None
    with pytest.raises(OperationError, match="not a readable file"):
        resolve_ca_bundle(tmp_path / "nope.pem", None, host)


def test_pip_conf_only_for_a_site_index():
    assert pip_conf_text(None) is None
    assert pip_conf_text("https://pypi.example/simple") == "[global]\nindex-url = https://pypi.example/simple\n"


def test_run_ids_are_utc_stamps_and_unique(tmp_path):
    now = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert new_run_folder(tmp_path / "logs", now) == ("20250102T030405Z", tmp_path / "logs" / "20250102T030405Z")
    assert (tmp_path / "logs" / "20250102T030405Z").is_dir()  # claimed: the next run of the same second gets -2
    assert new_run_folder(tmp_path / "logs", now)[0] == "20250102T030405Z-2"


# --- the runner's retry and tag-after-success logic, with a stand-in docker CLI (no engine) ------------------


class FakeApi:
    def __init__(self):
        self.tags: list[tuple[str, str, str]] = []

    def tag(self, image, repo, tag, force=False):
        self.tags.append((image, repo, tag))
        return True


class FakeClient:
    def __init__(self):
        self.api = FakeApi()


FAKE_CLI = """#!/bin/bash
# Stand-in for `docker build`: fails with $FAKE_ERROR for the first $FAKE_FAILS calls, then writes an image id.
count_file="$FAKE_STATE/count"; n=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 )); echo $n > "$count_file"
while [ $# -gt 0 ]; do [ "$1" = --iidfile ] && iid=$2; shift; done
if [ "$n" -le "$FAKE_FAILS" ]; then echo "#9 1.2 $FAKE_ERROR"; exit 1; fi
echo "#9 DONE"; echo -n sha256:0123456789abcdef > "$iid"
"""


def _runner(tmp_path, monkeypatch, fails, error, retries=2):
    from buildtool.engine.node_build import NodeJob, Runner

    cli = tmp_path / "docker"
    cli.write_text(FAKE_CLI)
    cli.chmod(0o755)
    monkeypatch.setenv("FAKE_STATE", str(tmp_path))
    monkeypatch.setenv("FAKE_FAILS", str(fails))
    monkeypatch.setenv("FAKE_ERROR", error)
    said: list[str] = []
    job = NodeJob("n", "buildtool/n:h-abc", "abc" * 10, tmp_path, tmp_path / "logs" / "n.log")
    client = FakeClient()
    return Runner(client=client, cli=str(cli), jobs={"n": job}, secrets={}, revision=None, retries=retries, say=said.append), client, said, job


def test_transient_errors_are_retried_with_the_cause_shown_then_tagged(tmp_path, monkeypatch):
    runner, client, said, job = _runner(tmp_path, monkeypatch, 2, "requests.exceptions.ReadTimeout: Read timed out.")
    result = runner("n")
    assert result.ok and result.attempts == 3 and runner.builds == 3
    assert said == [f"      n: transient download error, retry {i}/2: requests.exceptions.ReadTimeout: Read timed out." for i in (1, 2)]
    assert client.api.tags == [("sha256:0123456789abcdef", "buildtool/n", "h-abc")]
    log = job.log.read_text()
    assert log.count("=== n attempt") == 3 and "tagged buildtool/n:h-abc" in log


def test_retries_are_bounded_and_a_failure_tags_nothing(tmp_path, monkeypatch):
    runner, client, said, _ = _runner(tmp_path, monkeypatch, 5, "Connection reset by peer")
    result = runner("n")
    assert not result.ok and result.attempts == 3 and "Connection reset by peer" in result.detail
    assert client.api.tags == []


def test_a_real_failure_is_not_retried(tmp_path, monkeypatch):
    runner, client, said, _ = _runner(tmp_path, monkeypatch, 1, "ERROR: process did not complete successfully: exit code: 1")
    result = runner("n")
    assert not result.ok and result.attempts == 1 and said == [] and client.api.tags == []
