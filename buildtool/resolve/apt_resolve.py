"""`buildtool lock` (apt): apt itself resolves every layer's .debs, in a throwaway container of the base.

The container's sources.list names the base's release, -updates and -security pockets; apt
verifies their InRelease files with the base's own keyring (or the site's), and for each
cumulative set of requested names (a layer chain: system, then python, then MPI, ...)
`apt-get install -s` says which packages it would install on the bare base and
`--print-uris` where each one is and its SHA256 and size. buildtool only records what apt
said; it never chooses a version.

The parsing below is pure (unit-tested); `resolve_base_apt` is the edge that runs the container.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
import urllib.parse
from dataclasses import dataclass

from ..config.model import AptRepository
from ..config.schema import DEB_PACKAGE, DEB_VERSION
from ..engine import client as engine
from ..errors import OperationError
from ..lock.apt_sources import AptSource, archive_urls
from ..lock.format import POOL_FILE, AptIndex, BaseApt, DebPin, install_key

RESOLVE_TIMEOUT_S = 600
KEYRING_IN_CONTAINER = "/etc/apt/keyrings/buildtool-site.gpg"

_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[([a-z0-9-]+)\]\)")
_URI = re.compile(r"^'([^']+)' (\S+) ([0-9]+)(?: \S*)?$")


class ResolveError(Exception):
    """apt could not resolve a base's packages; the message is printed as is."""


@dataclass(frozen=True)
class AptRun:
    """What the resolver container printed, split into its sections."""

    indexes: tuple[tuple[str, str, str, str], ...]  # (suite, sha256 of InRelease, Date, list file name)
    manifest: tuple[str, ...]
    sets: dict[str, tuple[str, str]]  # set index -> (simulate output, print-uris output)
    stanzas: dict[tuple[str, str], dict[str, str]]  # (name, version) -> Filename, Size, SHA256 from the index


def resolver_script(sources: tuple[AptSource, ...], name_sets: list[str], signed_by: str = "", repos: tuple[AptRepository, ...] = ()) -> str:
    """The bash the throwaway container runs: private sources, update, then one simulation per name set."""
    lines = [
        "set -euo pipefail",
        "export DEBIAN_FRONTEND=noninteractive",
        "rm -f /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources",
        "cat > /etc/apt/sources.list <<'BUILDTOOL_SOURCES'",
        *[s.line(signed_by) for s in sources],
        "BUILDTOOL_SOURCES",
        *repository_files(repos),
        "apt-get update -qq -o Acquire::Retries=3 >&2",
        "echo '@@INDEXES'",
        "for f in /var/lib/apt/lists/*_InRelease; do d=$(sed -n 's/^Date: //p' \"$f\" | head -n1);"
        " echo \"$(basename \"$f\") $(sha256sum < \"$f\" | cut -d' ' -f1) $d\"; done",
        "echo '@@MANIFEST'",
        "dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\\n' | sed -n 's/^ii  *//p'",
    ]
    for i, names in enumerate(name_sets):
        quoted = " ".join(shlex.quote(n) for n in names.split())
        lines += [
            f"echo '@@SET {i}'",
            f"apt-get install -s -y --no-install-recommends {quoted} | grep '^Inst ' | tee -a /tmp/buildtool-inst || true",
            f"echo '@@URIS {i}'",
            f"apt-get install -qq -y --print-uris --no-install-recommends {quoted}",
        ]
    # print-uris gives each file's archive; its hash column is unreliable (MD5 or empty on apt 2.6), so
    # the SHA256 and size come from the index stanzas of exactly the versions apt chose.
    lines += [
        "echo '@@SHOW'",
        "if [ -s /tmp/buildtool-inst ]; then sed -E 's/^Inst ([^ ]+) (\\[[^]]*\\] )?\\(([^ ]+) .*/\\1=\\3/' /tmp/buildtool-inst | sort -u"
        " | xargs apt-cache show --no-all-versions | grep -E '^(Package|Version|Filename|Size|SHA256):'; fi",
        "echo '@@END'",
    ]
    return "\n".join(lines) + "\n"


def repository_files(repos: tuple[AptRepository, ...]) -> list[str]:
    """Shell lines writing each third-party repository's key, deb822 .sources (signed-by that key) and pin, as the image gets them.
    Every value has passed the schema's grammar; the heredocs are quoted, so nothing in them is expanded."""
    lines = ["mkdir -p /etc/apt/keyrings /etc/apt/preferences.d"] if repos else []
    for r in repos:
        for path, text in ((r.keyring_path, r.key_text), (f"/etc/apt/sources.list.d/buildtool-{r.key}.sources", r.sources_text()),
                           (f"/etc/apt/preferences.d/buildtool-{r.key}.pref", r.preferences_text())):
            lines += [f"cat > {shlex.quote(path)} <<'BUILDTOOL_FILE'", *text.rstrip("\n").splitlines(), "BUILDTOOL_FILE"]
    return lines


