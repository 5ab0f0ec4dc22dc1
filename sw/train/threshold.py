"""Choosing the output threshold after training, shared by both trainers (NumPy only).

A lower threshold lets outputs fire earlier (fewer cycles, earlier decisions): by
default the choice is the lowest candidate whose golden accuracy is within a tolerance
of the best. Where outputs must fire on at least a given fraction of the samples, it is
the highest candidate at which they still do: the latest decisions the floor allows,
made on the most input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["lowest_good_threshold", "highest_firing_threshold"]


def lowest_good_threshold(candidates: Iterable[int], accuracy_of: Callable[[int], float],
                          tolerance: float) -> tuple[int, float]:
    """``(threshold, accuracy)``: the lowest candidate within ``tolerance`` of the best."""
    scored = [(theta, accuracy_of(theta)) for theta in sorted({int(c) for c in candidates})]
    best = max(accuracy for _, accuracy in scored)
    return next((theta, accuracy) for theta, accuracy in scored if accuracy >= best - tolerance)


def highest_firing_threshold(candidates: Iterable[int], accuracy_of: Callable[[int], float],
                             fired_of: Callable[[int], float], min_fired: float,
                             tolerance: float) -> tuple[int, float]:
    """``(threshold, accuracy)``: the highest candidate at which outputs fire on at least
    ``min_fired`` of the samples; where none does, :func:`lowest_good_threshold`."""
    ordered = sorted({int(c) for c in candidates})
    firing = [theta for theta in ordered if fired_of(theta) >= min_fired]
    if not firing:
        return lowest_good_threshold(ordered, accuracy_of, tolerance)
    return firing[-1], accuracy_of(firing[-1])
