"""The grammar types: what each admits and refuses (the refusals are the injection attempts of the probe)."""

from __future__ import annotations

import pytest

from buildtool.config import schema
from buildtool.config.source import SourceDoc
from buildtool.errors import UserError

DOC = SourceDoc(file="t.yaml", data=None, lines={(): 1, ("k",): 7})

GOOD = {
    "DebPackage": ["libnccl2", "cuda-cudart-12-8", "libstdc++6", "g++"],
    "DebVersion": ["12.8.90-1", "2.27.3-1+cuda12.8", "1:4.1.4-3+b1", "4.3.0+really4.2.1-1", "1.0~rc1", "3.0"],
    "PipName": ["onnxruntime", "nvidia-cudnn-cu12", "zope.interface", "A_b", "x"],
    "PipVersion": ["1.23.2", "2.0.0rc1", "1!2.0", "1.0.post1", "1.0+local.1"],
    "AbsPath": ["/home/app", "/opt/conda", "/", "/a/b-c_d.e/"],
    "HttpUrl": ["https://repo.anaconda.com/miniconda/Miniconda3.sh", "http://deb.debian.org/debian", "https://u:p@h.example:8443/x/",
                "http://[::1]:5000/simple/"],
    "Locale": ["C.UTF-8", "en_US.UTF-8", "C", "POSIX", "de_DE@euro"],
    "UserName": ["app", "_svc", "a-b_c1"],
    "CondaChannel": ["conda-forge", "nvidia/label/cuda-12.8.0", "pytorch"],
    "ImageRepo": ["buildtool", "team/ml", "a.b_c-d/e__f"],
    "ImageTag": ["latest", "20261123.v2", "h-abc", "_x", "A" * 128],
    "RegistryHost": ["127.0.0.1:5000", "registry.example.com", "[::1]:5000", "localhost"],
    "FreeText": ["ML base images (CPU, CUDA)", "Ünïcode is fine", "quotes \" ' and $ are quoted later"],
    "Template": ["{mpi.tag}-{os.tag}", "openmpi{version}", "{date}.v{n}", "plain", "{{literal}}"],
}

BAD = {
    "DebPackage": ["a", "Libfoo", "foo;bar", "foo bar", "-foo", "foo\n", "foo_bar", "x$y"],
    "DebVersion": ["NaN", "1.0;touch /tmp/X", "1.0 ", "1.0-", "v1.0", "1.0\n", "1.0$(id)", "", "1:"],
    "PipName": ["x\n--index-url http://evil.invalid/", "-x", "x-", "a b", "a;b", "", "a==1"],
    "PipVersion": ["latest", "1.0 ", "1.0;x", "1.0\n", "", "==1.0", ">=1"],
    "AbsPath": ["home/app", "/home/app;touch${IFS}/tmp/X", "/a b", "/a'b", '/a"b', "/a$b", "/a\\b", "/a\nb", "/a`id`", "/a|b", "/a&b", "/a*"],
    "HttpUrl": ["ftp://x", "https://x y", "https://x/a;b", "https://x/$(id)", "https://x/\"", "https://x/'", "file:///etc/passwd",
                "https://x/a&b", "http://x:0/", "http://x:99999/", "https://", "https://x\n"],
    "Locale": ["C.UTF-8\nRUN touch /tmp/X", "C.UTF-8;id", "en US", "", "C.UTF-8 "],
    "UserName": ["App", "root$", "a b", "1app", "a" * 33, "a;b", ""],
    "CondaChannel": ["conda-forge;id", "a b", "/abs", "x/", "", "c\n"],
    "ImageRepo": ["My Team", "a//b", "A", "a-", "-a", "a..b", "a" * 256, "https://x", "a b"],
    "ImageTag": ["LATEST!", "latest\n", "-x", ".x", "A" * 129, "{date} v{n}", "a b", ""],
    "RegistryHost": ["https://r.example", "r example", "r.example/path", "r:0", "r:65536", "", "r;id"],
    "FreeText": ["line\nRUN touch /tmp/X", "a\rb", "nul\x00", "esc\x1b[0m", "tab\tx", "sep\u2028x", "x" * 1025],
    "Template": ["{version[x]}", "{version.__class__.__name__}", "{version:x>99999999}", "{version!r}", "{", "}", "{}",
                 "a\nb", "{ version }"],
}


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, vs in GOOD.items() for v in vs])
def test_grammar_accepts(kind: str, value: str) -> None:
    assert getattr(schema, kind)().check(DOC, ("k",), value) == value


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, vs in BAD.items() for v in vs])
def test_grammar_refuses_with_location(kind: str, value: str) -> None:
    with pytest.raises(UserError) as err:
        getattr(schema, kind)().check(DOC, ("k",), value)
    text = err.value.render()
    assert "t.yaml:7" in text and "key: k" in text and "expected:" in text


@pytest.mark.parametrize("value", [0, -1, 99999999999, 2**31 - 1, True, "1000", 1.5])
def test_uid_range(value: object) -> None:
    with pytest.raises(UserError):
        schema.Uid().check(DOC, ("k",), value)
    assert schema.Uid().check(DOC, ("k",), 1000) == 1000


def test_no_pattern_allows_a_trailing_newline() -> None:
    """re.match with '$' lets 'x\\n' through; every pattern is matched whole."""
    with pytest.raises(UserError):
        schema.Version().check(DOC, ("k",), "1.0\n")
    with pytest.raises(UserError):
        schema.Name().check(DOC, ("k",), "app\n")


def test_long_hostile_values_are_refused_quickly() -> None:
    import time

    start = time.monotonic()
    for kind in BAD:
        for value in ("/" + "a" * 5000 + ";", "a" * 100_000 + "!"):
            with pytest.raises(UserError):
                getattr(schema, kind)().check(DOC, ("k",), value)
    assert time.monotonic() - start < 2
