"""The cycle contract: how many clock cycles the core takes for one inference.

The gateware is held to :func:`cycles_per_inference` exactly (docs/cycles.md):

* layers run one after another on one array of ``P`` lanes; a layer's spikes are
  queued, already in time order, as the next layer's input events;
* every pass over a layer costs ``F = ceil(n_out / P)`` cycles, one fold of ``P``
  neurons a cycle;
* one pass per input event; the end of a step (saturate, check the threshold) rides on
  the first event of the next busy step;
* ``step`` kernel: potentials only change at events, so empty steps cost nothing and
  each layer ends with one check pass: ``events + 1`` passes;
* ``ramp`` kernel: every step integrates the current, but a pass integrates all the
  steps since the previous one in closed form, so empty steps cost nothing either:
  ``events + 1`` passes. That needs the table that puts the spikes found inside a run of
  empty steps back in time order (:func:`ramp_skips_empty_steps`); where it would be too
  large, each step whose end cannot ride on an event of the next step gets a pass of its
  own: ``events + T - busy`` passes, ``busy`` being the number of distinct steps ``>= 1``
  at which the layer receives events;
* each layer adds :func:`layer_overhead` cycles (pipeline drain, queue hand-over), and the
  last one :func:`inference_overhead` more while the decision unit's pipeline settles.
"""

from __future__ import annotations

import numpy as np

from .params import CoreParams, Kernel
from .topology import Conv2d

__all__ = ["DRAIN", "LAYERED_DRAIN", "LAYERED_WEIGHT_READ", "LAYER_SWITCH", "SOURCE_FILL", "LAYER_OVERHEAD",
           "STEPPED_REPORT", "STEPPED_WEIGHT_READ", "WEIGHT_BANK_ROWS", "WIDE_CHOICE", "weight_banks",
           "weight_read_latency", "stepped_weight_read", "stepped_drain", "stepped_layer_change", "stepped_step_change",
           "TABLE_PRIMING", "TABLE_READ_AHEAD", "decision_latency", "decision_lanes", "inference_overhead",
           "SPIKE_TABLE_LIMITS",
           "ramp_skips_empty_steps", "passes_span_steps", "uses_spike_table", "layer_overhead", "passes_per_layer",
           "cycles_per_inference", "ideal_cycles", "stepped_runs", "stepped_cycles", "stepped_finish", "CONV_START",
           "CONV_TURN", "conv_run_cycles"]

# The cycles a layer ends with (the sequencer's LAYER_END), in order: the last fold's
# stage 2, which pushes its spikes and switches the queue over to the next layer; the next
# layer's constants; that layer's first event into the source register.
DRAIN, LAYER_SWITCH, SOURCE_FILL = 1, 1, 1
# The layered schedule's lane stage is two (hw/core/pipeline.py: lane_stage): 2a runs the
# lanes into a register, 2b writes the row back and reports its spikes, a cycle later; and
# a row of weights comes LAYERED_WEIGHT_READ cycles after its address (the block RAMs,
# then a register behind the multiplexer that chooses between them), so the last fold
# reports a cycle later again.
LAYERED_WEIGHT_READ = 2
LAYERED_DRAIN = DRAIN + LAYERED_WEIGHT_READ
LAYER_OVERHEAD = LAYERED_DRAIN + LAYER_SWITCH + SOURCE_FILL
# The stepped schedule decides where to go on as the last fold's stage 2 reports its
# spikes (DRAIN): to the next layer at the same step, whose first event the source then
# takes from the queue (SOURCE_FILL); or to the next step, whose input event is held.
# Its lane stage is two (add, then end the step: hw/core/pipeline.py) and reports two
# registers later (STEPPED_REPORT: the threshold comparison, whether any lane fired and
# the queue's push are not one path), and a row of weights comes stepped_weight_read()
# cycles after its address (its bank's address register, a block RAM, its bank's output
# register, the choice between banks: hw/banks.py; where the choice spans more than
# WIDE_CHOICE banks, a register more between the banks and the choice), so the last fold
# reports stepped_weight_read() + STEPPED_REPORT cycles later than a one-stage lane array
# would.
STEPPED_WEIGHT_READ = 4
STEPPED_REPORT = 2
#: Rows of a weight bank (a DP16KD's depth at 9 bits: hw/banks.py).
WEIGHT_BANK_ROWS = 2048
#: The most banks whose choice is one LUT level behind the block RAMs' registers.
WIDE_CHOICE = 2


