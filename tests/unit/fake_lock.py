"""Build a complete images.lock for a test config without the network (fake hashes).

The fake apt closure of a layer is exactly the names it asks for (no dependencies): enough for the
pure stages, which only read what the lock says; what apt really resolves is tested against a real
archive in tests/integration.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from buildtool.components import flavor
from buildtool.config.model import Config
from buildtool.lock.format import BaseApt, DebPin, Lock, PipPin, PipSet, bind_bases, install_key
from buildtool.plan.apt_layers import apt_names, base_chains
from buildtool.plan.dag import build_dag
from buildtool.plan.expand import expand
from buildtool.render.pins import node_pip_set_id, pip_request

APT_VERSION = "1.0-1"


def fake_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fake_deb(name: str, version: str, archive: str = "debian") -> DebPin:
    filename = f"pool/main/{name[0]}/{name}/{name}_{version.split(':')[-1]}_amd64.deb"
    return DebPin(name, version, "amd64", archive, filename, fake_sha(filename), 1000)


def fake_base_apt(versions: dict[str, str], manifest: tuple[str, ...] = ("base-files 12 amd64",)) -> BaseApt:
    archive = "debian"
    return BaseApt(archives={archive: "http://deb.debian.org/debian"}, components=("main",), indexes=(), resolved_at="20261201T000000Z",
                   manifest=manifest, packages={n: fake_deb(n, v, archive) for n, v in sorted(versions.items())}, installs={})


def with_closures(config: Config, lock: Lock) -> Lock:
    """Fill each base's installs with one closure per layer chain of the DAG (each closure = the names asked for)."""
    dag = build_dag(bind_bases(config, lock), expand(bind_bases(config, lock), lock).variants)
    for key, entry in list(lock.bases.items()):
        installs = {}
        for chain in base_chains(dag, key):
            for i in range(1, len(chain) + 1):
                installs[install_key(chain[:i])] = tuple(sorted({n for names in chain[:i] for n in names}))
        lock.bases[key] = replace(entry, installs=installs)
    return lock


def fake_lock(config: Config, apt_version: str = APT_VERSION) -> Lock:
    lock = Lock(path="images.lock")
    for key, base in config.bases.items():
        lock.bases[key] = fake_base_apt({name: apt_version for name in apt_names(config, base)})
    with_closures(config, lock)
    config = bind_bases(config, lock)
    dag = build_dag(config, expand(config, lock).variants)
    for node in dag.nodes.values():
        if node.component is None:
            continue
        requires = flavor(node.component.flavor).pip_requirements(node.component, node.facts)
        if not requires:
            continue
        pins = tuple(PipPin(r.split("==")[0], r.split("==")[1], fake_sha(r)) for r in requires)
        request = pip_request(dag, node, lock)
        users = lock.pip[node_pip_set_id(dag, node)].nodes if node_pip_set_id(dag, node) in lock.pip else ()
        lock.pip[node_pip_set_id(dag, node)] = PipSet(request.python, request.requires, request.constraints, pins, (*users, node.id))
    return lock