def repository_refusal(stderr: str, repos: tuple[AptRepository, ...]) -> str | None:
    """What apt said about a third-party repository it would not read (unsigned, or signed by another key), in words."""
    for r in repos:
        said = [ln.strip() for ln in stderr.splitlines() if r.url.split("://", 1)[1] in ln and ("E:" in ln or "W:" in ln or "Err:" in ln)]
        if said:
            return (f"apt refused the third-party repository {r.key} ({r.url} {r.suite}): {said[0]}\n"
                    f"    its InRelease must be signed by the key in {r.key_file} (images.yaml apt_repositories.{r.key}.key, line {r.line})")
    return None


def split_sections(output: str) -> AptRun:
    index_lines: list[str] = []
    manifest: list[str] = []
    sim: dict[str, list[str]] = {}
    uris: dict[str, list[str]] = {}
    show: list[str] = []
    current: list[str] | None = None
    ended = False
    for line in output.splitlines():
        if line == "@@INDEXES":
            current = index_lines
        elif line == "@@MANIFEST":
            current = manifest
        elif line.startswith("@@SET "):
            current = sim.setdefault(line[6:], [])
        elif line.startswith("@@URIS "):
            current = uris.setdefault(line[7:], [])
        elif line == "@@SHOW":
            current = show
        elif line == "@@END":
            ended = True
            current = None
        elif current is not None and line.strip():
            current.append(line.strip())
    if not ended:
        raise ResolveError("the resolver container stopped before it finished (see its output above)")
    indexes = []
    for line in index_lines:
        name, digest, *date = line.split(" ")
        suite = name.split("_dists_", 1)[-1].removesuffix("_InRelease").replace("_", "/")
        indexes.append((suite, digest, " ".join(date), name))
    return AptRun(tuple(indexes), tuple(manifest), {k: ("\n".join(sim.get(k, [])), "\n".join(v)) for k, v in uris.items()},
                  parse_stanzas(show))


def parse_stanzas(lines: list[str]) -> dict[tuple[str, str], dict[str, str]]:
    """(Package, Version) -> its fields, from `apt-cache show` lines (each stanza starts with Package:)."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    fields: dict[str, str] = {}

    def flush() -> None:
        if "Package" in fields and "Version" in fields:
            out[(fields["Package"], fields["Version"])] = dict(fields)

    for line in lines:
        key, _, value = line.partition(": ")
        if key == "Package":
            flush()
            fields = {}
        fields[key] = value.strip()
    flush()
    return out


def parse_simulation(text: str) -> dict[str, tuple[str, str]]:
    """name -> (version, arch) of each package `apt-get install -s` would install or upgrade."""
    out = {}
    for line in text.splitlines():
        m = _INST.match(line)
        if m:
            out[m.group(1).split(":", 1)[0]] = (m.group(2), m.group(3))
    return out


_ORIGINS = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\(\S+ (.*) \[[a-z0-9-]+\]\)")


def parse_pockets(text: str) -> dict[str, str]:
    """name -> the pocket apt takes the version from (`Debian-Security:12/bookworm-security` -> bookworm-security; a
    -security pocket wins when the version is in several): what release notes call a security fix."""
    out = {}
    for line in text.splitlines():
        m = _ORIGINS.match(line)
        if m:
            suites = [o.strip().rsplit("/", 1)[-1] for o in m.group(2).split(",") if "/" in o]
            suites = [x for x in suites if re.fullmatch(r"[a-z0-9][a-z0-9.-]*", x)]
            if suites:
                out[m.group(1).split(":", 1)[0]] = next((x for x in suites if x.endswith("-security")), suites[0])
    return out


def parse_uris(text: str, archives: dict[str, str]) -> dict[str, tuple[str, str]]:
    """name -> (archive id, pool filename) from `--print-uris`, each URL matched to an archive."""
    out = {}
    for line in text.splitlines():
        m = _URI.match(line)
        if not m:
            continue
        archive, filename = _split_url(m.group(1), archives)
        out[urllib.parse.unquote(m.group(2)).split("_", 1)[0]] = (archive, filename)
    return out


def _split_url(url: str, archives: dict[str, str]) -> tuple[str, str]:
    for archive, root in sorted(archives.items(), key=lambda kv: -len(kv[1])):
        prefix = root.rstrip("/") + "/"
        if url.startswith(prefix):
            return archive, urllib.parse.unquote(url[len(prefix):])
    raise ResolveError(f"apt wants {url}, which is in none of the configured archives ({', '.join(archives.values())})")


def closure(sim: dict[str, tuple[str, str]], uris: dict[str, tuple[str, str]],
            stanzas: dict[tuple[str, str], dict[str, str]], pockets: dict[str, str] | None = None) -> dict[str, DebPin]:
    pins = {}
    for name, (version, arch) in sim.items():
        if name not in uris:
            raise ResolveError(f"apt would install {name} {version} but printed no download for it")
        archive, filename = uris[name]
        stanza = stanzas.get((name, version), {})
        sha, size = stanza.get("SHA256", ""), stanza.get("Size", "")
        if not re.fullmatch(r"[0-9a-f]{64}", sha) or not size.isdigit():
            raise ResolveError(f"the index gives no SHA256 and Size for {name} {version}")
        if stanza.get("Filename") != filename:
            raise ResolveError(f"{name} {version}: apt fetches {filename} but the index names {stanza.get('Filename')}")
        size = int(size)
        if not (DEB_PACKAGE.fullmatch(name) and DEB_VERSION.fullmatch(version) and POOL_FILE.match(filename)):
            raise ResolveError(f"apt named a package outside the Debian grammar: {name} {version} {filename}")
        pins[name] = DebPin(name, version, arch, archive, filename, sha, size, (pockets or {}).get(name, ""))
    return pins


def build_base_apt(run: AptRun, sources: tuple[AptSource, ...], chains: list[list[tuple[str, ...]]], resolved_at: str,
                   repos: tuple[AptRepository, ...] = ()) -> BaseApt:
    """The lock entry from the container's output: every chain's closure, every .deb once."""
    archives = {**archive_urls(sources), **{r.key: r.url for r in repos}}
    keys = chain_keys(chains)
    packages: dict[str, DebPin] = {}
    installs: dict[str, tuple[str, ...]] = {}
    for i, key in enumerate(keys):
        sim_text, uri_text = run.sets.get(str(i), ("", ""))
        pins = closure(parse_simulation(sim_text), parse_uris(uri_text, archives), run.stanzas, parse_pockets(sim_text))
        for name in key.replace("|", " ").split():
            if name not in pins:
                raise ResolveError(f"apt installs nothing for {name!r} (already in the base, or no such package in "
                                   f"{', '.join(s.suite for s in sources)})")
        for name, pin in pins.items():
            if name in packages and packages[name] != pin:
                raise ResolveError(f"apt chose two different {name} for one base: {packages[name].version} and {pin.version}")
            packages[name] = pin
        installs[key] = tuple(sorted(pins))
    by_suite = {s.suite: s.archive for s in sources}
    third_party = tuple(_list_prefix(r.url) for r in repos)  # a repository's suite may share the distribution's name (jammy)
    indexes = tuple(AptIndex(suite, by_suite.get(suite, "?"), date, digest) for suite, digest, date, name in sorted(run.indexes)
                    if suite in by_suite and not name.startswith(third_party))
    return BaseApt(archives=archives, components=sources[0].components, indexes=indexes, resolved_at=resolved_at,
                   manifest=tuple(sorted(run.manifest)), packages=dict(sorted(packages.items())), installs=installs)


def _list_prefix(url: str) -> str:
    """The start of apt's /var/lib/apt/lists file names for an archive URL (scheme dropped, '/' as '_')."""
    return url.split("://", 1)[1].rstrip("/").replace("/", "_") + "_dists_"


def name_sets(chains: list[list[tuple[str, ...]]]) -> list[str]:
    """The cumulative requested names of every chain prefix, in the order build_base_apt numbers them."""
    return [key.replace(" | ", " ") for key in chain_keys(chains)]


def chain_keys(chains: list[list[tuple[str, ...]]]) -> list[str]:
    """install_key of every prefix of every chain, sorted: the closures a base's lock holds, numbered by position."""
    return sorted({install_key(c[:i]) for c in chains for i in range(1, len(c) + 1) if install_key(c[:i])})


def utc_timestamp(now: float | None = None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def resolve_base_apt(image: str, sources: tuple[AptSource, ...], chains: list[list[tuple[str, ...]]], keyring: str | None = None,
                     log=None, repos: tuple[AptRepository, ...] = ()) -> BaseApt:
    """Run the resolver in a throwaway container of `image` (host network: the archive may be on 127.0.0.1)."""
    resolved_at = utc_timestamp()
    script = resolver_script(sources, name_sets(chains), KEYRING_IN_CONTAINER if keyring else "", repos)
    argv = [engine.docker_cli(), "run", "--rm", "-i", "--network", "host", "--user", "0", "--entrypoint", "bash"]
    if keyring:
        argv += ["-v", f"{keyring}:{KEYRING_IN_CONTAINER}:ro"]
    argv += [image, "-s"]
    try:
        done = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=RESOLVE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ResolveError(f"apt in a container of {image} took longer than {RESOLVE_TIMEOUT_S} s") from None
    except OSError as exc:
        raise OperationError(f"could not run docker: {exc}") from None
    if log is not None:
        log.write(done.stderr)
    if done.returncode != 0:
        refused = repository_refusal(done.stderr, repos)
        if refused:
            raise ResolveError(refused)
        tail = [ln for ln in done.stderr.splitlines() if ln.strip()][-8:]
        raise ResolveError(f"apt in a container of {image} failed (exit {done.returncode}):\n    " + "\n    ".join(tail))
    return build_base_apt(split_sections(done.stdout), sources, chains, resolved_at, repos)
