"""Build a complete images.lock for a test config without the network (fake hashes)."""

from __future__ import annotations

import hashlib

from buildtool.components import flavor
from buildtool.expand import expand
from buildtool.lock import Lock, PipPin, PipSet
from buildtool.lock_resolve import apt_names
from buildtool.model import Config
from buildtool.plan import build_dag
from buildtool.render import ancestor_pins, pip_set_id, python_line

APT_VERSION = "1.0-1"


def fake_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fake_lock(config: Config, apt_version: str = APT_VERSION) -> Lock:
    lock = Lock(path="images.lock")
    for key, base in config.bases.items():
        lock.apt[key] = {name: apt_version for name in apt_names(config, base)}
    dag = build_dag(config, expand(config, lock).variants)
    for node in dag.nodes.values():
        if node.component is None:
            continue
        requires = flavor(node.component.flavor).pip_requirements(node.component, node.facts)
        if not requires:
            continue
        pins = tuple(PipPin(r.split("==")[0], r.split("==")[1], fake_sha(r)) for r in requires)
        lock.pip[pip_set_id(node)] = PipSet(python_line(node.facts), tuple(requires), ancestor_pins(dag, node, lock), pins)
    return lock
