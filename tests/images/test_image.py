"""One test per (image, check): the check's outcome read from its image's session (see conftest.py)."""

from __future__ import annotations

import pytest


def test_check(image_session, sessions, check, request):
    # Properties travel to the results file (conftest) and to the JUnit XML (xunit1).
    record = request.node.user_properties.append
    for key in ("family", "tier", "node"):
        record((key, check.get(key, "")))
    record(("image", image_session.entry["image"]))
    record(("check", check["id"]))
    outcome = image_session.evaluate(check, gpu_reason=sessions.gpu_reason)
    sessions.finished[image_session.entry["image"]] = image_session.checking_seconds()  # the last check sets it
    record(("note", outcome.message if outcome.status == "passed" else ""))
    if outcome.status == "not-run":
        pytest.skip(outcome.message)
    if outcome.status == "failed":
        pytest.fail(outcome.message, pytrace=False)
