"""`buildtool sbom IMAGE`: the SBOM of a built image, printed as CycloneDX 1.6 JSON after the library validated it.

Made from the inventory of the image's newest passing verify run (else the same probes in a
container of it) and the lock's view of its layers (buildtool/attest/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...errors import OperationError, UserError
from ..common import EXIT_OK, Inputs, add_inputs

NAME = "sbom"
HELP = "print the SBOM of a built image (CycloneDX 1.6 JSON, validated), from verify's inventory of it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ...attest.sbom import FORMATS

    add_inputs(p)
    p.add_argument("image", help="an image name (buildtool list)")
    p.add_argument("--format", choices=FORMATS, default=FORMATS[0], help="SBOM format (default: cyclonedx-json; why not SPDX: docs/attestations.md)")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="verify reports to take the inventory from (default: reports)")


def run(args: argparse.Namespace) -> int:
    from docker.errors import ImageNotFound, NotFound

    from ...attest import sbom
    from ...attest.inventory import collect, from_reports
    from ...attest.layers import image_facts
    from ...engine.client import docker_client
    from ...render.generate import generate

    config, lock = Inputs.from_args(args).load()
    g = generate(config, lock)
    if args.image not in g.dag.variant_node:
        known = sorted(g.dag.variant_node)
        raise UserError(f"unknown image {args.image!r}", key="IMAGE", expected=f"one of {len(known)} images: {', '.join(known[:8])}"
                        + (", ..." if len(known) > 8 else "") + " (buildtool list --group all)", found=args.image)
    facts = image_facts(config, g, lock, args.image)
    client = docker_client()
    try:
        image_id = client.api.inspect_image(facts.tag)["Id"]
    except (ImageNotFound, NotFound):
        raise OperationError(f"{args.image} is not built ({facts.tag}): run `buildtool build` first") from None
    inv = from_reports(args.reports, args.image, facts.tag) or collect(client, facts.tag)
    doc = sbom.build(facts, inv, image_id=image_id)
    sys.stdout.write(doc.text)
    print(f"sbom: {args.image}: {doc.packages} packages with purls, CycloneDX {sbom.SPEC_VERSION}, valid; inventory from {inv.source}", file=sys.stderr)
    return EXIT_OK
