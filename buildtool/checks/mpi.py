"""MPI: `mpirun --version` reports the pin; two ranks run as the non-root user (and mpi4py under mpirun)."""

from __future__ import annotations

import re
import shlex

from ..config.templating import versions_agree
from .base import CheckFailed, CheckImpl, Image, Probe, expect, normalize
from .probes import source

MPIRUN_VERSION = Probe("mpirun-version", "command -v mpirun && mpirun --version 2>&1")
# Open MPI refuses to place 2 ranks on fewer slots without --oversubscribe; MPICH and Intel MPI take plain -n 2.
# Each launch gets its own TMPDIR: the probes of one image run in parallel, and two Open MPI launches
# creating the same session directory under /tmp at once fail with "orte_session_dir failed".
_LAUNCH = ('export TMPDIR="$(mktemp -d)"; extra=""; if mpirun --version 2>&1 | grep -q "Open MPI"; then extra="--oversubscribe"; fi; '
           'exec mpirun -n 2 $extra ')
TWO_RANKS = Probe("mpi-two-ranks", _LAUNCH + "hostname", timeout=90)
MPI4PY_SCRIPT = ("from mpi4py import MPI; c = MPI.COMM_WORLD; "
                 "print(c.Get_rank(), c.Get_size(), c.allreduce(c.Get_rank() + 1), MPI.Get_library_version().splitlines()[0].strip())")
MPI4PY = Probe("mpi-mpi4py", _LAUNCH + f"python -c '{MPI4PY_SCRIPT}'", timeout=90)
MPI_LIBRARY = Probe("mpi-library", f"python -c {shlex.quote(source('mpi_library.py'))}")

_VERSION = re.compile(r"\d+(?:\.\d+)+")


def reported_versions(text: str) -> list[str]:
    return _VERSION.findall(text)


def version_matches(output: str, pin: str, recorded: list[str]) -> tuple[bool, str]:
    """Does `mpirun --version` report the pin? A shorter report (Intel MPI prints 2021.17 for 2021.17.2)
    counts when the package database records the exact pin."""
    found = reported_versions(output)
    if pin in found:
        return True, f"mpirun reports {pin}"
    prefixes = [v for v in found if pin.startswith(v + ".")]
    if prefixes and recorded:
        return True, f"mpirun reports {prefixes[0]}; {recorded[0]} is installed"
    return False, f"mpirun reports {', '.join(found) or 'no version'}, the pin is {pin}"


def _recorded(image: Image, pin: str) -> list[str]:
    """Installed MPI packages (Debian or PyPI) whose version is exactly the pin."""
    out = []
    for name, version in sorted(image.packages.items()):
        if "mpi" in name and version.split(":", 1)[-1].rsplit("-", 1)[0] == pin:
            out.append(f"{name} {version} (dpkg)")
    for name, version in sorted(image.pip.items()):
        if "mpi" in name and name != normalize("mpi4py") and version == pin:
            out.append(f"{name} {version} (pip)")
    return out


def _version_probes(image: Image, params: dict) -> list[Probe]:
    return [MPIRUN_VERSION]


def _version_evaluate(image: Image, params: dict) -> str:
    result = image.result(MPIRUN_VERSION.key)
    expect(result.ok, f"`mpirun --version` failed (exit {result.rc}): {result.brief()}")
    ok, note = version_matches(result.stdout, str(params["version"]), _recorded(image, str(params["version"])))
    expect(ok, note)
    return f"{result.stdout.splitlines()[0]}: {note}"


def _run_probes(image: Image, params: dict) -> list[Probe]:
    return [TWO_RANKS, MPI4PY] if params.get("mpi4py") else [TWO_RANKS]


def _run_evaluate(image: Image, params: dict) -> str:
    ranks = image.result(TWO_RANKS.key)
    expect(ranks.ok, f"`mpirun -n 2 hostname` as the default user failed (exit {ranks.rc}): {ranks.brief()}")
    hosts = [line for line in ranks.stdout.splitlines() if line.strip()]
    expect(len(hosts) == 2, f"`mpirun -n 2 hostname` printed {len(hosts)} lines, expected 2: {ranks.stdout.strip()[:300]!r}")
    if not params.get("mpi4py"):
        return "2 ranks ran"
    expect("mpi4py" in image.pip, "mpi4py is pinned for this image but `pip list` does not show it")
    run = image.result(MPI4PY.key)
    expect(run.ok, f"mpi4py under `mpirun -n 2` failed (exit {run.rc}): {run.brief()}")
    rows = sorted(line.split(" ", 3) for line in run.stdout.splitlines() if re.match(r"^\d+ \d+ \d+", line))
    got = [r[:3] for r in rows]
    if got != [["0", "2", "3"], ["1", "2", "3"]]:
        raise CheckFailed(f"mpi4py ranks printed {run.stdout.strip()[:300]!r}, expected ranks 0 and 1 of 2 with allreduce 3")
    library = rows[0][3] if len(rows[0]) > 3 else ""
    return f"2 ranks ran; mpi4py {image.pip['mpi4py']} allreduce ok ({library})"


def claim_problems(claims: dict[str, str], reported: dict[str, list[str]]) -> list[str]:
    """What a name or a label claims against what the image reports: each claimed version must agree with a version
    each reporter prints ("mpirun (Open MPI) 5.0.9"), so an image named "openmpi5.0" that carries 4.1.6 fails."""
    problems = []
    for where, claim in sorted(claims.items()):
        for who, found in sorted(reported.items()):
            if not any(versions_agree(claim, v) for v in found):
                problems.append(f"{where} says {claim}, {who} reports {', '.join(found) or 'no version'}")
    return problems


def claimed_versions(image: Image, params: dict) -> dict[str, str]:
    """The MPI versions the image's name (its MPI tag part, as planned) and its mpi version label claim."""
    claims = {}
    for i, version in enumerate(params.get("claims", ())):
        claims[f"the name's MPI part {params['tag']!r}" + (f" (#{i + 1})" if i else "")] = version
    label = image.labels.get("io.buildtool.mpi.version")
    if label:
        claims[f"label io.buildtool.mpi.version={label!r}"] = label
    return claims


def _claims_probes(image: Image, params: dict) -> list[Probe]:
    return [MPIRUN_VERSION, MPI_LIBRARY]


def _claims_evaluate(image: Image, params: dict) -> str:
    expect(str(params.get("tag", "")) in image.name, f"the image name {image.name!r} does not contain its MPI part {params.get('tag')!r}")
    run, lib = image.result(MPIRUN_VERSION.key), image.result(MPI_LIBRARY.key)
    expect(run.ok, f"`mpirun --version` failed (exit {run.rc}): {run.brief()}")
    expect(lib.ok, f"reading MPI_Get_library_version failed (exit {lib.rc}): {lib.brief()}")
    library = lib.stdout.strip().split("\t", 1)[-1]
    reported = {"mpirun --version": reported_versions(run.stdout.split("Report bugs", 1)[0]),
                "MPI_Get_library_version": reported_versions(library)[:1]}
    claims = claimed_versions(image, params)
    problems = claim_problems(claims, reported)
    if problems:
        raise CheckFailed("the image's name or labels claim another MPI than it carries: " + "; ".join(problems))
    return f"{len(claims)} claims agree with mpirun and the library ({library})"


CHECKS = {
    "name-matches-mpi": CheckImpl(_claims_probes, _claims_evaluate,
                                  "the version in the image's name and its mpi label agree with `mpirun --version` and libmpi's own"),
    "mpirun-version": CheckImpl(_version_probes, _version_evaluate, "`mpirun --version` contains the pinned version"),
    "two-rank-run": CheckImpl(_run_probes, _run_evaluate, "`mpirun -n 2` as the non-root user; mpi4py allreduce under mpirun"),
}
