"""What a check is: probes (commands run in the image's container, batched) and an evaluation (pure).

A check family module (os, python, mpi, cuda, ...) maps check names to `CheckImpl`s.
`probes(image, params)` says which commands the check needs; the runner executes the
probes of all checks of one image in one `docker exec` per user, in parallel inside the
container, and caches them with the session-wide batch queries (one `dpkg-query -W`, one
`pip list --format json`). `evaluate(image, params)` then reads the cached results and
raises `CheckFailed` with what differs from the pin, or `NotRun` when the check cannot
apply; it never runs anything, so it is unit-tested with fake results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_USER = ""  # the image's default user (its USER line): the non-root user
ROOT = "root"


class CheckFailed(AssertionError):
    """The image differs from what the plan pins; the message says how."""


class NotRun(Exception):
    """The check cannot run here (e.g. no GPU); reported as not run, never as passed."""


@dataclass(frozen=True)
class Probe:
    key: str  # unique per image: checks asking for the same key share one run
    command: str  # a bash script
    user: str = DEFAULT_USER
    timeout: int = 120
    files: tuple[tuple[str, str], ...] = ()  # (asset name under the assets folder, path in the container), copied first


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def brief(self, limit: int = 400) -> str:
        """The tail of stderr (else stdout) for a failure message."""
        text = (self.stderr.strip() or self.stdout.strip()) or "(no output)"
        return text if len(text) <= limit else "..." + text[-limit:]


@dataclass
class Image:
    """One image under test: its plan entry and everything gathered from its container."""

    entry: dict[str, Any]  # from the plan: image, node, tag, user, uid, checks, workdir, env
    inspect: dict[str, Any] = field(default_factory=dict)  # `docker inspect` of the image
    results: dict[str, Result] = field(default_factory=dict)  # probe key -> result
    assets: Path | None = None  # folder with the files probes copy in (tests/images/models)
    gpu: bool = False  # the container was started with some device kind's flags (`--gpus all` for nvidia)
    devices: frozenset[str] = frozenset()  # the device kinds handed to the container (components/devices.py)

    def __post_init__(self) -> None:
        if self.gpu and not self.devices:  # an Image made with gpu=True alone: the default GPU kind
            from ..components.devices import DEFAULT_GPU

            self.devices = frozenset({DEFAULT_GPU})

    @property
    def name(self) -> str:
        return str(self.entry["image"])

    @property
    def tag(self) -> str:
        return str(self.entry["tag"])

    def result(self, key: str) -> Result:
        if key not in self.results:
            raise CheckFailed(f"probe {key!r} did not run (runner error)")
        return self.results[key]

    def params_of(self, check_id: str) -> dict[str, Any] | None:
        """Params of another check of this image (e.g. the MPI flavor for the two-rank run)."""
        for check in self.entry.get("checks", []):
            if check["id"] == check_id:
                return dict(check["params"])
        return None

    # Session-wide batch queries -------------------------------------------------

    @property
    def packages(self) -> dict[str, str]:
        """Installed Debian packages -> version, from the one `dpkg-query -W` of the session."""
        return parse_dpkg(self.results.get(DPKG.key))

    @property
    def pip(self) -> dict[str, str]:
        """Installed Python distributions (normalized names) -> version, from the one `pip list`."""
        return parse_pip_list(self.results.get(PIP_LIST.key))

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.inspect.get("Config") or {}).get("Labels") or {})

    @property
    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in (self.inspect.get("Config") or {}).get("Env") or []:
            name, _, value = item.partition("=")
            out[name] = value
        return out

    def asset(self, name: str) -> Path:
        if self.assets is None:
            raise CheckFailed(f"no assets folder to read {name} from")
        return self.assets / name


@dataclass(frozen=True)
class CheckImpl:
    probes: Callable[[Image, dict[str, Any]], list[Probe]]
    evaluate: Callable[[Image, dict[str, Any]], str | None]  # returns an optional note; raises CheckFailed / NotRun
    doc: str = ""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


# The batch queries every image gets once per session.
# dpkg's columns after the status are what an SBOM states (buildtool/attest/inventory.py): architecture, source package and version.
DPKG = Probe("dpkg", "command -v dpkg-query >/dev/null || exit 0; "
             "dpkg-query -W -f '${Package}\\t${Version}\\t${db:Status-Abbrev}\\t${Architecture}\\t${source:Package}\\t${source:Version}\\n'")
PIP_LIST = Probe("pip-list", "python -m pip list --format json --disable-pip-version-check --no-input")
CONDA_LIST = Probe("conda-list", "command -v conda >/dev/null 2>&1 || exit 0; conda list --json")
SESSION_PROBES = (DPKG, PIP_LIST, CONDA_LIST)


def parse_dpkg(result: Result | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if result is None or not result.ok:
        return out
    for line in result.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1] and (len(parts) < 3 or parts[2].startswith("ii")):
            out[parts[0].split(":")[0]] = parts[1]
    return out


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pip_list(result: Result | None) -> dict[str, str]:
    if result is None or not result.ok:
        return {}
    try:
        rows = json.loads(result.stdout)
    except ValueError:
        return {}
    return {normalize(r["name"]): str(r["version"]) for r in rows if isinstance(r, dict) and "name" in r}


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


class UnknownCheck(KeyError):
    """A check name no family knows."""
