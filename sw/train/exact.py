"""The training side's integer forward pass, in PyTorch: what the exported model computes.

Written from docs/arithmetic.md independently of the NumPy golden model, so that a test
comparing the two on every test image proves that what training measured is what the
hardware will do. Integers are carried in ``float64`` (exact below 2**53).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..model import Model
from ..params import Kernel

__all__ = ["ExactResult", "exact_forward"]


@dataclass(frozen=True)
class ExactResult:
    spike_times: tuple[np.ndarray, ...]  # per layer, int16 [batch, n]; -1 = never
    output_potentials: np.ndarray        # int64 [T, batch, n_out]
    decision: np.ndarray                 # int64 [batch]
    fired: np.ndarray                    # bool [batch]


def _layer(times: torch.Tensor, weights: torch.Tensor, thresholds: torch.Tensor,
           initial: torch.Tensor, kernel: Kernel, steps: int, low: float, high: float
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike times ``[batch, n]`` and potentials ``[T, batch, n]`` of one layer."""
    batch = times.shape[0]
    potential = initial.expand(batch, -1).clone()
    current = torch.zeros_like(potential)
    out = torch.full_like(potential, -1.0)
    history = []
    for t in range(steps):
        increment = (times == t).to(weights.dtype) @ weights
        if kernel is Kernel.STEP:
            potential = (potential + increment).clamp(low, high)
        else:
            current = (current + increment).clamp(low, high)
            potential = (potential + current).clamp(low, high)
        out = torch.where((out < 0) & (potential >= thresholds), torch.full_like(out, t), out)
        history.append(potential)
    return out, torch.stack(history)


def _decide(times: torch.Tensor, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First spike; ties by potential at that step, then lower index; else highest ``V(T-1)``."""
    spiked = times >= 0
    fired = spiked.any(dim=1)
    big = float(history.shape[0] + 1)
    first = torch.where(spiked, times, torch.full_like(times, big)).min(dim=1, keepdim=True).values
    at_first = history.gather(0, first.clamp(max=history.shape[0] - 1).long()[None].expand(
        1, *times.shape))[0]
    candidates = spiked & (times == first)
    score = torch.where(candidates, at_first, torch.full_like(at_first, -torch.inf))
    # argmax returns the first (lowest) index among equal maxima.
    by_spike = score.argmax(dim=1)
    by_potential = history[-1].argmax(dim=1)
    return torch.where(fired, by_spike, by_potential), fired


@torch.no_grad()
def exact_forward(model: Model, spike_times: np.ndarray) -> ExactResult:
    """Run the integer network on input spike times ``[batch, n_in]`` (-1 = no spike)."""
    p = model.params
    low, high = p.potential_range
    times = torch.as_tensor(np.asarray(spike_times), dtype=torch.float64)
    layer_times = []
    for layer in model.layers:
        times, history = _layer(
            times, torch.as_tensor(layer.weights, dtype=torch.float64),
            torch.as_tensor(layer.thresholds, dtype=torch.float64),
            torch.as_tensor(layer.initial_potentials, dtype=torch.float64)[None],
            p.kernel, p.time_steps, float(low), float(high))
        layer_times.append(times)
    decision, fired = _decide(times, history)
    return ExactResult(tuple(t.numpy().astype(np.int16) for t in layer_times),
                       history.numpy().astype(np.int64), decision.numpy().astype(np.int64),
                       fired.numpy())
