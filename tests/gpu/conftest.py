"""The CUDA tests: `gpu_support` importable (as tests/conftest.py does for contract)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
