"""How many random examples a simulated fuzz test draws: all of them in the full suite, a
third in the fast loop (`pytest -m "not slow"`, which sets FIRSTSPIKE_FAST_LOOP)."""

from __future__ import annotations

import os

__all__ = ["examples"]


def examples(full: int) -> int:
    """``full``, or a third of it (at least 5) in the fast loop."""
    return max(5, full // 3) if os.environ.get("FIRSTSPIKE_FAST_LOOP") else full
