"""The training side's integer forward pass, in PyTorch: what the exported model computes.

Written from docs/arithmetic.md independently of the NumPy golden model, so that a test
comparing the two on every test image proves that what training measured is what the
hardware will do. Integers are carried in ``float64`` (exact below 2**53).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..model import Layer, Model
from ..params import Kernel
from ..topology import Conv2d, LayerShape, PoolKind

__all__ = ["ExactResult", "exact_forward"]


@dataclass(frozen=True)
class ExactResult:
    spike_times: tuple[np.ndarray, ...]  # per layer, int16 [batch, n]; -1 = never
    output_potentials: np.ndarray        # int64 [T, batch, n_out]
    decision: np.ndarray                 # int64 [batch]
    fired: np.ndarray                    # bool [batch]


def _event_times(times: torch.Tensor, shape: LayerShape) -> torch.Tensor:
    """With max pooling, each window's earliest spike (-1: none); else the input spikes."""
    if shape.pool is None or shape.pool.kind is PoolKind.SUM:
        return times
    assert shape.input_map is not None
    c, h, w = shape.input_map.as_tuple()
    never = torch.full_like(times, torch.inf)
    maps = torch.where(times < 0, never, times).reshape(-1, c, h, w)
    first = -F.max_pool2d(-maps, shape.pool.size)
    return torch.where(torch.isinf(first), torch.full_like(first, -1.0), first).reshape(len(times), -1)


def _weights_of(layer: Layer, shape: LayerShape) -> Callable[[torch.Tensor], torch.Tensor]:
    """``a(t)`` ``[batch, n_out]`` from the events at ``t`` (one-hot ``[batch, n_events]``)."""
    weights = torch.as_tensor(layer.weights, dtype=torch.float64)
    summed = shape.pool is not None and shape.pool.kind is PoolKind.SUM

    def increment(events: torch.Tensor) -> torch.Tensor:
        x = events
        if summed:
            assert shape.pool is not None and shape.input_map is not None
            c, h, w = shape.input_map.as_tuple()
            p = shape.pool.size
            x = x.reshape(-1, c, h, w)[:, :, :h // p * p, :w // p * p]
            x = x.reshape(-1, c, h // p, p, w // p, p).sum(dim=(3, 5)).reshape(len(events), -1)
        if isinstance(shape, Conv2d):
            maps = x.reshape(-1, *shape.seen_map().as_tuple())
            out = F.conv2d(maps, weights.permute(3, 0, 1, 2), stride=shape.stride, padding=shape.padding)
            return out.reshape(len(events), -1)
        return x @ weights
    return increment


def _per_neuron(values: np.ndarray, shape: LayerShape) -> torch.Tensor:
    out = torch.as_tensor(values, dtype=torch.float64)
    if isinstance(shape, Conv2d):
        out = out.repeat_interleave(shape.output_map.height * shape.output_map.width)
    return out


def _layer(times: torch.Tensor, increment_of: Callable[[torch.Tensor], torch.Tensor], thresholds: torch.Tensor,
           initial: torch.Tensor, kernel: Kernel, steps: int, low: float, high: float
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike times ``[batch, n]`` and potentials ``[T, batch, n]`` of one layer."""
    batch = times.shape[0]
    potential = initial.expand(batch, -1).clone()
    current = torch.zeros_like(potential)
    out = torch.full_like(potential, -1.0)
    history = []
    for t in range(steps):
        increment = increment_of((times == t).to(torch.float64))
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


# Potentials held at once per chunk of samples (float64): about 512 MB.
_CHUNK_ELEMENTS = 1 << 26


def exact_forward(model: Model, spike_times: np.ndarray) -> ExactResult:
    """Run the integer network on input spike times ``[batch, n_in]`` (-1 = no spike)."""
    spike_times = np.asarray(spike_times)
    chunk = max(1, _CHUNK_ELEMENTS // (model.params.time_steps * max(model.params.layer_sizes)))
    if len(spike_times) <= chunk:
        return _exact_chunk(model, spike_times)
    parts = [_exact_chunk(model, spike_times[start:start + chunk]) for start in range(0, len(spike_times), chunk)]
    return ExactResult(tuple(np.concatenate(layer) for layer in zip(*(part.spike_times for part in parts))),
                       np.concatenate([part.output_potentials for part in parts], axis=1),
                       np.concatenate([part.decision for part in parts]),
                       np.concatenate([part.fired for part in parts]))


@torch.no_grad()
def _exact_chunk(model: Model, spike_times: np.ndarray) -> ExactResult:
    p = model.params
    low, high = p.potential_range
    times = torch.as_tensor(np.asarray(spike_times), dtype=torch.float64)
    layer_times = []
    for k, layer in enumerate(model.layers):
        shape = p.layer_shape(k)
        times, history = _layer(
            _event_times(times, shape), _weights_of(layer, shape), _per_neuron(layer.thresholds, shape),
            _per_neuron(layer.initial_potentials, shape)[None], p.kernel, p.time_steps, float(low), float(high))
        layer_times.append(times)
    decision, fired = _decide(times, history)
    return ExactResult(tuple(t.numpy().astype(np.int16) for t in layer_times),
                       history.numpy().astype(np.int64), decision.numpy().astype(np.int64),
                       fired.numpy())
