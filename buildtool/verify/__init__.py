"""Verifying built images with pytest-testinfra (the checks themselves live in buildtool/checks/)."""
