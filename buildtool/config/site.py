"""The site overlay: what differs per site (registry, mirrors, CA bundle, credential source).

Read from a YAML file (--site or $BUILDTOOL_SITE) and then from BUILDTOOL_* variables. Both go
through the same grammar types, so a variable is held to what the file's key is held to.
It never changes generated/: the matrix and its Dockerfiles are the same everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import Location
from .model import Site
from .schema import Bool, FreeText, HttpUrl, ImageRepo, Map, RegistryHost, Spec, Str, fail
from .source import KeyPath, SourceDoc, load_yaml

SNAPSHOT = re.compile(r"^https?://[^\s'\"\\$;{}]+(\{archive\}[^\s'\"\\$;{}]*)?\{timestamp\}[^\s'\"\\$;{}]*$")

SITE = Map(
    {
        "registry": RegistryHost(),
        "namespace": ImageRepo(),
        "ca_bundle": FreeText(4096),
        "mirrors": Map({"apt": HttpUrl(), "pypi": HttpUrl(),
                        "apt_snapshot": Str(pattern=SNAPSHOT, what="an http(s) URL template with {archive} and {timestamp}"),
                        "apt_keyring": FreeText(4096)},
                       what="mirrors: apt, apt_snapshot, apt_keyring, pypi"),
        "credentials": Str(choices=("env", "docker-config")),
        "insecure": Bool(),
        "builder_id": HttpUrl(),  # the SLSA provenance's runDetails.builder.id (buildtool/attest/provenance.py)
    },
    what="a site overlay",
)

DEFAULTS: dict[str, Any] = {"registry": "127.0.0.1:5000", "namespace": "buildtool", "credentials": "env", "insecure": False}
# variable -> (the value's key, its spec: the same as the file's)
ENV_KEYS: dict[str, tuple[str, Spec]] = {
    "BUILDTOOL_REGISTRY": ("registry", SITE.fields["registry"]),
    "BUILDTOOL_NAMESPACE": ("namespace", SITE.fields["namespace"]),
    "BUILDTOOL_CA_BUNDLE": ("ca_bundle", SITE.fields["ca_bundle"]),
    "BUILDTOOL_APT_MIRROR": ("apt_mirror", HttpUrl()),
    "BUILDTOOL_PYPI_INDEX": ("pypi_index", HttpUrl()),
    "BUILDTOOL_APT_SNAPSHOT": ("apt_snapshot", Str(pattern=SNAPSHOT, what="an http(s) URL template with {archive} and {timestamp}")),
    "BUILDTOOL_APT_KEYRING": ("apt_keyring", FreeText(4096)),
    "BUILDTOOL_CREDENTIALS": ("credentials", SITE.fields["credentials"]),
    "BUILDTOOL_INSECURE_REGISTRY": ("insecure", Str(choices=("0", "1", "true", "false"))),
    "BUILDTOOL_BUILDER_ID": ("builder_id", HttpUrl()),
}


class EnvDoc(SourceDoc):
    """The process environment as a source: errors point at 'environment' and name the variable."""

    def where(self, path: KeyPath) -> Location:
        return Location("environment")


def load_site(path: Path | None, env: dict[str, str]) -> Site:
    values: dict[str, Any] = dict(DEFAULTS)
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
        if values.get("ca_bundle"):
            if not Path(str(values["ca_bundle"])).is_file():
                raise fail(doc, ("ca_bundle",), "CA bundle file not found", "a readable PEM file", values["ca_bundle"])
        if values.get("apt_keyring") and not Path(str(values["apt_keyring"])).is_file():
            raise fail(doc, ("mirrors", "apt_keyring"), "keyring file not found", "a readable binary OpenPGP keyring", values["apt_keyring"])
    envdoc = EnvDoc(file="environment", data=env)
    for var, (key, spec) in ENV_KEYS.items():
        if var in env and env[var] != "":
            value = spec.check(envdoc, (var,), env[var])
            values[key] = value in ("1", "true") if key == "insecure" else value
            source = f"{source} + {var}"
            if var in ("BUILDTOOL_CA_BUNDLE", "BUILDTOOL_APT_KEYRING") and not Path(value).is_file():
                raise fail(envdoc, (var,), "file not found", "a readable file", value)
    return Site(
        registry=str(values["registry"]),
        namespace=str(values["namespace"]),
        ca_bundle=values.get("ca_bundle"),
        apt_mirror=values.get("apt_mirror"),
        pypi_index=values.get("pypi_index"),
        credentials=str(values["credentials"]),
        source=source,
        insecure=bool(values["insecure"]),
        apt_snapshot=values.get("apt_snapshot"),
        apt_keyring=values.get("apt_keyring"),
        builder_id=values.get("builder_id"),
    )
