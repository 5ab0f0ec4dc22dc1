"""The golden model: what the hardware computes, bit for bit, for a batch at a time.

It runs the network layer by layer. For one layer it first finds, for every sample,
step and neuron, the exact sum of the weights of the inputs spiking at that step (one
matrix product of the one-hot spike times with the weights), then calls
:func:`~firstspike.sw.arith.integrate` once per step and
:func:`~firstspike.sw.arith.first_crossing` on the potentials of all steps. Integers are carried in
floating point only where every value is provably exact (below 2**24 in ``float32``,
otherwise ``float64``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .arith import NO_SPIKE, decide, first_crossing, integrate
from .cycles import cycles_per_inference, ideal_cycles
from .model import Layer, Model
from .params import CoreParams
from .spikes import check_spike_times

__all__ = ["GoldenResult", "simulate", "simulate_batches"]

# Elements of the one-hot spike array per chunk: large enough for BLAS, small for cache.
_CHUNK_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class GoldenResult:
    """Everything one batch of inferences produced.

    Attributes
    ----------
    params:
        The core that ran.
    input_spike_times:
        ``int16 [batch, n_in]``.
    spike_times:
        Per layer, ``int16 [batch, n_k]``: the step of each neuron's spike or
        :data:`~firstspike.sw.arith.NO_SPIKE` (-1). The last one is the output layer.
    potentials:
        Per layer, ``int64 [batch, n_k]``: the potential ``V(T-1)`` after the last step.
    decision:
        ``int64 [batch]``: the class.
    fired:
        ``bool [batch]``: whether any output neuron fired (else the class came from
        the potentials at ``T-1``).
    """

    params: CoreParams
    input_spike_times: np.ndarray
    spike_times: tuple[np.ndarray, ...]
    potentials: tuple[np.ndarray, ...]
    decision: np.ndarray
    fired: np.ndarray

    @property
    def batch(self) -> int:
        return len(self.decision)

    @property
    def spike_counts(self) -> np.ndarray:
        """``int64 [batch, n_layers + 1]``: spikes of the inputs, then of each layer."""
        layers = (self.input_spike_times, *self.spike_times)
        return np.stack([(s != NO_SPIKE).sum(axis=1) for s in layers], axis=1).astype(np.int64)

    @property
    def events(self) -> np.ndarray:
        """``int64 [batch, n_layers]``: spikes arriving at each layer."""
        return self.spike_counts[:, :-1]

    @property
    def synaptic_ops(self) -> np.ndarray:
        """``int64 [batch]``: weight additions, i.e. sum over layers of spikes in x fan-out."""
        fan_out = np.array(self.params.layer_sizes[1:], np.int64)
        return self.events @ fan_out

    def cycles(self, lanes: int | None = None) -> np.ndarray:
        """``int64 [batch]``: clock cycles the core takes with ``lanes`` lanes."""
        return cycles_per_inference(self.params, self.events, lanes)

    def ideal_cycles(self, lanes: int | None = None) -> np.ndarray:
        """``int64 [batch]``: the event-bound lower bound for ``lanes`` lanes."""
        return ideal_cycles(self.params, self.events, lanes)

    @classmethod
    def join(cls, parts: list["GoldenResult"]) -> "GoldenResult":
        """One result from the results of consecutive chunks of a batch."""
        cat = np.concatenate
        first = parts[0]
        return cls(
            first.params,
            cat([p.input_spike_times for p in parts]),
            tuple(cat(layer) for layer in zip(*(p.spike_times for p in parts))),
            tuple(cat(layer) for layer in zip(*(p.potentials for p in parts))),
            cat([p.decision for p in parts]),
            cat([p.fired for p in parts]),
        )


def _exact_dtype(params: CoreParams, weights: np.ndarray) -> type:
    """``float32`` where every intermediate of the layer stays below 2**24 in magnitude."""
    increment_bound = int(np.abs(weights).sum(axis=0).max(initial=0))
    potential_bound = 1 << params.potential_bits  # V + I, V + a with |V|, |I| < 2**(pb-1)
    if increment_bound + potential_bound <= 1 << 24:
        return np.float32
    return np.float64


def _run_layer(
    params: CoreParams, layer: Layer, spike_times: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One layer over a batch: returns spike times, final and at-spike potentials."""
    dtype = _exact_dtype(params, layer.weights)
    steps = params.time_steps
    batch, n_in = spike_times.shape
    one_hot = spike_times[None, :, :] == np.arange(steps, dtype=np.int16)[:, None, None]
    increments = (one_hot.reshape(steps * batch, n_in).astype(dtype) @ layer.weights.astype(dtype))
    increments = increments.reshape(steps, batch, len(layer.thresholds))
    history = np.empty_like(increments)
    potential = np.broadcast_to(layer.initial_potentials.astype(dtype), history.shape[1:])
    current = np.zeros_like(potential)
    for t in range(steps):
        potential, current = integrate(potential, current, increments[t], params)
        history[t] = potential
    spike_time, spike_potential = first_crossing(history, layer.thresholds.astype(dtype))
    return spike_time, potential.astype(np.int64), spike_potential.astype(np.int64)


def _simulate_chunk(model: Model, spike_times: np.ndarray) -> GoldenResult:
    times = spike_times
    layer_times, layer_potentials = [], []
    for layer in model.layers:
        times, potential, spike_potential = _run_layer(model.params, layer, times)
        layer_times.append(times)
        layer_potentials.append(potential)
    decision, fired = decide(times, spike_potential, potential)
    return GoldenResult(model.params, spike_times, tuple(layer_times), tuple(layer_potentials),
                        decision, fired)


def _chunk_size(params: CoreParams) -> int:
    widest = max(params.layer_sizes[:-1])
    return max(1, _CHUNK_ELEMENTS // (params.time_steps * widest))


def simulate_batches(model: Model, spike_times: np.ndarray, chunk: int | None = None) -> Iterator[GoldenResult]:
    """Like :func:`simulate`, yielding one result per chunk of samples (for progress bars)."""
    spike_times = check_spike_times(spike_times, model.params)
    chunk = chunk or _chunk_size(model.params)
    for start in range(0, len(spike_times), chunk):
        yield _simulate_chunk(model, spike_times[start:start + chunk])


def simulate(model: Model, spike_times: np.ndarray) -> GoldenResult:
    """Run a batch of inferences.

    Parameters
    ----------
    model:
        The integer network.
    spike_times:
        ``int [batch, n_in]`` (or ``[n_in]`` for one sample): input spike steps
        ``0 ... T-1``, or -1 for an input that never spikes.

    Returns
    -------
    :class:`GoldenResult` for the whole batch.
    """
    parts = list(simulate_batches(model, spike_times))
    if not parts:  # an empty batch
        return _simulate_chunk(model, np.zeros((0, model.params.n_inputs), np.int16))
    return GoldenResult.join(parts)
