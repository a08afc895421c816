"""The site overlay: what differs per site (registry, mirrors, CA bundle, credential source).

Read from a YAML file (--site or $BUILDTOOL_SITE) and then from BUILDTOOL_* variables.
It never changes generated/: the matrix and its Dockerfiles are the same everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import Location, UserError
from .model import Site
from .schema import Map, Str, Url, fail
from .source import load_yaml

SNAPSHOT = re.compile(r"^https?://[^\s'\"\\$;]+$")

SITE = Map(
    {
        "registry": Str(what="a registry host[:port]"),
        "namespace": Str(what="a repository namespace"),
        "ca_bundle": Str(what="a path to a PEM bundle"),
        "mirrors": Map({"apt": Url(), "pypi": Url(), "apt_snapshot": Str(pattern=SNAPSHOT, what="an http(s) URL template with {archive} and {timestamp}"),
                        "apt_keyring": Str(what="a path to a binary OpenPGP keyring")},
                       what="mirrors: apt, apt_snapshot, apt_keyring, pypi"),
        "credentials": Str(choices=("env", "docker-config")),
    },
    what="a site overlay",
)

DEFAULTS = {"registry": "127.0.0.1:5000", "namespace": "buildtool", "credentials": "env"}
ENV_KEYS = {
    "BUILDTOOL_REGISTRY": "registry",
    "BUILDTOOL_NAMESPACE": "namespace",
    "BUILDTOOL_CA_BUNDLE": "ca_bundle",
    "BUILDTOOL_APT_MIRROR": "apt_mirror",
    "BUILDTOOL_PYPI_INDEX": "pypi_index",
    "BUILDTOOL_APT_SNAPSHOT": "apt_snapshot",
    "BUILDTOOL_APT_KEYRING": "apt_keyring",
    "BUILDTOOL_CREDENTIALS": "credentials",
}


def load_site(path: Path | None, env: dict[str, str]) -> Site:
    values: dict[str, str | None] = dict(DEFAULTS)
    source = "defaults"
    if path is None and env.get("BUILDTOOL_SITE"):
        path = Path(env["BUILDTOOL_SITE"])
    if path is not None:
        doc = load_yaml(path)
        raw = SITE.check(doc, (), doc.data if doc.data is not None else {})
        mirrors = raw.pop("mirrors", {})
        values.update(raw)
        values["apt_mirror"] = mirrors.get("apt")
        values["pypi_index"] = mirrors.get("pypi")
        values["apt_snapshot"] = mirrors.get("apt_snapshot")
        values["apt_keyring"] = mirrors.get("apt_keyring")
        source = str(path)
        if values.get("ca_bundle") and not Path(str(values["ca_bundle"])).is_file():
            raise fail(doc, ("ca_bundle",), "CA bundle file not found", "a readable PEM file", values["ca_bundle"])
    for var, key in ENV_KEYS.items():
        if env.get(var):
            values[key] = env[var]
            source = f"{source} + {var}"
    if values["credentials"] not in ("env", "docker-config"):
        raise UserError("BUILDTOOL_CREDENTIALS must be 'env' or 'docker-config'", where=Location("environment"), key="BUILDTOOL_CREDENTIALS",
                        expected="env or docker-config", found=values["credentials"])
    return Site(
        registry=str(values["registry"]),
        namespace=str(values["namespace"]),
        ca_bundle=values.get("ca_bundle"),
        apt_mirror=values.get("apt_mirror"),
        pypi_index=values.get("pypi_index"),
        credentials=str(values["credentials"]),
        source=source,
        apt_snapshot=values.get("apt_snapshot"),
        apt_keyring=values.get("apt_keyring"),
    )
