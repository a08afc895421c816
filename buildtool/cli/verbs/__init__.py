"""The verbs of `buildtool`, one module each (NAME, HELP, add_arguments, run); VERBS is the order `--help` lists them in."""

from __future__ import annotations

from . import (
    attestations,
    bases,
    build,
    check,
    ci,
    docs,
    generate,
    list_images,
    lock,
    matrix,
    prune,
    publish,
    sbom,
    schema,
    serving,
    validate,
    verify,
)

VERBS = (validate, list_images, generate, check, docs, schema, matrix, bases, build, verify, publish, sbom, attestations, serving, prune, lock, ci)
