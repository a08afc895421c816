import sys
from pathlib import Path

# Test helpers (fake lock, matrix fixture) are plain modules beside the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent / "unit"))
