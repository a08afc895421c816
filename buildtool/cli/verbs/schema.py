"""`buildtool schema`: images.yaml's JSON Schema for editors, made from the loader's own schema objects."""

from __future__ import annotations

import argparse
import sys

from ..common import EXIT_OK

NAME = "schema"
HELP = "print images.yaml's JSON Schema (draft 2020-12), made from the schema the loader checks with"
DESCRIPTION = ("Print the JSON Schema (draft 2020-12) of images.yaml, generated from buildtool's own schema objects "
               "(components discriminated by `flavor`). schema/images.schema.json is a committed copy; editors read it "
               "through images.yaml's `# yaml-language-server: $schema=` line. `buildtool validate` checks more "
               "(cross-references, rules, PEP 440 versions).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from ...config.schema_json import images_schema_text

    sys.stdout.write(images_schema_text())
    return EXIT_OK
