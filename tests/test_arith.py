"""sw/arith.py's fast path equals its one definition of a step, for every case at small widths."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from firstspike.sw import arith
from firstspike.sw.arith import integrate, integrate_steps
from firstspike.sw.params import CoreParams, Kernel

# 5-bit potentials (the narrowest CoreParams allows): every initial potential in [-16, 15];
# increments up to half the range a step, so that sums leave it by any amount within three
# steps.
BITS, STEPS = 5, 3
INCREMENTS = range(-9, 9)


def _by_definition(increments: np.ndarray, initial: np.ndarray, params: CoreParams) -> np.ndarray:
    potential, current = initial.copy(), np.zeros_like(initial)
    history = np.empty_like(increments)
    for t in range(len(increments)):
        potential, current = integrate(potential, current, increments[t], params)
        history[t] = potential
    return history


def _every_case(kernel: Kernel) -> tuple[CoreParams, np.ndarray, np.ndarray]:
    """5-bit params, and every initial potential with every run of STEPS increments:
    ``(params, initial [n], increments [STEPS, n])``."""
    params = CoreParams((1, 1), STEPS, kernel, weight_bits=4, potential_bits=BITS)
    low, high = params.potential_range
    cases = np.array([(b, *a) for b in range(low, high + 1)
                      for a in itertools.product(INCREMENTS, repeat=STEPS)], np.int64)
    return params, cases[:, 0], np.ascontiguousarray(cases[:, 1:].T)


@pytest.mark.parametrize("kernel", list(Kernel), ids=lambda k: k.value)
def test_integrate_steps_equals_integrate_step_by_step_for_every_case_at_5_bits(kernel, monkeypatch):
    params, initial, increments = _every_case(kernel)
    low, high = params.potential_range
    expected = _by_definition(increments, initial, params)

    # integrate_steps picks its path from where a batch's running sums leave the range. Cases
    # are grouped by how far each step's potential and current lie outside it (0, 1, or 2
    # and more, below and above): one batch per group meets, at the boundary, every decision
    # a single case could meet. Where nothing leaves the range, integrate() is made to fail
    # meanwhile: the fast path must run there.
    sums = _unsaturated(increments, initial, kernel)
    currents = np.cumsum(increments, axis=0) if kernel is Kernel.RAMP else sums
    values = np.concatenate([sums, currents]).T
    outside = np.concatenate([np.clip(low - values, 0, 2), np.clip(values - high, 0, 2)], axis=1)
    groups, which = np.unique(outside, axis=0, return_inverse=True)
    in_range = ~groups.any(axis=1)
    assert 0 < in_range.sum() < len(groups), "both paths must be exercised"
    for g, fast in enumerate(in_range):
        members = which.reshape(-1) == g
        with monkeypatch.context() as patch:
            if fast:
                patch.setattr(arith, "integrate", _must_not_run)
            np.testing.assert_array_equal(integrate_steps(increments[:, members], initial[members], params),
                                          expected[:, members])
    np.testing.assert_array_equal(integrate_steps(increments, initial, params), expected)


def _must_not_run(*args, **kwargs):
    raise AssertionError("the fast path fell back to integrate() on a batch that stays in range")


def _unsaturated(increments: np.ndarray, initial: np.ndarray, kernel: Kernel) -> np.ndarray:
    """The running sums with no saturation at all: what the fast path returns when it is taken."""
    if kernel is Kernel.STEP:
        return initial + np.cumsum(increments, axis=0)
    return initial + np.cumsum(np.cumsum(increments, axis=0), axis=0)


@pytest.mark.parametrize("kernel", list(Kernel), ids=lambda k: k.value)
def test_fire_times_equal_the_first_crossing_of_the_history_for_every_case_at_5_bits(kernel):
    """The golden model's hidden layers keep no history: their spike times and last
    potentials must be those of the history, saturation and thresholds at the floor included."""
    params, initial, increments = _every_case(kernel)
    low, high = params.potential_range
    history = _by_definition(increments, initial, params)
    for threshold in (low, -3, 0, 7, high):
        thresholds = np.full(len(initial), threshold)
        times, last = arith.fire_times(increments, initial, thresholds, params)
        np.testing.assert_array_equal(times, arith.first_crossing(history, thresholds))
        np.testing.assert_array_equal(last, history[-1])
        assert ((times != arith.NO_SPIKE).any() and (times == arith.NO_SPIKE).any()) or threshold == low


@pytest.mark.parametrize("kernel", list(Kernel), ids=lambda k: k.value)
def test_fire_times_with_an_increment_bound_sums_in_place_exactly_when_nothing_can_saturate(kernel, monkeypatch):
    """With the layer's bound on its increments, fire_times skips saturation only where the
    bound proves it cannot act (then integrate() never runs); at one less bit of range it
    saturates step by step. Both give the history's spike times and last potentials."""
    params, initial, increments = _every_case(kernel)
    bound = int(np.abs(increments).sum(axis=0).max())
    reach = abs(int(initial.min())) + bound * (STEPS if kernel is Kernel.RAMP else 1)
    wide = CoreParams((1, 1), STEPS, kernel, weight_bits=4, potential_bits=reach.bit_length() + 1)
    for bits, fast in ((wide.potential_bits, True), (wide.potential_bits - 1, False)):
        params = CoreParams((1, 1), STEPS, kernel, weight_bits=4, potential_bits=bits)
        history = _by_definition(increments, initial, params)
        thresholds = np.full(len(initial), 5)
        with monkeypatch.context() as patch:
            if fast:
                patch.setattr(arith, "integrate", _must_not_run)
            times, last = arith.fire_times(increments.copy(), initial, thresholds, params, bound)
        np.testing.assert_array_equal(times, arith.first_crossing(history, thresholds))
        np.testing.assert_array_equal(last, history[-1])
        saturated = (history == params.potential_range[0]).any() or (history == params.potential_range[1]).any()
        assert saturated != fast
