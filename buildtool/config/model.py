"""Typed data passed between stages: the validated config, variants, plan nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .source import SourceDoc

# Layer order of every image. Python comes before MPI because Intel MPI (impi-rt)
# and mpi4py install into the Python environment.
AXES: tuple[str, ...] = ("os", "python", "mpi", "accelerator", "onnxruntime")
LAYER_AXES: tuple[str, ...] = ("python", "mpi", "accelerator", "onnxruntime")

# The platforms buildtool builds for (OCI os/arch), and the Debian architecture of each.
DEFAULT_PLATFORM = "linux/amd64"
PLATFORMS: tuple[str, ...] = ("linux/amd64", "linux/arm64")
DEB_ARCHES: dict[str, str] = {"linux/amd64": "amd64", "linux/arm64": "arm64"}


@dataclass(frozen=True)
class Bootstrap:
    tool: str
    suite: str
    mirror: str
    variant: str
    components: tuple[str, ...]
    security_mirror: str = ""  # the -security pocket's archive ("" = the family's default)
    script: str = ""  # debootstrap script when the host's debootstrap lacks the suite's (bookworm's has no noble)

    @property
    def security_url(self) -> str:
        return self.security_mirror or self.mirror


@dataclass(frozen=True)
class Base:
    key: str
    family: str  # debian | ubuntu
    version: str
    codename: str
    image: str  # registry reference pinned by digest
    python: str  # the distribution's python3 version
    tag: str
    bootstrap: Bootstrap | None
    provides: tuple[tuple[str, str], ...] = ()  # e.g. (("cuda", "12.8.1"),) for NVIDIA bases
    resolve_on: str = ""  # a base whose image stands in for this one when its apt pins are resolved (it cannot be pulled here)
    content: str = ""  # digest of the base's package manifest, from the lock ("" before the first lock)
    platforms: tuple[str, ...] = ("linux/amd64",)  # the platforms this base is made for (images.yaml `platforms`)
    arch: str = "amd64"  # the Debian architecture of this instance of the base (plan/platforms.py makes the others)

    @property
    def local_ref(self) -> str:
        """The local name every system layer builds FROM; `buildtool bases` tags it."""
        return f"buildtool/base-{self.key}:{self.content_id}"

    @property
    def content_id(self) -> str:
        """The base's tag: its recipe and what it contains (the lock's manifest digest), so two bootstraps
        of one recipe that installed different packages never share a tag."""
        from ..hashing import short_hash

        return short_hash(f"{self.recipe_id}\0{self.content}", 12) if self.content else self.recipe_id

    @property
    def recipe_id(self) -> str:
        from ..hashing import short_hash

        boot = self.bootstrap
        recipe = [self.image, boot.tool, boot.suite, boot.mirror, boot.variant, ",".join(boot.components)] if boot else [self.image]
        if self.arch != "amd64":  # amd64 keeps the recipe id (and so every hash above it) it had before platforms existed
            recipe.append(f"arch={self.arch}")
        return short_hash("\0".join(recipe), 12)


@dataclass(frozen=True)
class Component:
    axis: str
    key: str
    flavor: str
    fields: dict[str, Any]

    @property
    def is_layer(self) -> bool:
        return self.flavor != "none"


@dataclass(frozen=True)
class Matcher:
    """One condition on a fact: equals / one of / version range / same as another fact."""

    kind: str  # eq | in | not_in | version | same
    value: Any
    parts: int = 0  # for `same`: compare the first N release segments (0 = all)


@dataclass(frozen=True)
class Rule:
    id: str
    reason: str
    when: tuple[tuple[str, Matcher], ...]
    require: tuple[tuple[str, Matcher], ...]
    line: int


@dataclass(frozen=True)
class Selector:
    """A partial assignment of axes; a list value means any of them."""

    values: tuple[tuple[str, tuple[str, ...]], ...]
    line: int

    def matches(self, combo: dict[str, str]) -> bool:
        return all(combo.get(axis) in allowed for axis, allowed in self.values)


@dataclass(frozen=True)
class Group:
    name: str
    select: tuple[Selector, ...]
    exclude: tuple[Selector, ...]
    except_groups: tuple[str, ...]


@dataclass(frozen=True)
class PublishRule:
    """One tags.publish entry (config/publish_tags.py): what it sets for the images it matches."""

    index: int
    on: Selector | None
    group: str  # "" = any group
    repository: str | None
    release: str | None  # a tag template naming {release}
    moving: tuple[str, ...] | None
    line: int
    lines: dict[str, int] = field(default_factory=dict, compare=False, hash=False)  # key -> its line


@dataclass(frozen=True)
class TagSpec:
    image: str
    release: str
    moving: tuple[str, ...]
    line: int
    repository: str = "{image}"  # the repository template of every image
    publish: tuple[PublishRule, ...] = ()
    moving_line: int = 0
    repository_line: int = 0


@dataclass(frozen=True)
class SystemSpec:
    user: str
    uid: int
    locale: str
    workdir: str
    uv: str = ""  # tools.uv.version: pip sets are installed with uv (else with pip)
    uv_sha256: tuple[str, ...] = ()  # one per platform's wheel


@dataclass(frozen=True)
class Site:
    registry: str
    namespace: str
    ca_bundle: str | None
    apt_mirror: str | None
    pypi_index: str | None
    credentials: str  # env | docker-config
    source: str
    apt_snapshot: str | None = None  # e.g. https://snapshot.debian.org/archive/{archive}/{timestamp}
    apt_keyring: str | None = None  # an extra keyring (binary .gpg) that signs the site's apt archive
    insecure: bool = False  # the registry speaks plain HTTP (a loopback test registry): bearer realms may be http too
    builder_id: str | None = None  # who built: the provenance's builder.id (else CI's workflow, else this host)


@dataclass(frozen=True)
class AptRepository:
    """A third-party apt repository (config/extras.py): its key file is checked in, its sha256 in images.yaml."""

    key: str  # the archive id in images.lock
    url: str
    suite: str
    components: tuple[str, ...]
    key_file: str  # relative to images.yaml
    key_sha256: str
    key_text: str  # the ASCII-armored public key
    line: int

    @property
    def keyring_path(self) -> str:
        return f"/etc/apt/keyrings/buildtool-{self.key}.asc"

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]

    def sources_text(self) -> str:
        """The deb822 .sources file, `signed-by` the repository's own key."""
        return (f"Types: deb\nURIs: {self.url}\nSuites: {self.suite}\nComponents: {' '.join(self.components)}\n"
                f"Signed-By: {self.keyring_path}\n")

    def preferences_text(self) -> str:
        """Below the distribution (500): the repository gives only the packages the distribution lacks."""
        return f"Package: *\nPin: origin \"{self.host}\"\nPin-Priority: 100\n"