def weight_banks(params: CoreParams, lanes: int | None = None) -> int:
    """How many banks the stepped core's weight rows take at ``lanes``."""
    from .layout import MemoryLayout
    rows = MemoryLayout(params if lanes is None else params.with_lanes(lanes)).weight_rows
    return -(-rows // WEIGHT_BANK_ROWS)


def weight_read_latency(banks: int) -> int:
    """Cycles from a weight row's address to the row, for weight rows in ``banks`` banks."""
    return STEPPED_WEIGHT_READ + (banks > WIDE_CHOICE)


def stepped_weight_read(params: CoreParams, lanes: int | None = None) -> int:
    """Cycles from a weight row's address to the row on the stepped core."""
    return weight_read_latency(weight_banks(params, lanes))


def stepped_drain(params: CoreParams, lanes: int | None = None) -> int:
    """Cycles from a layer run's last issue to its spikes' report on the stepped core."""
    return DRAIN + stepped_weight_read(params, lanes) + STEPPED_REPORT


def stepped_layer_change(params: CoreParams, lanes: int | None = None) -> int:
    return stepped_drain(params, lanes) + SOURCE_FILL


def stepped_step_change(params: CoreParams, lanes: int | None = None) -> int:
    return stepped_drain(params, lanes)


# A conv layer's run at a step (the stepped sequencer's CONV_ADD, then CONV_CHECK): the
# cycle its first event goes into the kernel-offset unit (where it has events), and the
# cycle between its adds and its checks, in which the list of touched positions settles.
CONV_START, CONV_TURN = 1, 1
# Extra cycles per layer with the spike table: it is read (one memory cycle and a FIFO)
# before the next layer starts.
TABLE_PRIMING = 3
# Records the spike table reads ahead of the next layer (its FIFO's depth): enough to cover
# the memory read and the FIFO's latency, so the layer's events come without a bubble.
TABLE_READ_AHEAD = 4
# The ramp kernel's spike table holds a bit per (step, fold) of a hidden layer, and each
# lane decodes its spike time into one of T lines: both are bounded.
SPIKE_TABLE_LIMITS = {"time_steps": 64, "bits": 2048}


def ramp_skips_empty_steps(params: CoreParams, lanes: int | None = None) -> bool:
    """Whether a ``ramp`` core skips empty steps (it always does for ``step``): true where
    ``T <= 64`` and ``T * ceil(n / P) <= 2048`` for every layer whose spikes feed another."""
    if params.kernel is Kernel.STEP:
        return True
    if params.time_steps > SPIKE_TABLE_LIMITS["time_steps"]:
        return False
    return all(params.time_steps * params.folds(k, lanes) <= SPIKE_TABLE_LIMITS["bits"]
               for k in range(params.n_layers - 1))


def passes_span_steps(params: CoreParams, lanes: int | None = None) -> bool:
    """A layered ramp core that skips empty steps: one pass integrates several steps, so a
    fold's lanes can fire at different steps. (The stepped schedule ends every step.)"""
    return params.kernel is Kernel.RAMP and not params.stepped and ramp_skips_empty_steps(params, lanes)


def uses_spike_table(params: CoreParams, lanes: int | None = None) -> bool:
    """The ramp kernel with skipped empty steps and a hidden layer to hand spikes on."""
    return params.n_layers > 1 and passes_span_steps(params, lanes)


def layer_overhead(params: CoreParams, lanes: int | None = None) -> int:
    """Cycles each layer adds to its passes."""
    return LAYER_OVERHEAD + (TABLE_PRIMING if uses_spike_table(params, lanes) else 0)


def _folds(params: CoreParams, lanes: int | None) -> np.ndarray:
    return np.array([params.folds(k, lanes) for k in range(params.n_layers)], np.int64)


def decision_lanes(params: CoreParams, lanes: int | None = None) -> int:
    """Lanes the decision unit compares: those that hold an output neuron. The output layer
    fills lanes 0 … n - 1 of each fold (n its neurons at a position), so above n lanes the
    rest never carry one (Fashion-MNIST at P = 100: 10 of 100). At least two where P > 1:
    the spike counters behind a wide array settle no later than a two-lane tree."""
    p = params.lanes if lanes is None else lanes
    return min(p, max(2, params.channels(params.n_layers - 1)))


def decision_latency(params: CoreParams, lanes: int | None = None) -> int:
    """Cycles from the output layer's lanes to a settled decision: a register in front of
    the decision unit, where it compares more than one lane a second at its trees' leaves
    (the lanes' values cross the die to it), two for every level of its comparison trees
    over :func:`decision_lanes` (the comparison, then the choice), and two for the update
    of the best so far (its comparisons with the best and with the candidate before it,
    then the update)."""
    compared = decision_lanes(params, lanes)
    return 1 + (compared > 1) + 2 * (compared - 1).bit_length() + 2


def inference_overhead(params: CoreParams, lanes: int | None = None) -> int:
    """Cycles the last layer waits beyond its overhead for the decision to settle (its
    lanes report ``LAYERED_DRAIN - DRAIN`` cycles after a one-stage lane array would)."""
    p = params.lanes if lanes is None else lanes
    return max(0, decision_latency(params, p) + LAYERED_DRAIN - DRAIN - layer_overhead(params, lanes))


def passes_per_layer(params: CoreParams, events: np.ndarray, busy_steps: np.ndarray,
                     lanes: int | None = None) -> np.ndarray:
    """``int64 [batch, n_layers]``: passes over each layer (see the module docstring)."""
    events = np.asarray(events, np.int64)
    if ramp_skips_empty_steps(params, lanes):
        return events + 1
    return events + params.time_steps - np.asarray(busy_steps, np.int64)


def cycles_per_inference(params: CoreParams, events: np.ndarray, busy_steps: np.ndarray,
                         lanes: int | None = None) -> np.ndarray:
    """Cycles per inference.

    Parameters
    ----------
    params:
        The core; ``lanes`` defaults to ``params.lanes``.
    events:
        ``int [batch, n_layers]``: spikes arriving at each layer (the input spikes for
        layer 0, the previous layer's spikes after that).
    busy_steps:
        ``int [batch, n_layers]``: distinct steps ``>= 1`` among each layer's arriving
        spikes (only the ramp kernel's count depends on it).
    lanes:
        ``P``, 1 ... 64.

    Returns
    -------
    ``int64 [batch]``.
    """
    params.require_fully_connected("the layered schedule")
    passes = passes_per_layer(params, events, busy_steps, lanes)
    return (passes @ _folds(params, lanes) + params.n_layers * layer_overhead(params, lanes)
            + inference_overhead(params, lanes))


def ideal_cycles(params: CoreParams, events: np.ndarray, lanes: int | None = None,
                 conv_work: np.ndarray | None = None) -> np.ndarray:
    """The event-bound ideal: the sum over layers of ``events * F_k`` (a pass per event);
    for a conv layer ``conv_work`` (``[batch, n_layers]``: its adds and the checks of the
    positions they reached) replaces its events."""
    work = np.asarray(events, np.int64)
    if conv_work is not None:
        conv = np.array([not _dense(params, k) for k in range(params.n_layers)])
        work = np.where(conv[None, :], conv_work, work)
    return work @ _folds(params, lanes)


def _dense(params: CoreParams, layer: int) -> bool:
    return not isinstance(params.layer_shape(layer), Conv2d)


def conv_run_cycles(params: CoreParams, events: np.ndarray, adds: np.ndarray, touched: np.ndarray,
                    unreaching: np.ndarray, lanes: int | None = None) -> np.ndarray:
    """``int64 [batch, n_layers, T]``: the cycles of each conv layer's run at each step (0 for
    dense layers), from its events, their adds (an event per kernel offset in range), the
    positions the adds reached and the events that reach no output (each a cycle):

        [events > 0] · CONV_START + unreaching + F · adds + CONV_TURN + max(F · checks, 1)

    ``checks``: the positions reached; every position at ``t = 0`` (a neuron may start above
    its threshold) and, for ``ramp``, at every step (every potential moves)."""
    steps = params.time_steps
    t = np.arange(steps)
    every = (t == 0) | (params.kernel is Kernel.RAMP)
    out = np.zeros(np.shape(adds), np.int64)
    for k in range(params.n_layers):
        if _dense(params, k):
            continue
        folds = params.folds(k, lanes)
        checks = np.where(every[None, :], params.positions(k), np.asarray(touched)[:, k, :])
        out[:, k, :] = ((np.asarray(events)[:, k, :] > 0) * CONV_START + np.asarray(unreaching)[:, k, :]
                        + folds * np.asarray(adds)[:, k, :] + CONV_TURN + np.maximum(folds * checks, 1))
    return out


def stepped_runs(params: CoreParams, events_per_step: np.ndarray, horizon: np.ndarray) -> np.ndarray:
    """``bool [batch, n_layers, T]``: where the stepped schedule runs layer ``k`` at step ``t``.

    Steps up to ``horizon`` (the decision step, or ``T - 1``) are visited where layer 0
    has events, and at ``t = 0`` (fresh neurons may start above threshold), at ``T - 1``
    (the output potentials the fallback decides by) and, for ``ramp``, at every step (a
    potential moves every step). At a visited step a layer runs where it has events (the
    previous layer's spikes at ``t``) or where the step needs every layer checked.
    """
    steps = params.time_steps
    t = np.arange(steps)
    within = t[None, :] <= np.asarray(horizon)[:, None]
    check = (t == 0) | (t == steps - 1) | (params.kernel is Kernel.RAMP)
    busy = np.asarray(events_per_step) > 0
    visited = within & (check[None, :] | busy[:, 0, :])
    return visited[:, None, :] & (check[None, None, :] | busy)


def stepped_cycles(params: CoreParams, events_per_step: np.ndarray, horizon: np.ndarray,
                   lanes: int | None = None, conv: np.ndarray | None = None) -> np.ndarray:
    """Cycles per inference on the stepped schedule (docs/cycles.md), ``int64 [batch]``.

    ``events_per_step``: ``int [batch, n_layers, T]``, spikes arriving at each layer at
    each step up to ``horizon``; ``horizon``: ``int [batch]``, the step the core stops
    after. Each run of a layer at a step is ``max(events, 1)`` passes of ``F_k`` folds
    (its last event's pass also ends the step; without events a pass only ends it), then
    :func:`stepped_layer_change` cycles where the next layer runs at the same step,
    :func:`stepped_step_change` where the next step follows, and after the last run
    :func:`stepped_finish`. A conv layer's run costs ``conv`` cycles instead
    (:func:`conv_run_cycles`, ``[batch, n_layers, T]``).
    """
    events = np.asarray(events_per_step, np.int64)
    runs = stepped_runs(params, events, horizon)
    work = np.maximum(events, 1) * _folds(params, lanes)[None, :, None]
    if conv is not None:
        dense = np.array([_dense(params, k) for k in range(params.n_layers)])
        work = np.where(dense[None, :, None], work, np.asarray(conv, np.int64))
    elif not params.fully_connected:
        raise ValueError("a network with conv layers needs its conv runs' cycles (conv_run_cycles)")
    p = params.lanes if lanes is None else lanes
    total = runs.sum(axis=(1, 2))
    to_layer = runs[:, 1:, :].sum(axis=(1, 2))  # every later layer's run follows its predecessor's
    return (np.where(runs, work, 0).sum(axis=(1, 2)) + to_layer * stepped_layer_change(params, p)
            + (total - to_layer - 1) * stepped_step_change(params, p) + stepped_finish(params, p))


def stepped_finish(params: CoreParams, lanes: int | None = None) -> int:
    """Cycles after the stepped schedule's last issue: the decision's latency from the lanes,
    which on this schedule report ``stepped_drain - DRAIN`` cycles later."""
    p = params.lanes if lanes is None else lanes
    return decision_latency(params, p) + stepped_drain(params, p) - DRAIN
