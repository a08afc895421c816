"""Bad input gives one paragraph naming file:line, the key, what was expected and found, and exit 2.

Every case starts from the valid fixture tests/fixtures/minimal (images.yaml + images.lock)
and makes one targeted edit. The expected line is found by searching the *edited* text for
an anchor, so a case fails if the error points anywhere else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

Edit = Callable[[str], str]


def sub(old: str, new: str) -> Edit:
    """Replace text that occurs exactly once in the file."""

    def edit(text: str) -> str:
        assert text.count(old) == 1, f"fixture edit is ambiguous or stale: {old!r} occurs {text.count(old)} times"
        return text.replace(old, new)

    return edit


def drop_block(first_line: str) -> Edit:
    """Remove a line and the more-indented lines below it (a whole YAML block)."""

    def edit(text: str) -> str:
        lines = text.splitlines(keepends=True)
        start = next(i for i, line in enumerate(lines) if line.rstrip("\n") == first_line)
        indent = len(first_line) - len(first_line.lstrip())
        end = start + 1
        while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
            end += 1
        return "".join(lines[:start] + lines[end:])

    return edit


def append(extra: str) -> Edit:
    return lambda text: text + extra


def whole(new_text: str) -> Edit:
    return lambda _text: new_text


@dataclass(frozen=True)
class Case:
    id: str
    key: str  # the key path the error must name
    at: str | None  # anchor text in the edited file; the error must point at its line
    says: tuple[str, ...] = ()  # further text the paragraph must contain; {@anchor} stands for that anchor's line
    config: Edit | None = None  # edit of images.yaml
    lock: Edit | None = None  # edit of images.lock
    site: str | None = None  # a site overlay to pass with --site
    file: str = "images.yaml"  # the file the error must name (or a non-file location)
    argv: tuple[str, ...] = ("validate",)
    extra: tuple[str, ...] = ()  # arguments after --config
    nth: int = 1  # which occurrence of the anchor (-1: the last)
    line: int | None = None  # for files with no line to search (empty file)
    env: dict[str, str] = field(default_factory=dict)


CONDA = """\
    conda:
      flavor: conda
      installer:
        url: https://repo.anaconda.com/miniconda/Miniconda3-py311_24.9.2-0-Linux-x86_64.sh
        sha256: 62ef806265659c47e37e22e8f9adce29e75c4ea0497e619c280f54c823887c4f
      conda: "24.9.2"
      python: "3.11.10"
      channels: [conda-forge]
  mpi:
