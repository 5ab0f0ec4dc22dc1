"""From the surrogate network's float weights to the hardware's integers (a :class:`Model`).

Each layer's integer scale ``s`` maps its largest weight to the largest integer weight;
weights and biases become ``round(x * s)`` (biases are initial potentials), hidden
thresholds ``round(s)``. The output threshold is not trained: it is chosen on training
images with the golden model itself, as the lowest threshold whose accuracy is within a
tolerance of the best (a lower threshold decides earlier, with fewer cycles).
"""

from __future__ import annotations

import numpy as np
import torch

from ..arith import decide, first_crossing
from ..encoding import LatencyEncoding
from ..golden import output_potentials
from ..model import Layer, Model
from ..params import CoreParams
from .network import SurrogateNet
from .threshold import highest_firing_threshold, lowest_good_threshold

__all__ = ["integer_layers", "to_model", "choose_output_threshold"]

# Output thresholds tried: quantiles of the samples' highest output potentials (each
# costs a first-crossing over the potentials of one golden run, so a fine grid is cheap).
_CANDIDATES = 400


@torch.no_grad()
def integer_layers(net: SurrogateNet, params: CoreParams) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """``(weights, initial potentials, hidden threshold)`` per layer, in integers."""
    w_low, w_high = params.weight_range
    p_low, p_high = params.potential_range
    out = []
    for k in range(len(net.weights)):
        s = float(net.scale(k))
        master = net.weights[k].numpy().astype(np.float64)
        if master.ndim == 4:  # conv2d: PyTorch's [K, C, kh, kw] to the file's [C, kh, kw, K]
            master = master.transpose(1, 2, 3, 0)
        w = np.clip(np.round(master * s), w_low, w_high)
        b = np.clip(np.round(net.biases[k].numpy().astype(np.float64) * s), p_low, p_high)
        out.append((w.astype(np.int64), b.astype(np.int64), int(np.clip(round(s), p_low, p_high))))
    return out


def to_model(net: SurrogateNet, params: CoreParams, encoding: LatencyEncoding, output_threshold: int,
             provenance: dict) -> Model:
    layers = []
    integer = integer_layers(net, params)
    for k, (w, b, theta) in enumerate(integer):
        threshold = theta if k < len(integer) - 1 else output_threshold
        layers.append(Layer(w, np.full(b.shape, threshold, np.int64), b))
    return Model(params, tuple(layers), encoding, provenance)


def choose_output_threshold(net: SurrogateNet, params: CoreParams, encoding: LatencyEncoding,
                            spike_times: np.ndarray, labels: np.ndarray,
                            tolerance: float = 0.002, min_fired: float = 0.0) -> tuple[int, float]:
    """``(threshold, golden accuracy)`` on the given training samples: the lowest within
    ``tolerance`` of the best accuracy (lower thresholds decide earlier); with
    ``min_fired``, the highest at which outputs fire on at least that fraction of them
    (:mod:`.threshold`)."""
    probe = to_model(net, params, encoding, params.potential_range[1], {})
    # The output potentials do not depend on the output threshold: one golden run serves all.
    history = output_potentials(probe, spike_times)
    # Candidates: quantiles of each sample's highest output potential over all steps.
    peaks = history.max(axis=(0, 2))
    low, high = params.potential_range
    candidates = np.clip(np.round(np.quantile(peaks, np.linspace(0.01, 0.99, _CANDIDATES))), low, high)

    scores: dict[int, tuple[float, float]] = {}

    def score(theta: int) -> tuple[float, float]:
        if theta not in scores:
            times = first_crossing(history, np.asarray(theta, history.dtype))
            at_spike = np.take_along_axis(history, np.maximum(times, 0)[None].astype(np.int64), axis=0)[0]
            decision, fired = decide(times, at_spike, history[-1])
            scores[theta] = (float(np.mean(decision == labels)), float(fired.mean()))
        return scores[theta]
    # The highest threshold never fires: the class falls back to the highest final potential.
    if min_fired > 0:
        return highest_firing_threshold([*candidates, high], lambda theta: score(theta)[0],
                                        lambda theta: score(theta)[1], min_fired, tolerance)
    return lowest_good_threshold([*candidates, high], lambda theta: score(theta)[0], tolerance)
