"""Is ETTFS's temporal-weighted decoding worth a place in the hardware? This measures it.

On the exported integers, three readouts of the same output potentials: the hardware's
first-spike rule, the trained temporal weighting ``argmax_j sum_t w_t V_j(t)`` (which needs
an accumulator per output and all ``T`` steps), and the final potential alone.
"""

from __future__ import annotations

import numpy as np

from ..model import Model
from .exact import exact_forward
from .network import SurrogateNet

__all__ = ["compare_readouts"]


def compare_readouts(model: Model, net: SurrogateNet, spike_times: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracies of the three readouts and the mean step at which first-spike decides."""
    result = exact_forward(model, spike_times)
    weights = net.step_weights().detach().numpy().astype(np.float64)
    weighted = np.tensordot(weights, result.output_potentials.astype(np.float64), axes=(0, 0))
    first = np.where(result.spike_times[-1] >= 0, result.spike_times[-1], model.params.time_steps).min(axis=1)
    decided = np.where(result.fired, first, model.params.time_steps - 1)
    return {
        "first_spike": float(np.mean(result.decision == labels)),
        "temporal_weighted": float(np.mean(weighted.argmax(axis=1) == labels)),
        "final_potential": float(np.mean(result.output_potentials[-1].argmax(axis=1) == labels)),
        "first_spike_mean_decision_step": float(decided.mean()),
    }