@dataclass(frozen=True)
class Extra:
    """An extras entry: apt packages (and the repositories they come from) for the images `on` selects."""

    index: int
    on: Selector
    apt: tuple[str, ...]
    repositories: tuple[str, ...]
    line: int


@dataclass
class Config:
    path: str
    doc: SourceDoc
    project: dict[str, str]
    system: SystemSpec
    bases: dict[str, Base]
    components: dict[str, dict[str, Component]]  # axis -> key -> component
    axes: dict[str, tuple[str, ...]]
    exclude: tuple[Selector, ...]
    include: tuple[Selector, ...]
    rules: tuple[Rule, ...]
    tags: TagSpec
    groups: dict[str, Group]
    default_group: str
    checks: tuple[dict[str, Any], ...]
    site: Site
    apt_repositories: dict[str, AptRepository] = field(default_factory=dict)
    extras: tuple[Extra, ...] = ()

    def component(self, axis: str, key: str) -> Component:
        return self.components[axis][key]


@dataclass(frozen=True)
class Variant:
    """One image of the matrix: an assignment of every axis plus its resolved facts."""

    combo: tuple[tuple[str, str], ...]  # in AXES order
    facts: dict[str, Any] = field(compare=False, hash=False)
    name: str = ""  # the image name from the tag template

    def get(self, axis: str) -> str:
        return dict(self.combo)[axis]

    @property
    def key(self) -> str:
        return ".".join(v for _, v in self.combo)


class Dropped(NamedTuple):
    """A combination the matrix leaves out, and why (tens of thousands at scale: a tuple is cheap to make)."""

    combo: tuple[tuple[str, str], ...]
    reason: str  # "rule <id>: <reason>" or "exclude (images.yaml:L)"
