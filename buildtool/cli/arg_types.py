"""argparse types for buildtool's flags: a bad value is exit 2 with the flag named, never a traceback."""

from __future__ import annotations

import argparse
import re

MAX_JOBS = 256
DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:h|m|s|ms))+")


def positive_int(text: str) -> int:
    """--jobs and the like: an integer from 1 to MAX_JOBS."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to {MAX_JOBS}, found {text!r}") from None
    if not 1 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to {MAX_JOBS}, found {value}")
    return value


def level(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a DAG level (an integer >= 0), found {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a DAG level (an integer >= 0), found {value}")
    return value


def duration(text: str) -> str:
    """A Go duration as `docker builder prune --filter until=` takes it ('168h', '90m', '1h30m'), or '' for none."""
    if text == "" or DURATION.fullmatch(text):
        return text
    raise argparse.ArgumentTypeError(f"expected a duration such as 168h, 90m or 1h30m (units h, m, s, ms), or '' to skip; found {text!r}")

