"""The edges of external systems: the registry (registry.py, registry_settings.py, credpolicy.py), the apt archive's signatures (signed_archive.py, archive_keyring.py), git (git.py)."""
