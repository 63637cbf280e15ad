"""Shared helpers of the reliability tests (kill and resume, disk full, unsafe files, cold items)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # reliability_support, as tests/conftest.py does for contract
