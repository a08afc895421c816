"""The one registry edge (buildtool/edges/registry.py) and `buildtool ci`: one CA and credentials precedence
for every caller, redirects by credpolicy's origin rule, `buildtool ci missing` against a stand-in
registry on 127.0.0.1, and the module layering (no stage imports the CLI)."""

from __future__ import annotations

import ast
import http.server
import json
import threading
from pathlib import Path

import pytest

import buildtool.edges.registry as registry
import buildtool.edges.registry_settings as registry_settings
from buildtool.edges.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1:5000"


def test_ca_precedence_is_the_same_for_settings_and_ca_for(tmp_path, monkeypatch):
    monkeypatch.setattr(registry_settings, "CERTS_D", tmp_path)
    env = {"BUILDTOOL_REGISTRY": HOST, "HOME": str(tmp_path)}
    assert Registry.from_env(env=env).ca is None  # the system trust store
    assert Registry.from_env(env={**env, "BUILDTOOL_REGISTRY_CA": "/x/ca.pem"}).ca == Path("/x/ca.pem")
    (tmp_path / HOST).mkdir()
    (tmp_path / HOST / "ca.crt").write_text("pem")
    # certs.d first: what the engine trusts for pushes and pulls is what the lookups trust
    assert Registry.from_env(env={**env, "BUILDTOOL_REGISTRY_CA": "/x/ca.pem"}).ca == tmp_path / HOST / "ca.crt"
    assert registry.ca_for(HOST, {"BUILDTOOL_REGISTRY_CA": "/x/ca.pem"}) == str(tmp_path / HOST / "ca.crt")


def test_settings_read_the_docker_config_and_identity_tokens(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"auths": {HOST: {"identitytoken": "tok-s3cret"}}}))
    reg = Registry.from_env(env={"BUILDTOOL_REGISTRY": HOST, "DOCKER_CONFIG": str(tmp_path)})
    assert reg.creds is not None and reg.creds.identity_token and "tok-s3cret" not in repr(reg)
    assert reg.auth_config() == {"identitytoken": "tok-s3cret", "serveraddress": HOST}
    # the environment's credentials win over the Docker config under `credentials: env`
    reg = Registry.from_env(env={"BUILDTOOL_REGISTRY": HOST, "DOCKER_CONFIG": str(tmp_path), "BUILDTOOL_REGISTRY_USER": "u",
                                 "BUILDTOOL_REGISTRY_PASSWORD": "p"})
    assert (reg.username, reg.password, reg.identity_token) == ("u", "p", False)


def test_from_site_takes_the_overlay_and_a_scheme_in_front(tmp_path):
    from types import SimpleNamespace

    site = SimpleNamespace(registry="reg.example:5000", namespace="team/ml", insecure=True, credentials="env")
    reg = Registry.from_site(site, env={"HOME": str(tmp_path)})
    assert (reg.host, reg.namespace, reg.scheme, reg.insecure, reg.creds) == ("reg.example:5000", "team/ml", "https", True, None)
    reg = Registry.from_site(site, host="http://127.0.0.1:5001/", env={"HOME": str(tmp_path)})
    assert (reg.host, reg.scheme, reg.base) == ("127.0.0.1:5001", "http", "http://127.0.0.1:5001")


@pytest.mark.parametrize(("old", "new", "strip"), [
    ("https://r.example/v2/a", "https://r.example/v2/b", False),
    ("http://r.example/v2/", "https://r.example/v2/", True),  # requests alone keeps it on http -> https
    ("https://r.example/v2/", "http://r.example/v2/", True),
    ("https://r.example/v2/", "https://cdn.example/blob", True),
    ("https://r.example:5000/v2/", "https://r.example:5001/v2/", True),
])
def test_redirects_keep_authorization_within_one_origin(old, new, strip):
    assert registry._session().should_strip_auth(old, new) is strip


