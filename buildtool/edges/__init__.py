"""The edges of external systems: the registry (registry.py, credpolicy.py), the apt archive's signatures (signed_archive.py, archive_keyring.py), git (git.py)."""
