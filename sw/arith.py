"""The neuron arithmetic, written once.

This module is the executable form of docs/arithmetic.md; :func:`integrate` is the
definition of one step. The golden model calls :func:`integrate_steps` (a fast path
that skips saturation while nothing leaves the range, else :func:`integrate` step by
step; tests/test_arith.py proves the two equal exhaustively at small widths) and
:func:`first_crossing` for the latch; the
gateware builds its datapath from the same ranges
(:class:`~firstspike.sw.params.CoreParams`) and is held to the same results.

One time step ``t`` of a layer, for every neuron ``j``::

    a_j(t) = sum of w_ij over inputs i with s_i == t        (exact, no saturation)
    step:  V_j(t) = sat(V_j(t-1) + a_j(t))                 V_j(-1) = b_j
    ramp:  I_j(t) = sat(I_j(t-1) + a_j(t))                 I_j(-1) = 0
           V_j(t) = sat(V_j(t-1) + I_j(t))                 V_j(-1) = b_j
    fires at t  if  V_j(t) >= theta_j  and it has not fired before

``sat`` clamps to the signed ``potential_bits`` range. It is applied once per step,
after all of that step's input spikes are summed, so the order in which spikes of one
step arrive never changes a result.
"""

from __future__ import annotations

import numpy as np

from .params import CoreParams, Kernel

__all__ = ["NO_SPIKE", "saturate", "integrate", "integrate_steps", "first_crossing", "fire_times", "decide"]

#: Spike time of a neuron that never fires (inputs and outputs alike).
NO_SPIKE = -1


def saturate(x: np.ndarray, params: CoreParams) -> np.ndarray:
    """Clamp ``x`` to the signed ``potential_bits`` range."""
    low, high = params.potential_range
    return np.clip(x, low, high)


def integrate(
    potential: np.ndarray, current: np.ndarray, increment: np.ndarray, params: CoreParams
) -> tuple[np.ndarray, np.ndarray]:
    """One time step of the synaptic kernel for any batch of neurons.

    Parameters
    ----------
    potential, current:
        ``V(t-1)`` and ``I(t-1)`` (the current is ignored, and returned unchanged, by
        the step kernel). Start from ``V(-1) = b`` and ``I(-1) = 0``.
    increment:
        ``a(t)``: for each neuron, the exact sum of the weights of the inputs that
        spike at step ``t``.
    params:
        Kernel and number formats.

    Returns
    -------
    ``(V(t), I(t))``, saturated.
    """
    if params.kernel is Kernel.STEP:
        return saturate(potential + increment, params), current
    current = saturate(current + increment, params)
    return saturate(potential + current, params), current


def integrate_steps(
    increments: np.ndarray, initial_potentials: np.ndarray, params: CoreParams
) -> np.ndarray:
    """:func:`integrate` over all steps: ``V(t)`` for ``t = 0 ... T-1``.

    Parameters
    ----------
    increments:
        ``a(t)`` along axis 0: ``[T, ...]``, exact integers (any numeric dtype that
        holds every sum exactly).
    initial_potentials:
        ``b``, broadcastable to ``increments[0]``.

    Returns
    -------
    ``[T, ...]`` potentials, same dtype as ``increments``.

    Saturation never changes a value that stays in range, so the sums are first formed
    without it; only if some potential (or current) leaves the range are the steps
    recomputed one by one with :func:`integrate`.
    """
    steps = len(increments)
    low, high = params.potential_range
    history = np.empty_like(increments)
    if steps == 0:
        return history
    if params.kernel is Kernel.STEP:
        np.add(initial_potentials, increments[0], out=history[0])
        for t in range(1, steps):
            np.add(history[t - 1], increments[t], out=history[t])
        in_range = history.min(initial=0) >= low and history.max(initial=0) <= high
    else:
        current = np.empty_like(increments[0])
        np.copyto(current, increments[0])
        np.add(initial_potentials, current, out=history[0])
        in_range = current.min(initial=0) >= low and current.max(initial=0) <= high
        for t in range(1, steps):
            current += increments[t]
            in_range = in_range and current.min(initial=0) >= low and current.max(initial=0) <= high
            np.add(history[t - 1], current, out=history[t])
        in_range = in_range and history.min(initial=0) >= low and history.max(initial=0) <= high
    if in_range:
        return history
    potential = np.broadcast_to(np.asarray(initial_potentials, increments.dtype), increments.shape[1:])
    current = np.zeros(increments.shape[1:], increments.dtype)
    for t in range(steps):
        potential, current = integrate(potential, current, increments[t], params)
        history[t] = potential
    return history


