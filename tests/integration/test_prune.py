"""`buildtool prune` removes a superseded content-hash tag on the real engine and keeps current ones."""

from __future__ import annotations

import pytest

from buildtool.engine import client as engine
from buildtool.engine.prune import local_tags, run_prune
from buildtool.errors import OperationError

pytestmark = [pytest.mark.engine]


@pytest.fixture(scope="module")
def client():
    try:
        return engine.docker_client()
    except OperationError as exc:
        pytest.skip(str(exc))


def test_prune_removes_only_superseded_tags(client, capsys):
    images = client.images.list(name="buildtool/base-*")
    if not images:
        pytest.skip("no base image on this engine to tag (run `buildtool bases`)")
    stale = "buildtool/prune-itest:h-" + "0" * 20
    images[0].tag("buildtool/prune-itest", "h-" + "0" * 20)
    # Everything else on the engine counts as current, so the test touches nothing but its own tag.
    current = {t for t in local_tags(client) if t != stale}
    assert run_prune(current, dry_run=True, cache_age=None) == 0
    assert engine.image_exists(client, stale)
    assert run_prune(current, dry_run=False, cache_age=None) == 0
    assert not engine.image_exists(client, stale)
    assert all(engine.image_exists(client, t) for t in current if t.startswith("buildtool/") and ":h-" in t)
    assert f"remove {stale}" in capsys.readouterr().out
