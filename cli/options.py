"""Option parsing shared by the CLI groups (no heavy imports: `nlprec --help` stays fast)."""

from __future__ import annotations

import json
from typing import Any

from nlprec.errors import NlprecError


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """--set key=value items; values are JSON (numbers, true/false, lists) or else plain strings."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise NlprecError(f"--set expects key=value, got {item!r}")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides
