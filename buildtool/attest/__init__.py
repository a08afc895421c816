"""What a published image carries besides itself: its SBOM and its provenance (issue 15).

inventory.py  what is installed in the image, as verify found it (dpkg, pip, conda)
layers.py     what the lock says each layer of the image installs (the expectation the SBOM is held to)
sbom.py       the CycloneDX 1.6 JSON SBOM, written and validated by cyclonedx-python-lib
compare.py    SBOM/inventory vs the lock: every difference the lock cannot explain
provenance.py the in-toto Statement with a SLSA Provenance v1 predicate (in-toto-attestation's types)
"""