def first_crossing(potentials: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The first-spike latch: when each neuron fires, given its potential at every step.

    Parameters
    ----------
    potentials:
        ``V(t)`` for ``t = 0 ... T-1`` along axis 0: ``[T, ...]``.
    thresholds:
        ``theta``, broadcastable to ``potentials[0]``.

    Returns
    -------
    ``int16``: the first ``t`` with ``V(t) >= theta``, or :data:`NO_SPIKE`. A neuron
    fires at most once; later crossings are ignored.
    """
    steps = len(potentials)
    crossed = (potentials >= thresholds).view(np.uint8)
    seen = np.zeros(potentials.shape[1:], np.uint8)
    steps_since = np.zeros(potentials.shape[1:], np.int16)  # steps at or after the first crossing
    for t in range(steps):
        seen |= crossed[t]
        steps_since += seen
    return np.where(steps_since > 0, steps - steps_since, NO_SPIKE).astype(np.int16)


def fire_times(increments: np.ndarray, initial_potentials: np.ndarray, thresholds: np.ndarray,
               params: CoreParams, increment_bound: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``first_crossing(integrate_steps(...))`` and the last step's potentials, one step at a
    time with :func:`integrate` (so no ``[T, ...]`` history is held): for the layers whose
    potentials over time nobody reads. Returns ``(int16 spike times, V(T-1))``.

    ``increment_bound``: no neuron's increments add up to more than this in magnitude over
    all steps (each input spikes at most once). Where it shows that no potential or current
    can leave the range, saturation cannot act and the running sums are formed in place in
    ``increments``, which the caller must not read afterwards.
    """
    steps = len(increments)
    shape = increments.shape[1:]
    if increment_bound is not None and steps > 0 and _never_saturates(
            params, increment_bound, int(np.abs(initial_potentials).max(initial=0)), steps):
        if params.kernel is Kernel.RAMP:  # I(t): the running sum of a(t)
            for t in range(1, steps):
                np.add(increments[t - 1], increments[t], out=increments[t])
        increments[0] += initial_potentials
        for t in range(1, steps):
            np.add(increments[t - 1], increments[t], out=increments[t])
        return first_crossing(increments, thresholds), increments[-1]
    potential = np.broadcast_to(np.asarray(initial_potentials, increments.dtype), shape)
    current = np.zeros(shape, increments.dtype)
    seen = np.zeros(shape, bool)
    steps_since = np.zeros(shape, np.int16)  # steps at or after the first crossing
    for t in range(steps):
        potential, current = integrate(potential, current, increments[t], params)
        seen |= potential >= thresholds
        steps_since += seen
    return np.where(steps_since > 0, steps - steps_since, NO_SPIKE).astype(np.int16), potential


def _never_saturates(params: CoreParams, increment_bound: int, initial_bound: int, steps: int) -> bool:
    """Whether every current and potential stays in range whatever the spikes: the step
    kernel's ``|V| <= |b| + bound``; the ramp's ``|I| <= bound`` and ``|V| <= |b| + T bound``."""
    high = params.potential_range[1]
    if params.kernel is Kernel.STEP:
        return initial_bound + increment_bound <= high
    return increment_bound <= high and initial_bound + steps * increment_bound <= high


def decide(
    spike_time: np.ndarray, spike_potential: np.ndarray, final_potential: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The first-spike decision over a batch of output layers, all ``[batch, n_out]``.

    The class is the output neuron that fired first; among neurons that fired at that
    same step, the one with the higher potential at that step, then the lower index.
    If no output fired, the neuron with the highest potential at ``T-1``, lower index
    on ties.

    Returns
    -------
    ``(decision, fired)``: ``int64 [batch]`` class indices and ``bool [batch]``, true
    where some output neuron fired.
    """
    spiked = spike_time != NO_SPIKE
    fired = spiked.any(axis=1)
    never = np.iinfo(np.int32).max
    first = np.where(spiked, spike_time.astype(np.int32), never).min(axis=1, keepdims=True)
    first_spikers = spiked & (spike_time == first)
    tie_score = np.where(first_spikers, spike_potential.astype(np.float64), -np.inf)
    by_spike = np.argmax(tie_score, axis=1)
    by_potential = np.argmax(final_potential, axis=1)
    return np.where(fired, by_spike, by_potential).astype(np.int64), fired
