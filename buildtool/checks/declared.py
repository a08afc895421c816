"""Declared checks from images.yaml `checks:` (kind command, file, env or label), inherited along the DAG."""

from __future__ import annotations

import hashlib
import re
import shlex

from .base import DEFAULT_USER, ROOT, CheckFailed, CheckImpl, Image, Probe, expect


def _key(kind: str, *parts: str) -> str:
    return f"declared-{kind}:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


# command: exit code (default 0) and an optional stdout regex, as the image's user or `user` --------------------


def command_probe(params: dict) -> Probe:
    user = str(params.get("user") or DEFAULT_USER)
    return Probe(_key("command", params["command"], user), params["command"], user=user)


def command_problems(params: dict, rc: int, stdout: str, stderr: str) -> list[str]:
    problems = []
    want_rc = int(params.get("exit", 0))
    if rc != want_rc:
        problems.append(f"`{params['command']}` exited {rc}, expected {want_rc}" + (f": {stderr.strip()[-300:]}" if stderr.strip() else ""))
    pattern = params.get("stdout")
    if pattern is not None and not re.search(pattern, stdout.strip(), re.MULTILINE):
        problems.append(f"`{params['command']}` printed {stdout.strip()[:300]!r}, which does not match /{pattern}/")
    return problems


# file: exists (default true), mode, owner ('user' or 'user:group') ---------------------------------------------------


def file_probe(params: dict) -> Probe:
    path = shlex.quote(params["file"])
    return Probe(_key("file", params["file"]), f"if [ -e {path} ] || [ -L {path} ]; then stat -c '%a %U %G %F' {path}; else echo missing; fi", user=ROOT)


def file_problems(params: dict, stat_line: str) -> list[str]:
    path, line = params["file"], stat_line.strip()
    exists = bool(params.get("exists", True))
    if line == "missing" or not line:
        return [f"{path} does not exist"] if exists else []
    if not exists:
        return [f"{path} exists ({line}), expected it absent"]
    mode, user, group, kind = (line.split(" ", 3) + ["", "", ""])[:4]
    problems = []
    if params.get("mode") and int(str(params["mode"]), 8) != int(mode, 8):
        problems.append(f"{path} has mode {int(mode, 8):04o}, expected {int(str(params['mode']), 8):04o}")
    owner = params.get("owner")
    if owner:
        want_user, _, want_group = str(owner).partition(":")
        if want_user != user or (want_group and want_group != group):
            problems.append(f"{path} is owned by {user}:{group}, expected {owner}")
    return problems


def env_problems(want: dict[str, str], env: dict[str, str]) -> list[str]:
    return [f"ENV {k}={env.get(k)!r}, expected {v!r}" if k in env else f"ENV {k} is not set (expected {v!r})"
            for k, v in sorted(want.items()) if env.get(k) != str(v)]


def label_problems(want: dict[str, str], labels: dict[str, str]) -> list[str]:
    return [f"label {k}={labels.get(k)!r}, expected {v!r}" if k in labels else f"label {k} is missing (expected {v!r})"
            for k, v in sorted(want.items()) if labels.get(k) != str(v)]


def _probes(image: Image, params: dict) -> list[Probe]:
    kind = params["kind"]
    if kind == "command":
        return [command_probe(params)]
    if kind == "file":
        return [file_probe(params)]
    return []


def _evaluate(image: Image, params: dict) -> str:
    kind = params["kind"]
    if kind == "command":
        r = image.result(command_probe(params).key)
        problems = command_problems(params, r.rc, r.stdout, r.stderr)
        note = f"`{params['command']}` -> exit {r.rc}"
    elif kind == "file":
        r = image.result(file_probe(params).key)
        expect(r.ok, f"stat {params['file']} failed: {r.brief()}")
        problems = file_problems(params, r.stdout)
        note = f"{params['file']}: {r.stdout.strip()}"
    elif kind == "env":
        problems = env_problems(params["env"], image.env)
        note = ", ".join(f"{k}={v}" for k, v in sorted(params["env"].items()))
    elif kind == "label":
        problems = label_problems(params["label"], image.labels)
        note = ", ".join(f"{k}={v}" for k, v in sorted(params["label"].items()))
    else:
        raise CheckFailed(f"unknown declared check kind {kind!r}")
    if problems:
        raise CheckFailed("; ".join(problems))
    return note


DECLARED = CheckImpl(_probes, _evaluate, "a check declared in images.yaml")


def impl(name: str) -> CheckImpl:
    """Declared checks are named by the user; one implementation dispatches on params['kind']."""
    return DECLARED


CHECKS: dict[str, CheckImpl] = {}