"""


def with_conda(old: str = "", new: str = "") -> Edit:
    """Add a conda python component (not on any axis), optionally edited."""
    block = CONDA.replace(old, new) if old else CONDA
    return sub("  mpi:\n", block)


FULL_INCLUDE = "{os: debian12, python: system-python, mpi: openmpi, accelerator: cpu, onnxruntime: ort-cpu}"

CASES = [
    # --- YAML syntax -------------------------------------------------------------------------
    Case("yaml-bad-indentation", "", "   codename: bookworm", ("YAML syntax error",),
         config=sub("    codename: bookworm", "   codename: bookworm")),
    Case("yaml-tab-indentation", "", "\tuid: 1000", ("YAML syntax error", "tab"),
         config=sub("  uid: 1000", "\tuid: 1000")),
    Case("yaml-unclosed-bracket", "", "os: [debian12", ("YAML syntax error", "'[' opened on this line is not closed", "on line {@python: [system-python]}"),
         config=sub("    os: [debian12]", "    os: [debian12")),
    Case("yaml-duplicate-key", "system.uid", "uid: 1001", ("duplicate key 'uid'", "first defined on line {@uid: 1000}"),
         config=sub("  uid: 1000\n", "  uid: 1000\n  uid: 1001\n")),
    Case("yaml-duplicate-key-in-flow-mapping", "components.mpi.none.flavor", "none: {flavor: none, flavor: openmpi}", ("duplicate key 'flavor'",),
         config=sub('    none: {flavor: none, tag: ""}\n    openmpi', "    none: {flavor: none, flavor: openmpi}\n    openmpi")),
    Case("yaml-merge-key", "bases.debian11", "<<: *deb", ("merge keys",),
         config=lambda t: sub("  debian12:\n", "  debian12: &deb\n")(t).replace("\ncomponents:", "  debian11:\n    <<: *deb\n\ncomponents:", 1)),
    # --- the document as a whole ----------------------------------------------------------
    Case("top-level-is-a-list", "(top level)", "- schema: 1", ("must be a mapping", "a list"),
         config=whole("- schema: 1\n- bases: {}\n")),
    Case("empty-file", "(top level)", None, ("must be a mapping", "empty"), config=whole(""), line=1),
    Case("comments-only-file", "(top level)", None, ("must be a mapping", "empty"), config=whole("# nothing here\n"), line=1),
    Case("unknown-top-level-key", "default_grop", "default_grop:", ("unknown key 'default_grop'", "did you mean 'default_group'?"),
         config=sub("default_group: smoke", "default_grop: smoke")),
    Case("missing-bases", "(top level)", "schema: 1", ("missing required key 'bases'",), config=drop_block("bases:")),
    Case("missing-matrix", "(top level)", "schema: 1", ("missing required key 'matrix'",), config=drop_block("matrix:")),
    Case("unknown-schema-version", "schema", "schema: 2", ("unsupported schema version 2", "schema: 1"),
         config=sub("schema: 1", "schema: 2")),
    # --- wrong types ------------------------------------------------------------------------
    Case("list-where-mapping", "bases.debian12.bootstrap", "bootstrap: [", ("wrong type", "a bootstrap recipe", "a list"),
         config=sub("bootstrap: {tool: debootstrap, suite: bookworm, mirror: \"http://deb.debian.org/debian\", variant: minbase}",
                    "bootstrap: [debootstrap, bookworm]")),
    Case("number-where-string", "bases.debian12.tag", "tag: 12", ("wrong type", "a number (12)", "quote it"),
         config=sub("tag: debian12", "tag: 12")),
    Case("unquoted-float-version", "components.python.system-python.pip", "pip: 25.10", ("wrong type", "a number (25.1)", "quote it"),
         config=sub('pip: "25.3"', "pip: 25.10")),
    Case("string-where-integer", "system.uid", 'uid: "1000"', ("wrong type", "an integer", "a string ('1000')"),
         config=sub("uid: 1000", 'uid: "1000"')),
    Case("integer-too-small", "system.uid", "uid: 0", ("too small", "from 1 to"), config=sub("uid: 1000", "uid: 0")),
    Case("null-where-string", "bases.debian12.tag", "tag:", ("wrong type", "nothing (null)"),
         config=sub("    tag: debian12\n", "    tag:\n")),
    Case("relative-workdir", "system.workdir", "workdir: home/app", ("malformed value 'home/app'", "an absolute POSIX path"),
         config=sub("workdir: /home/app", "workdir: home/app")),
    Case("component-not-a-mapping", "components.accelerator.cpu", "cpu: none", ("wrong type", "a mapping with 'flavor'", "a string ('none')"),
         config=sub('    cpu: {flavor: none, tag: ""}', "    cpu: none")),
    # --- enums, pins, checksums ---------------------------------------------------------------
    Case("bad-enum-family", "bases.debian12.family", "family: debain", ("unknown value 'debain'", "did you mean 'debian'?"),
         config=sub("family: debian", "family: debain")),
    Case("bad-enum-bootstrap-tool", "bases.debian12.bootstrap.tool", "tool: debootstrapp", ("did you mean 'debootstrap'?",),
         config=sub("tool: debootstrap,", "tool: debootstrapp,")),
    Case("image-not-pinned-by-digest", "bases.debian12.image", "image: debian:bookworm-slim", ("pinned by digest", "debian:bookworm-slim"),
         config=lambda t: t.replace(t[t.index("image: debian"):t.index("\n", t.index("image: debian"))], "image: debian:bookworm-slim")),
    Case("version-not-exact", "bases.debian12.python", 'python: ">=3.11"', ("malformed value '>=3.11'", "an exact version"),
         config=sub('python: "3.11.2"', 'python: ">=3.11"')),
    Case("conda-malformed-sha256", "components.python.conda.installer.sha256", "sha256: 62EF", ("malformed value", "64 lowercase hex digits"),
         config=with_conda("sha256: 62ef806265659c47e37e22e8f9adce29e75c4ea0497e619c280f54c823887c4f", "sha256: 62EF8062656")),
    Case("conda-missing-checksum", "components.python.conda.installer", "installer:", ("missing required key 'sha256'", "sha256 checksum"),
         config=with_conda("        sha256: 62ef806265659c47e37e22e8f9adce29e75c4ea0497e619c280f54c823887c4f\n", "")),
    # --- components and flavors ---------------------------------------------------------------
    Case("unknown-flavor", "components.mpi.openmpi.flavor", "openmpi: {flavor: openmpii", ("unknown value 'openmpii'", "did you mean 'openmpi'?"),
         config=sub("openmpi: {flavor: openmpi,", "openmpi: {flavor: openmpii,")),
    Case("flavor-on-wrong-axis", "components.accelerator.cpu.flavor", "cpu: {flavor: openmpi", ("'openmpi'", "mpi", "accelerator"),
         config=sub('cpu: {flavor: none, tag: ""}', 'cpu: {flavor: openmpi, tag: ""}')),
    Case("missing-flavor", "components.accelerator.cpu", "cpu: {tag:", ("missing required key 'flavor'",),
         config=sub('cpu: {flavor: none, tag: ""}', 'cpu: {tag: ""}')),
    Case("unknown-component-field", "components.mpi.openmpi.mpi4pi", "mpi4pi:", ("unknown key 'mpi4pi'", "did you mean 'mpi4py'?"),
         config=sub("openmpi: {flavor: openmpi,", 'openmpi: {flavor: openmpi, mpi4pi: "4.1.2",')),
    Case("missing-component-field", "components.onnxruntime.ort-cpu", "ort-cpu: {flavor: ort-cpu", ("missing required key 'version'",),
         config=sub('ort-cpu: {flavor: ort-cpu, version: "1.23.2",', "ort-cpu: {flavor: ort-cpu,")),
    Case("key-used-twice-across-axes", "components.onnxruntime.openmpi", "    openmpi: {flavor: ort-cpu", ("already used at components.mpi.openmpi",),
         config=sub('    ort-cpu: {flavor: ort-cpu,', '    openmpi: {flavor: ort-cpu, version: "1.23.2"}\n    ort-cpu: {flavor: ort-cpu,')),
    Case("two-none-components-on-an-axis", "components.accelerator.nothing", "    nothing: {flavor: none", ("axis 'accelerator' has two components with flavor 'none'",),
         config=sub('    cpu: {flavor: none, tag: ""}\n', '    cpu: {flavor: none, tag: ""}\n    nothing: {flavor: none, tag: "x"}\n')),
    Case("component-key-same-as-base", "components.python.debian12", "    debian12:", ("already used at bases.debian12",), nth=-1,
         config=sub("  python:\n", '  python:\n    debian12: {flavor: system-python, pip: "25.3"}\n')),
    # --- matrix axes, selectors, includes ---------------------------------------------------
    Case("axis-value-unknown", "matrix.axes.mpi[1]", "mpi: [none, openmpii]", ("unknown value 'openmpii'", "did you mean 'openmpi'?"),
         config=sub("mpi: [none, openmpi]", "mpi: [none, openmpii]")),
    Case("axis-missing", "matrix.axes", "  axes:", ("missing required key 'accelerator'",),
         config=sub("    accelerator: [cpu]\n", "")),
    Case("axis-empty", "matrix.axes.accelerator", "accelerator: []", ("list is empty",),
         config=sub("accelerator: [cpu]", "accelerator: []")),
    Case("selector-unknown-axis", "groups.smoke.select[0].mpl", "{os: debian12, mpl: openmpi}", ("unknown axis 'mpl'", "did you mean 'mpi'?"),
         config=sub("{os: debian12, mpi: openmpi}", "{os: debian12, mpl: openmpi}")),
    Case("exclude-unknown-value", "matrix.exclude[0].mpi", "exclude: [{mpi: mpich}]", ("unknown value 'mpich'", "matrix.axes.mpi"),
         config=sub("exclude: []", "exclude: [{mpi: mpich}]")),
    Case("include-missing-axis", "matrix.include[0]", "- {os: debian12, mpi: openmpi}", ("must name every axis", "python, accelerator, onnxruntime"),
         nth=1, config=sub("  include: []", "  include:\n    - {os: debian12, mpi: openmpi}")),
    Case("include-with-a-list", "matrix.include[0].mpi", "mpi: [none, openmpi], accelerator", ("exactly one combination",),
         config=sub("  include: []", "  include:\n    - {os: debian12, python: system-python, mpi: [none, openmpi], accelerator: cpu, onnxruntime: none}")),
    Case("include-breaks-rule", "matrix.include[0]", FULL_INCLUDE, ("breaks rule 'onnxruntime-without-mpi'", "ONNX Runtime images carry no MPI"),
         config=sub("  include: []", "  include:\n    - " + FULL_INCLUDE)),
    Case("empty-matrix", "matrix", "matrix:", ("the matrix is empty", "--why-excluded"),
         config=sub("exclude: []", "exclude: [{os: debian12}]")),
    # --- rules -------------------------------------------------------------------------------
    Case("rule-unknown-fact", "matrix.rules[0]", "- id: onnxruntime-without-mpi", ("unknown fact 'mpi.flavour'", "did you mean 'mpi.flavor'?"),
         config=sub("require: {mpi.flavor: none}", "require: {mpi.flavour: none}")),
    Case("rule-fact-of-no-axis", "matrix.rules[0].require.gpu.cuda", "require: {gpu.cuda", ("malformed value 'gpu.cuda'", "axis one of os, system"),
         config=sub("require: {mpi.flavor: none}", 'require: {gpu.cuda: "12"}')),
    Case("rule-invalid-version-range", "matrix.rules[1].require.python.version.version", '{version: "=>3.10"}', ("invalid version range '=>3.10'", "PEP 440"),
         config=sub('{version: ">=3.10"}', '{version: "=>3.10"}')),
    Case("matcher-two-operators", "matrix.rules[0].when.onnxruntime.flavor", "{not: none, version:", ("exactly one of not, version, same",),
         config=sub("{not: none}", '{not: none, version: ">=1"}')),
    Case("matcher-parts-without-same", "matrix.rules[0].when.onnxruntime.flavor.parts", "{not: none, parts: 1}", ("'parts' goes with 'same' only",),
         config=sub("{not: none}", "{not: none, parts: 1}")),
    Case("duplicate-rule-id", "matrix.rules[1]", "- id: onnxruntime-without-mpi", ("duplicate rule id 'onnxruntime-without-mpi'",), nth=-1,
         config=sub("- id: onnxruntime-python", "- id: onnxruntime-without-mpi")),
    Case("rule-missing-reason", "matrix.rules[0]", "- id: onnxruntime-without-mpi", ("missing required key 'reason'",),
         config=sub("      reason: ONNX Runtime images carry no MPI\n", "")),
    # --- tags --------------------------------------------------------------------------------
    Case("tag-template-unknown-placeholder", "tags.image", "image: \"{mpi.tag}-{gpu.tag}", ("unknown fact {gpu.tag}",),
         config=sub('image: "{mpi.tag}-', 'image: "{mpi.tag}-{gpu.tag}-')),
    Case("tag-collision", "tags.image", "image: \"{mpi.tag}", ("tag collision", "'debian12'", "mpi=none"),
         config=sub('tag: "openmpi{version}"', 'tag: ""')),
    Case("invalid-image-name", "tags.image", "image: \"{mpi.tag}", ("invalid image name", "Debian12"),
         config=sub('image: "{mpi.tag}-{onnxruntime.tag}-{python.tag}-{os.tag}"', 'image: "{mpi.tag}-{onnxruntime.tag}-{python.tag}-Debian12"')),
    Case("component-tag-unknown-field", "components.mpi.openmpi.tag", 'tag: "openmpi{vers}"', ("unknown field", "'vers'", "{version}"),
         config=sub('tag: "openmpi{version}"', 'tag: "openmpi{vers}"')),
    # --- groups ------------------------------------------------------------------------------
    Case("default-group-unknown", "default_group", "default_group: smok", ("unknown group 'smok'", "did you mean 'smoke'?"),
         config=sub("default_group: smoke", "default_group: smok")),
    Case("group-except-unknown", "groups.rest.except[0]", "except: [smokey]", ("unknown group 'smokey'", "smoke"),
         config=sub("except: [smoke]", "except: [smokey]")),
    Case("group-cycle", "groups.smoke.except", "except: [rest]", ("cycle", "smoke -> rest -> smoke"),
         config=sub("      - {os: debian12, mpi: openmpi}\n", "      - {os: debian12, mpi: openmpi}\n    except: [rest]\n")),
    Case("group-select-empty", "groups.smoke.select", "select: []", ("list is empty",),
         config=sub("    select:\n      - {os: debian12, mpi: openmpi}\n", "    select: []\n")),
    # --- declared checks -------------------------------------------------------------------
    Case("duplicate-check-name", "checks[1]", "- name: utf8-locale", ("duplicate check name 'utf8-locale'",), nth=-1,
         config=sub("- name: bash-is-default-shell", "- name: utf8-locale")),
    Case("check-with-two-kinds", "checks[0]", "- name: utf8-locale", ("exactly one thing", "file, env"),
         config=sub("    env: {LANG: C.UTF-8}\n", "    env: {LANG: C.UTF-8}\n    file: /etc/locale.gen\n")),
    Case("check-with-no-kind", "checks[0]", "- name: utf8-locale", ("exactly one thing", "none"),
         config=sub("    env: {LANG: C.UTF-8}\n", "")),
    Case("check-inapplicable-key", "checks[0].exit", "exit: 0", ("'exit' does not apply to an env check", "name, on, env"),
         config=sub("    env: {LANG: C.UTF-8}\n", "    env: {LANG: C.UTF-8}\n    exit: 0\n")),
    Case("check-bad-env-name", "checks[0].env.1LANG", "env: {1LANG", ("malformed value '1LANG'", "environment variable name"),
         config=sub("env: {LANG:", "env: {1LANG:")),
    Case("check-unknown-axis-in-on", "checks[1].on.gpu", "on: {gpu: cpu}", ("unknown axis 'gpu'", "one of os, python"),
         config=sub("    command: \"getent", "    on: {gpu: cpu}\n    command: \"getent")),
    # --- site overlay (--site) -------------------------------------------------------------
    Case("site-unknown-key", "mirors", "mirors:", ("unknown key 'mirors'", "did you mean 'mirrors'?"),
         file="site.yaml", site="registry: 127.0.0.1:5000\nmirors: {apt: http://deb.debian.org/debian}\n"),
    Case("site-bad-credentials", "credentials", "credentials: vault", ("unknown value 'vault'", "env, docker-config"),
         file="site.yaml", site="registry: 127.0.0.1:5000\ncredentials: vault\n"),
    Case("site-missing-ca-bundle", "ca_bundle", "ca_bundle:", ("CA bundle file not found", "/nonexistent/ca.pem"),
         file="site.yaml", site="ca_bundle: /nonexistent/ca.pem\n"),
    Case("site-bad-mirror-url", "mirrors.apt", "apt: deb.debian.org", ("malformed value 'deb.debian.org'", "http(s) URL"),
         file="site.yaml", site="mirrors:\n  apt: deb.debian.org\n"),
    Case("site-not-a-mapping", "(top level)", "- registry", ("wrong type", "a list"),
         file="site.yaml", site="- registry: 127.0.0.1:5000\n"),
    Case("site-credentials-from-environment", "BUILDTOOL_CREDENTIALS", None, ("one of env, docker-config", "vault"),
         file="environment", env={"BUILDTOOL_CREDENTIALS": "vault"}),
    # --- the lock --------------------------------------------------------------------------
    Case("lock-missing-apt-closure", "apt.debian12.installs", "  debian12:", ("has no resolved closure for", "libopenmpi-dev openmpi-bin",
         "buildtool lock"), file="images.lock", nth=-1,
         lock=lambda t: "".join(line for line in t.splitlines(keepends=True)
                                if not line.startswith('      "ca-certificates fuse3 libfuse2 libfuse3-3 | python3 python3-venv | libopenmpi-dev'))),
    Case("lock-missing-base", "apt.debian12", "apt:", ("no apt lock for base 'debian12'", "buildtool lock"), file="images.lock",
         lock=lambda t: t.replace("apt:\n  debian12:\n", "apt:\n  debian11:\n", 1)),
    # a set is found by what it asks for: one images.lock lacks is reported at the images.yaml entry that asks for it
    Case("lock-missing-pip-set", "components.onnxruntime.ort-cpu", "    ort-cpu: {flavor", ("needs pip pins images.lock does not have",
         "onnxruntime==1.23.2", "no pip set py3.11-onnxruntime-5c0c268464dd"), lock=sub("  py3.11-onnxruntime-5c0c268464dd:", "  py3.11-onnxruntime-000000000000:")),
    Case("lock-changed-pip-request", "components.onnxruntime.ort-cpu", "    ort-cpu: {flavor", ("needs pip pins images.lock does not have",
         "node debian12.sys.system-python.ort-cpu's earlier set, with other requires", "onnxruntime==1.23.1"),
         config=sub('ort-cpu: {flavor: ort-cpu, version: "1.23.2"', 'ort-cpu: {flavor: ort-cpu, version: "1.23.1"')),
    Case("lock-stale-pip-set", "pip.py3.11-pip-7880e25958c2.requires", "requires: [pip==25.2]", ("is stale", "requires pip==25.3", "requires pip==25.2"),
         file="images.lock", lock=sub("requires: [pip==25.3]", "requires: [pip==25.2]")),
    Case("lock-stale-constraints", "pip.py3.11-onnxruntime-5c0c268464dd.constraints", "constraints: [pip==25.2]",
         ("is stale", "constraints pip==25.3", "constraints pip==25.2"), file="images.lock", lock=sub("constraints: [pip==25.3]", "constraints: [pip==25.2]")),
    Case("lock-stale-python", "pip.py3.11-pip-7880e25958c2.python", 'python: "3.12"', ("is stale", "python 3.11", "python 3.12"),
         file="images.lock", lock=lambda t: t.replace('python: "3.11"', 'python: "3.12"', 1)),
    Case("lock-syntax-error", "", "requires: [pip==25.3", ("YAML syntax error",), file="images.lock",
         lock=sub("requires: [pip==25.3]", "requires: [pip==25.3")),
    Case("lock-unknown-key", "pip.py3.11-pip-7880e25958c2.pinz", "pinz:", ("unknown key 'pinz'", "did you mean 'pins'?"), file="images.lock",
         lock=lambda t: t.replace("    pins:\n", "    pinz:\n", 1)),
    Case("lock-pin-malformed-sha256", "pip.py3.11-pip-7880e25958c2.pins[0].sha256", "sha256: abc}", ("malformed value 'abc'", "64 lowercase hex"),
         file="images.lock", lock=lambda t: t.replace("sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b}", "sha256: abc}")),
    Case("lock-unsupported-version", "lock.version", 'version: "7"', ("unsupported lock version", "7"), file="images.lock",
         lock=sub('version: "2"', 'version: "7"')),
    # --- command line ----------------------------------------------------------------------
    Case("filter-malformed", "--filter", None, ("bad --filter 'mpi'", "AXIS=VALUE"), file="--filter",
         argv=("list",), extra=("--filter", "mpi")),
    Case("filter-unknown-axis", "--filter", None, ("bad --filter 'gpu=cuda'",), file="--filter",
         argv=("list",), extra=("--filter", "gpu=cuda")),
    Case("group-unknown-on-command-line", "--group", None, ("unknown group 'nope'", "all, rest, smoke"), file="--group",
         argv=("list",), extra=("--group", "nope")),
]

IDS = [c.id for c in CASES]
assert len(set(IDS)) == len(IDS), "case ids must be unique"


def line_of(text: str, anchor: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if anchor in line]
    assert hits, f"anchor {anchor!r} not in the edited text"
    return hits[nth - 1] if nth > 0 else hits[nth]


def assert_one_paragraph(err: str) -> None:
    assert "Traceback" not in err
    lines = err.rstrip("\n").split("\n")
    assert lines[0].startswith("error: "), err
    assert all(line.startswith("  ") and line.strip() for line in lines[1:]), f"not one paragraph:\n{err}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_input(case: Case, fixture_copy, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = fixture_copy("minimal")
    config, lock = folder / "images.yaml", folder / "images.lock"
    edited = {}
    for path, edit in ((config, case.config), (lock, case.lock)):
        if edit is not None:
            before = path.read_text(encoding="utf-8")
            after = edit(before)
            assert after != before, "the edit changed nothing"
            path.write_text(after, encoding="utf-8")
        edited[path.name] = path.read_text(encoding="utf-8")
    extra = list(case.extra)
    if case.site is not None:
        (folder / "site.yaml").write_text(case.site, encoding="utf-8")
        edited["site.yaml"] = case.site
        extra += ["--site", str(folder / "site.yaml")]
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)

    result = cli(case.argv[0], "--config", config, *case.argv[1:], *extra)

    assert result.code == 2, result.err
    assert_one_paragraph(result.err)
    if case.file in edited:
        line = case.line or line_of(edited[case.file], case.at, case.nth)
        assert f"error: {folder / case.file}:{line}: " in result.err, result.err
    else:
        assert f"error: {case.file}: " in result.err, result.err
    if case.key:
        assert f"\n  key: {case.key}\n" in result.err + "\n", result.err
    for text in case.says:
        text = re.sub(r"\{@(.+?)\}", lambda m: str(line_of(edited.get(case.file, ""), m.group(1))), text)
        assert text in result.err, result.err


def test_at_least_45_cases() -> None:
    assert len(CASES) >= 45


def test_missing_config_file(cli, tmp_path: Path) -> None:
    result = cli("validate", "--config", tmp_path / "nope" / "images.yaml")
    assert result.code == 2
    assert_one_paragraph(result.err)
    assert f"error: {tmp_path / 'nope' / 'images.yaml'}: file not found" in result.err


def test_non_utf8_file_gives_no_traceback(cli, fixture_copy) -> None:
    folder = fixture_copy("minimal")
    config = folder / "images.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_bytes(text.replace("description: the Open MPI image", "description: the Open MPI image \xe9").encode("latin-1"))
    result = cli("validate", "--config", config)
    assert result.code == 2
    assert_one_paragraph(result.err)
    assert f"{config}:{line_of(text, 'description: the Open MPI image')}: " in result.err
    assert "UTF-8" in result.err


def test_fixture_itself_is_valid(cli, fixtures_dir: Path) -> None:
    result = cli("validate", "--config", fixtures_dir / "minimal" / "images.yaml")
    assert result.code == 0, result.err
    assert result.err == ""


def test_missing_lock_file_names_it(cli, fixture_copy) -> None:
    folder = fixture_copy("minimal")
    (folder / "images.lock").unlink()
    result = cli("validate", "--config", folder / "images.yaml")
    assert result.code == 2
    assert_one_paragraph(result.err)
    assert f"error: {folder / 'images.lock'}: no apt lock for base 'debian12'" in result.err
    assert "found: no lock file" in result.err and "buildtool lock" in result.err


def test_site_file_missing(cli, fixture_copy) -> None:
    folder = fixture_copy("minimal")
    result = cli("validate", "--config", folder / "images.yaml", "--site", folder / "nope.yaml")
    assert result.code == 2
    assert_one_paragraph(result.err)
    assert f"error: {folder / 'nope.yaml'}: file not found" in result.err
    assert "--site" in result.err


# --- the lock as buildtool writes it (JSON) ---------------------------------------------------------
# The same checks as the YAML cases above; the line comes from the YAML loader, run only on an error.
JSON_LOCK_CASES = [
    # (id, edit of the JSON text, anchor of the line to name, nth hit, what the error says)
    ("json-stale-requires", lambda t: t.replace('"onnxruntime==1.23.2"', '"onnxruntime==1.22.0"', 1), '"requires": [', 1,
     ("is stale", "requires onnxruntime==1.23.2", "requires onnxruntime==1.22.0")),
    ("json-malformed-sha256", lambda t: t.replace("6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b", "abc", 1),
     '"sha256": "abc"', 1, ("malformed value 'abc'", "64 lowercase hex")),
    ("json-missing-apt-pin", lambda t: "".join(line for line in t.splitlines(keepends=True) if '"fuse3": {' not in line),
     '"ca-certificates fuse3 libfuse2 libfuse3-3": [', 1, ("closure names packages that are not locked: fuse3",)),
    ("json-missing-apt-closure",
     lambda t: t.replace('| python3 python3-venv | libopenmpi-dev openmpi-bin": [', '| python3 python3-venv | libopenmpi-dev": [', 1),
     '"debian12": {', 1, ("has no resolved closure for", "'ca-certificates fuse3 libfuse2 libfuse3-3 | python3 python3-venv | libopenmpi-dev openmpi-bin'")),
    ("json-duplicate-key", lambda t: t.replace('"python": "3.11",', '"python": "3.11",\n      "python": "3.12",', 1),
     '"python": "3.12"', 1, ("duplicate key 'python'",)),
    ("json-syntax-error", lambda t: t.replace('"python": "3.11",\n      "requires"', '"python": "3.11"\n      "requires"', 1),
     '"requires": [', 1, ("JSON syntax error: Expecting ',' delimiter", "column 7")),
    ("json-unknown-key", lambda t: t.replace('"pins": [', '"pinz": [', 1), '"pinz": [', 1, ("unknown key 'pinz'", "did you mean 'pins'?")),
]


@pytest.mark.parametrize(("edit", "anchor", "nth", "says"), [c[1:] for c in JSON_LOCK_CASES], ids=[c[0] for c in JSON_LOCK_CASES])
def test_bad_json_lock(edit, anchor, nth, says, fixture_copy, cli) -> None:
    from buildtool.lock.format import dump_lock, load_lock

    folder = fixture_copy("minimal")
    lock = folder / "images.lock"
    json_text = dump_lock(load_lock(lock))
    assert json.loads(json_text)  # the fixture's YAML lock, written the way `buildtool lock` writes it
    lock.write_text(json_text, encoding="utf-8")
    readme = ("--readme", folder / "README.md")  # absent: generate leaves READMEs alone (never the repository's)
    assert cli("generate", "--config", folder / "images.yaml", "--out", folder / "out", *readme).code == 0, "the JSON lock is fine"
    edited = edit(json_text)
    assert edited != json_text, "the edit changed nothing"
    lock.write_text(edited, encoding="utf-8")

    result = cli("generate", "--config", folder / "images.yaml", "--out", folder / "out2", *readme)

    assert result.code == 2, result.err
    assert_one_paragraph(result.err)
    assert f"error: {lock}:{line_of(edited, anchor, nth)}: " in result.err, result.err
    for text in says:
        assert text in result.err, result.err
    assert not (folder / "out2").exists(), "a failed generate writes nothing"
