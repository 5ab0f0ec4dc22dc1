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
* ``ramp`` kernel: every step integrates the current, so each step whose end cannot
  ride on an event of the next step gets a pass of its own:
  ``events + T - busy`` passes, ``busy`` being the number of distinct steps ``>= 1``
  at which the layer receives events;
* each layer adds :data:`LAYER_OVERHEAD` cycles (pipeline drain, queue hand-over).
"""

from __future__ import annotations

import numpy as np

from .params import CoreParams, Kernel

__all__ = ["LAYER_OVERHEAD", "INFERENCE_OVERHEAD", "passes_per_layer", "cycles_per_inference",
           "ideal_cycles"]

LAYER_OVERHEAD = 3
INFERENCE_OVERHEAD = 0


def _folds(params: CoreParams, lanes: int | None) -> np.ndarray:
    return np.array([params.folds(k, lanes) for k in range(params.n_layers)], np.int64)


def passes_per_layer(params: CoreParams, events: np.ndarray, busy_steps: np.ndarray) -> np.ndarray:
    """``int64 [batch, n_layers]``: passes over each layer (see the module docstring)."""
    events = np.asarray(events, np.int64)
    if params.kernel is Kernel.STEP:
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
    passes = passes_per_layer(params, events, busy_steps)
    return passes @ _folds(params, lanes) + params.n_layers * LAYER_OVERHEAD + INFERENCE_OVERHEAD


def ideal_cycles(params: CoreParams, events: np.ndarray, lanes: int | None = None) -> np.ndarray:
    """The event-bound ideal: the sum over layers of ``events * ceil(n_out / P)``."""
    return np.asarray(events, np.int64) @ _folds(params, lanes)
