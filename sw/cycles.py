"""The cycle contract: how many clock cycles the core takes for one inference.

The gateware is held to :func:`cycles_per_inference` exactly. The schedule it encodes
(docs/cycles.md):

* layers run one after another on one array of ``P`` lanes; a layer's spikes are
  queued, already in time order, as the next layer's input events;
* one input event costs ``F = ceil(n_out / P)`` cycles: each pass updates ``P``
  neurons of the layer (a layer wider than the array is folded); steps without
  events cost nothing;
* the threshold check of step ``t`` rides on the first event of the next busy step,
  so each layer ends with one extra check pass of ``F`` cycles over all its neurons;
* each layer adds :data:`LAYER_OVERHEAD` cycles (pipeline fill and drain) and each
  inference :data:`INFERENCE_OVERHEAD` cycles (start and the decision).
"""

from __future__ import annotations

import numpy as np

from .params import CoreParams

__all__ = ["LAYER_OVERHEAD", "INFERENCE_OVERHEAD", "cycles_per_inference", "ideal_cycles"]

LAYER_OVERHEAD = 2
INFERENCE_OVERHEAD = 2


def _folds(params: CoreParams, lanes: int | None) -> np.ndarray:
    return np.array([params.folds(k, lanes) for k in range(params.n_layers)], np.int64)


def cycles_per_inference(params: CoreParams, events: np.ndarray, lanes: int | None = None) -> np.ndarray:
    """Cycles per inference.

    Parameters
    ----------
    params:
        The core; ``lanes`` defaults to ``params.lanes``.
    events:
        ``int [batch, n_layers]``: spikes arriving at each layer (the input spikes for
        layer 0, the previous layer's spikes after that).
    lanes:
        ``P``, 1 ... 64.

    Returns
    -------
    ``int64 [batch]``.
    """
    events = np.asarray(events, np.int64)
    folds = _folds(params, lanes)
    return (events + 1) @ folds + params.n_layers * LAYER_OVERHEAD + INFERENCE_OVERHEAD


def ideal_cycles(params: CoreParams, events: np.ndarray, lanes: int | None = None) -> np.ndarray:
    """The event-bound ideal: the sum over layers of ``events * ceil(n_out / P)``."""
    return np.asarray(events, np.int64) @ _folds(params, lanes)
