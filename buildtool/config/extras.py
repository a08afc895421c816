"""`apt_repositories` and `extras`: packages beyond what the flavors install, and third-party apt repositories.

    apt_repositories:
      microsoft-prod:                      # the archive id in images.lock (the .debs' `archive`)
        url: https://packages.microsoft.com/ubuntu/22.04/prod
        suite: jammy
        components: [main]
        key: keys/microsoft.asc            # ASCII-armored public key, checked in beside images.yaml
        key_sha256: <sha256 of that file>
    extras:
      - on: {os: ubuntu22.04, mpi: openmpi}  # a matrix selector
        apt: [msodbcsql17]
        repositories: [microsoft-prod]

An entry's packages are locked like every other .deb (apt resolves them in the base's container,
with the repositories added: `signed-by` the key, pinned below the distribution's archives) and
installed in the layer of the deepest axis `on` names (plan/extras.py). The key's sha256 is checked
here, when images.yaml is read, so a swapped key file stops every command.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from .model import AptRepository, Extra
from .schema import DebPackage, List, Map, Sha256, Str, Url, fail
from .source import SourceDoc

ARCHIVE_KEY = Str(pattern=re.compile(r"[a-z0-9][a-z0-9-]*"), max_len=64,
                  what="a repository key: lowercase letters, digits and '-' (it becomes the archive id in images.lock and a file name)")
SUITE = Str(pattern=re.compile(r"[a-z0-9][a-z0-9.-]*"), max_len=64, what="an apt suite (lowercase letters, digits, '.', '-')")
KEY_FILE = Str(pattern=re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*"), max_len=256,
               validator=lambda v: "'..' may not leave the folder of images.yaml" if ".." in v.split("/") else None,
               what="a path relative to images.yaml (letters, digits, '_', '.', '-', '/')")
MAX_KEY_BYTES = 64 * 1024
ARMOR = "-----BEGIN PGP PUBLIC KEY BLOCK-----"

APT_REPOSITORY = Map(
    {"url": Url(), "suite": SUITE, "components": List(SUITE, min_items=1, unique=True), "key": KEY_FILE, "key_sha256": Sha256()},
    required=("url", "suite", "key", "key_sha256"),
    defaults={"components": ["main"]},
    what="a third-party apt repository (url, suite, components, key, key_sha256)",
)


def extra_spec(selector: Any) -> Map:
    return Map({"on": selector, "apt": List(DebPackage(), min_items=1, unique=True), "repositories": List(ARCHIVE_KEY, unique=True)},
               required=("on", "apt"), defaults={"repositories": []}, what="an extras entry (on, apt, repositories)")


def repositories(doc: SourceDoc, raw: dict[str, Any], reserved: set[str]) -> dict[str, AptRepository]:
    out = {}
    for key, entry in raw.items():
        path = ("apt_repositories", key)
        if key in reserved:
            raise fail(doc, path, f"repository key {key!r} is the id of a base's own archive", "another key", key)
        file = Path(doc.file).parent / entry["key"]
        try:
            data = file.read_bytes()[: MAX_KEY_BYTES + 1]
        except OSError as exc:
            raise fail(doc, path + ("key",), f"cannot read the key file: {exc.strerror or exc}", "an ASCII-armored public key beside images.yaml",
                       entry["key"]) from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry["key_sha256"]:
            raise fail(doc, path + ("key_sha256",), f"the key file {entry['key']} does not have the sha256 images.yaml names",
                       f"sha256 {digest} (check the key's fingerprint before you change key_sha256)", entry["key_sha256"])
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if len(data) > MAX_KEY_BYTES or not text.lstrip().startswith(ARMOR):
            raise fail(doc, path + ("key",), "the key file is not an ASCII-armored OpenPGP public key",
                       f"a file starting with {ARMOR} (gpg --armor --export), at most {MAX_KEY_BYTES} bytes", entry["key"])
        out[key] = AptRepository(key=key, url=entry["url"].rstrip("/"), suite=entry["suite"], components=tuple(entry["components"]),
                                 key_file=entry["key"], key_sha256=digest, key_text=text, line=doc.where(path).line or 0)
    return out


def extras(doc: SourceDoc, raw: list[dict[str, Any]], repos: dict[str, AptRepository], selector) -> tuple[Extra, ...]:
    out = []
    for i, entry in enumerate(raw):
        path = ("extras", i)
        for j, name in enumerate(entry["repositories"]):
            if name not in repos:
                raise fail(doc, path + ("repositories", j), f"unknown apt repository {name!r}",
                           "a key of apt_repositories: " + (", ".join(sorted(repos)) or "(none declared)"), name)
        out.append(Extra(index=i, on=selector(path + ("on",), entry["on"]), apt=tuple(entry["apt"]), repositories=tuple(entry["repositories"]),
                         line=doc.where(path).line or 0))
    return tuple(out)


__all__ = ["APT_REPOSITORY", "ARCHIVE_KEY", "extra_spec", "extras", "repositories"]
