"""Writes the fuzz outcome counts when NLPREC_FUZZ_REPORT names a file (see fuzz_support.py)."""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # fuzz_support, as tests/conftest.py does for contract

from fuzz_support import OUTCOMES  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("NLPREC_FUZZ_REPORT")
    if target and OUTCOMES:
        with open(target, "w", encoding="utf-8") as handle:
            json.dump({reader: dict(counts) for reader, counts in sorted(OUTCOMES.items())}, handle, indent=2)