class _NoManifests(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_HEAD(self):  # noqa: N802
        self.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(200 if self.path.endswith("/present") else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoManifests)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _NoManifests.seen = []
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_ci_missing_prints_the_matrix_and_github_output(stand_in, fixture_copy, monkeypatch, capsys, tmp_path):
    from buildtool.cli.main import main

    root = fixture_copy("minimal")
    monkeypatch.setenv("BUILDTOOL_INSECURE_REGISTRY", "1")
    monkeypatch.setenv("BUILDTOOL_REGISTRY_USER", "u")
    monkeypatch.setenv("BUILDTOOL_REGISTRY_PASSWORD", "p")
    out_file = tmp_path / "github-output"
    code = main(["ci", "missing", "--config", str(root / "images.yaml"), "--registry", f"http://{stand_in}", "--github-output", str(out_file)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["present"] == 0 and doc["missing"] == len(_NoManifests.seen) > 0
    assert all(auth and auth.startswith("Basic ") for _, auth in _NoManifests.seen)  # an insecure loopback registry gets Basic
    level0 = json.loads(doc["level0"])["include"]
    assert set(level0[0]) == {"node", "tag", "parent_tag", "context", "base"}
    lines = out_file.read_text().splitlines()
    assert lines[0] == f"level0={doc['level0']}" and "any0=true" in lines and lines[-1] == f"missing={doc['missing']}"


def test_ci_matrix_entries_are_the_generated_ones(fixture_copy, capsys):
    """`buildtool matrix --level 0` prints the entries generated/ci/level-0.json holds (one builder)."""
    from buildtool.cli.main import main

    root = fixture_copy("minimal")
    assert main(["generate", "--config", str(root / "images.yaml")]) == 0
    capsys.readouterr()
    assert main(["matrix", "--config", str(root / "images.yaml"), "--group", "all", "--level", "0"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((root / "generated" / "ci" / "level-0.json").read_text())


# the CLI's own modules: buildtool.cli and everything under it, and `python -m buildtool`
CLI_PACKAGE = "buildtool.cli"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The absolute names of the buildtool modules `path` imports (relative imports of any level resolved)."""
    package = _module(path) if path.name == "__init__.py" else _module(path).rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            prefix = ".".join(base + ([node.module] if node.module else []))
            names.update([prefix, *(f"{prefix}.{a.name}" for a in node.names)])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("buildtool."):
            names.update([node.module, *(f"{node.module}.{a.name}" for a in node.names)])
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("buildtool."))
    return names


def _is_cli(name: str) -> bool:
    return name == "buildtool.__main__" or name == CLI_PACKAGE or name.startswith(CLI_PACKAGE + ".")


def test_no_stage_module_imports_the_cli():
    offenders = {}
    for p in (ROOT / "buildtool").rglob("*.py"):
        if _is_cli(_module(p)):
            continue
        cli = sorted(n for n in _imports(p) if _is_cli(n))
        if cli:
            offenders[_module(p)] = cli
    assert offenders == {}


def test_one_registry_client_and_one_manifest_types():
    sources = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "buildtool").rglob("*.py")}
    assert [n for n, s in sources.items() if "class RegistryClient" in s] == ["registry.py"]
    assert [n for n, s in sources.items() if "MANIFEST_TYPES = " in s] == ["registry.py"]
    assert [n for n, s in sources.items() if "def git_revision" in s] == ["git.py"]
    assert not (ROOT / "buildtool" / "engine" / "remote.py").read_text(encoding="utf-8").count("argparse")


def test_argparse_only_under_the_cli():
    """Stages take typed option objects; only buildtool/cli parses command lines."""
    users = sorted(_module(p) for p in (ROOT / "buildtool").rglob("*.py")
                   if not _is_cli(_module(p)) and any(isinstance(n, (ast.Import, ast.ImportFrom)) and "argparse" in
                                                       ([a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""])
                                                       for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))))
    assert users == []


def test_every_verb_module_is_in_the_table():
    from buildtool.cli.verbs import VERBS

    on_disk = {p.stem for p in (ROOT / "buildtool" / "cli" / "verbs").glob("*.py") if p.stem != "__init__"}
    assert {v.__name__.rsplit(".", 1)[1] for v in VERBS} == on_disk
    assert len({v.NAME for v in VERBS}) == len(VERBS)


def test_no_module_imports_itself_through_others():
    """No import cycle between buildtool's modules (function-level imports count too: a cycle there is a layering knot)."""
    graph = {_module(p): {n for n in _imports(p) if n.startswith("buildtool.")} for p in (ROOT / "buildtool").rglob("*.py")}
    modules = set(graph)
    graph = {m: {n for n in targets if n in modules and n != m} for m, targets in graph.items()}
    cycles, state = [], {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(path[path.index(n):] + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []
