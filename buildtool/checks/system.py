"""The image's default user is the configured non-root user; workdir and env as declared."""

from __future__ import annotations

from .base import CheckFailed, CheckImpl, Image, Probe, expect

WHOAMI = Probe("whoami", "id -u; id -un; pwd")


def _user_probes(image: Image, params: dict) -> list[Probe]:
    return [WHOAMI]


def _user_evaluate(image: Image, params: dict) -> str:
    result = image.result(WHOAMI.key)
    expect(result.ok, f"`id` failed as the default user: {result.brief()}")
    lines = result.stdout.splitlines() + ["", "", ""]
    uid, name = lines[0].strip(), lines[1].strip()
    expect(uid != "0", f"the default user is root (uid 0, name {name!r}); images must end as {params['user']!r}")
    expect(name == params["user"], f"the default user is {name!r} (uid {uid}), expected {params['user']!r}")
    want_uid = image.entry.get("uid")
    if want_uid is not None:
        expect(uid == str(want_uid), f"the default user {name!r} has uid {uid}, expected {want_uid}")
    configured = str((image.inspect.get("Config") or {}).get("User") or "")
    expect(configured not in ("", "0", "root") and not configured.startswith(("0:", "root:")),
           f"the image config's User is {configured or '(empty: root)'!r}; `docker run` without -u would run as root")
    return f"uid {uid} ({name})"


def _config_probes(image: Image, params: dict) -> list[Probe]:
    return [WHOAMI]


def _config_evaluate(image: Image, params: dict) -> str:
    problems = []
    workdir = params.get("workdir")
    if workdir:
        configured = (image.inspect.get("Config") or {}).get("WorkingDir") or ""
        if configured != workdir:
            problems.append(f"WorkingDir is {configured!r}, expected {workdir!r}")
        lines = image.result(WHOAMI.key).stdout.splitlines()
        if len(lines) >= 3 and lines[2].strip() != workdir:
            problems.append(f"a shell starts in {lines[2].strip()!r}, expected {workdir!r}")
    env = image.env
    for name, value in sorted((params.get("env") or {}).items()):
        found = env.get(name)
        if "$" + name in value:  # PATH=/opt/venv/bin:$PATH -> the prefix must lead the value
            head = value.split("$" + name)[0]
            if found is None or not found.startswith(head):
                problems.append(f"{name}={found!r} does not start with {head!r}")
        elif found != value:
            problems.append(f"{name}={found!r}, expected {value!r}")
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"workdir {workdir}, {len(params.get('env') or {})} env vars"


CHECKS = {
    "non-root-user": CheckImpl(_user_probes, _user_evaluate, "`id -u` is not 0 and the name is the configured user"),
    "image-config": CheckImpl(_config_probes, _config_evaluate, "WorkingDir and the components' ENV as rendered"),
}
