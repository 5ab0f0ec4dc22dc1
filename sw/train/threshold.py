"""Choosing the output threshold after training, shared by both trainers (NumPy only).

A lower threshold lets outputs fire earlier (fewer cycles, earlier decisions); the
choice is the lowest candidate whose golden accuracy is within a tolerance of the best.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["lowest_good_threshold"]


def lowest_good_threshold(candidates: Iterable[int], accuracy_of: Callable[[int], float],
                          tolerance: float, *, fired_of: Callable[[int], float] | None = None,
                          min_fired: float = 0.0) -> tuple[int, float]:
    """``(threshold, accuracy)``: the lowest candidate within ``tolerance`` of the best;
    with ``min_fired``, among the candidates at which outputs fire on at least that
    fraction of the samples (``fired_of``), where there are any."""
    scored = [(theta, accuracy_of(theta)) for theta in sorted({int(c) for c in candidates})]
    if fired_of is not None and min_fired > 0:
        scored = [(theta, accuracy) for theta, accuracy in scored if fired_of(theta) >= min_fired] or scored
    best = max(accuracy for _, accuracy in scored)
    return next((theta, accuracy) for theta, accuracy in scored if accuracy >= best - tolerance)
