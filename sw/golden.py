"""The golden model: what the hardware computes, bit for bit, for a batch at a time.

It runs the network layer by layer. For one layer it first finds, for every sample,
step and neuron, the exact sum of the weights of the inputs spiking at that step: a
matrix product of the one-hot spike times with the weights where spikes are dense, or
the sum of the weight rows of the spikes that happened where they are sparse (the two
agree exactly; ``method`` picks). Then :func:`~firstspike.sw.arith.integrate_steps`
gives the potentials of all steps (every step through
:func:`~firstspike.sw.arith.integrate`, or an unsaturated running sum where no value
leaves the range, proven equal in tests/test_arith.py) and
:func:`~firstspike.sw.arith.first_crossing` the spikes; hidden layers, whose potentials
over time nobody reads, go through :func:`~firstspike.sw.arith.fire_times` instead, which
sums in place where the layer's weights prove that no potential can saturate. The sparse
sums are SciPy sparse products (spikes as a COO matrix). Integers are carried in
floating point only where every value is provably exact (below 2**24 in ``float32``,
otherwise ``float64``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .arith import NO_SPIKE, decide, fire_times, first_crossing, integrate_steps
from .cycles import conv_run_cycles, cycles_per_inference, ideal_cycles, stepped_cycles
from .model import Layer, Model
from .params import CoreParams
from .spikes import check_spike_times
from .topology import NO_TARGET, Conv2d, LayerShape, PoolKind, event_times, fan_out

__all__ = ["GoldenResult", "simulate", "simulate_batches", "output_potentials"]

# Elements of the one-hot spike array per chunk: large enough for BLAS, small for cache.
_CHUNK_ELEMENTS = 1 << 21
# The sparse sum costs about this many times more per spike than the dense product per
# (step, input) pair (9 ... 36, measured with OpenBLAS and SciPy 1.17 on 2 cores for n_out
# 10 ... 400, T 8 ... 32, densities 0.1 ... 1): sparse wins below T / this density.
_SPARSE_COST = 20
# A scattered addition costs about this many multiply-adds of a matrix product (measured
# like _SPARSE_COST): the fan-out sum wins below that ratio of work.
_SCATTER_COST = 4


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
        Per layer, ``int32 [batch, n_k]``: the potential ``V(T-1)`` after the last step
        (saturated, so within ``potential_bits`` <= 32).
    decision:
        ``int64 [batch]``: the class.
    fired:
        ``bool [batch]``: whether any output neuron fired (else the class came from
        the potentials at ``T-1``).
    decision_step:
        ``int64 [batch]``: the step the decision is final at: the first output spike's,
        or ``T-1`` where no output fired.

    On the stepped schedule (:class:`~firstspike.sw.params.Schedule`) the core stops after
    the decision step: ``spike_times`` then hold only the spikes up to it (later ones are
    never computed), and the counts below count only what came up to it. ``potentials``
    are the network's at ``T-1`` either way; the stepped core reports none of them.
    """

    params: CoreParams
    input_spike_times: np.ndarray
    spike_times: tuple[np.ndarray, ...]
    potentials: tuple[np.ndarray, ...]
    decision: np.ndarray
    fired: np.ndarray
    decision_step: np.ndarray

    @property
    def batch(self) -> int:
        return len(self.decision)

    @property
    def horizon(self) -> np.ndarray:
        """``int64 [batch]``: the last step the core works on: the decision step on the
        stepped schedule, ``T-1`` on the layered one."""
        if self.params.stepped:
            return self.decision_step
        return np.full(self.batch, self.params.time_steps - 1, np.int64)

    def _arrivals(self) -> tuple[np.ndarray, ...]:
        """Spike times arriving at each layer, up to the horizon (``NO_SPIKE`` after it)."""
        inputs = np.where(self.input_spike_times > self.horizon[:, None], NO_SPIKE, self.input_spike_times)
        return (inputs, *self.spike_times[:-1])

    @property
    def spike_counts(self) -> np.ndarray:
        """``int64 [batch, n_layers + 1]``: spikes of the inputs, then of each layer (up to
        the horizon)."""
        layers = (*self._arrivals(), self.spike_times[-1])
        return np.stack([(s != NO_SPIKE).sum(axis=1) for s in layers], axis=1).astype(np.int64)

    @property
    def events_per_step(self) -> np.ndarray:
        """``int64 [batch, n_layers, T]``: events arriving at each layer at each step: the input
        spikes for layer 0; after that the spikes of the layer before that reach a neuron
        (the core does not hand on the spikes of positions the next layer's pooling drops
        or its convolution's stride skips)."""
        steps, batch = self.params.time_steps, self.batch
        out = []
        for k, arrivals in enumerate(self._arrivals()):
            shape = self.params.layer_shape(k)
            times = event_times(shape, arrivals)
            rows = np.broadcast_to(np.arange(batch)[:, None], times.shape)
            spiked = times != NO_SPIKE
            if k > 0:
                spiked &= (fan_out(shape, self.params.layer_sizes[k]) > 0)[None, :]
            out.append(np.bincount(rows[spiked] * steps + times[spiked].astype(np.int64),
                                   minlength=batch * steps).reshape(batch, steps))
        return np.stack(out, axis=1).astype(np.int64)

    @property
    def events(self) -> np.ndarray:
        """``int64 [batch, n_layers]``: spikes arriving at each layer."""
        return self.spike_counts[:, :-1]

    @property
    def busy_steps(self) -> np.ndarray:
        """``int64 [batch, n_layers]``: distinct steps ``>= 1`` at which spikes arrive at each layer."""
        steps = self.params.time_steps
        counts = []
        for times in (self.input_spike_times, *self.spike_times[:-1]):
            seen = np.zeros((len(times), steps + 1), bool)
            rows = np.broadcast_to(np.arange(len(times))[:, None], times.shape)
            seen[rows, np.where(times == NO_SPIKE, steps, times)] = True
            counts.append(seen[:, 1:steps].sum(axis=1))
        return np.stack(counts, axis=1).astype(np.int64)

    @property
    def synaptic_ops(self) -> np.ndarray:
        """``int64 [batch]``: weight additions, i.e. sum over layers and events of each
        event's fan-out (up to the horizon)."""
        total = np.zeros(self.batch, np.int64)
        for k, times in enumerate(self._arrivals()):
            shape = self.params.layer_shape(k)
            events = event_times(shape, times) != NO_SPIKE
            total += events.astype(np.int64) @ fan_out(shape, self.params.layer_sizes[k])
        return total

    @property
    def conv_work(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(adds, touched, unreaching)``, ``int64 [batch, n_layers, T]``: for each conv
        layer and step (up to the horizon), the (event, kernel offset in range) pairs, the
        distinct output positions they reached, and the events that reach none; 0 for dense
        layers."""
        steps, batch, n_layers = self.params.time_steps, self.batch, self.params.n_layers
        adds = np.zeros((batch, n_layers, steps), np.int64)
        touched = np.zeros((batch, n_layers, steps), np.int64)
        unreaching = np.zeros((batch, n_layers, steps), np.int64)
        for k, arrivals in enumerate(self._arrivals()):
            shape = self.params.layer_shape(k)
            if not isinstance(shape, Conv2d):
                continue
            events = event_times(shape, arrivals)
            positions_of, _ = shape.offsets()
            sample, source = np.nonzero(events != NO_SPIKE)
            segment = sample.astype(np.int64) * steps + events[sample, source]
            if shape.pool is not None and shape.pool.kind is PoolKind.SUM:
                assert shape.input_map is not None
                source = shape.pool.window_of(shape.input_map)[source]
                kept = source != NO_TARGET
                segment, source = segment[kept], source[kept]
            positions = positions_of[source]
            reached = positions != NO_TARGET
            adds[:, k, :] = np.bincount(segment, weights=reached.sum(axis=1),
                                        minlength=batch * steps).reshape(batch, steps).astype(np.int64)
            if k == 0:  # later layers are not handed such events (events_per_step)
                unreaching[:, k, :] = np.bincount(segment[~reached.any(axis=1)],
                                                  minlength=batch * steps).reshape(batch, steps)
            size = shape.output_map.height * shape.output_map.width
            cells = np.unique((segment[:, None] * size + positions)[reached])
            touched[:, k, :] = np.bincount(cells // size, minlength=batch * steps).reshape(batch, steps)
        return adds, touched, unreaching

    def cycles(self, lanes: int | None = None) -> np.ndarray:
        """``int64 [batch]``: clock cycles the core takes with ``lanes`` lanes."""
        if self.params.stepped:
            events = self.events_per_step
            conv = None if self.params.fully_connected else conv_run_cycles(self.params, events, *self.conv_work,
                                                                            lanes=lanes)
            return stepped_cycles(self.params, events, self.horizon, lanes, conv)
        return cycles_per_inference(self.params, self.events, self.busy_steps, lanes)

    def ideal_cycles(self, lanes: int | None = None) -> np.ndarray:
        """``int64 [batch]``: the event-bound lower bound for ``lanes`` lanes (a conv layer's
        adds and the checks of the positions they reached count as its events)."""
        if self.params.fully_connected:
            return ideal_cycles(self.params, self.events, lanes)
        adds, touched, _ = self.conv_work
        events = self.events_per_step.sum(axis=2)
        return ideal_cycles(self.params, events, lanes, (adds + touched).sum(axis=2))

    @classmethod
    def join(cls, parts: Iterable[GoldenResult], batch: int | None = None) -> GoldenResult:
        """One result from the results of consecutive chunks of a batch. Given ``batch``
        (their total size), each chunk is copied in as it arrives, while the chunks after it
        are still being computed; at least one chunk is needed."""
        if batch is None:
            parts = list(parts)
            batch = sum(p.batch for p in parts)
        whole: list[np.ndarray] = []
        first: GoldenResult | None = None
        start = 0
        for part in parts:
            arrays = part._arrays()
            if first is None:
                first = part
                whole = [np.empty((batch, *a.shape[1:]), a.dtype) for a in arrays]
            for target, array in zip(whole, arrays):
                target[start:start + part.batch] = array
            start += part.batch
        if first is None or start != batch:
            raise ValueError(f"the chunks hold {start} samples, not {batch}")
        layers = len(first.spike_times)
        return cls(first.params, whole[0], tuple(whole[1:1 + layers]), tuple(whole[1 + layers:1 + 2 * layers]),
                   *whole[1 + 2 * layers:])

    def _arrays(self) -> list[np.ndarray]:
        """Every per-sample array, in :meth:`join`'s order."""
        return [self.input_spike_times, *self.spike_times, *self.potentials, self.decision, self.fired,
                self.decision_step]


@dataclass(frozen=True)
class _Wiring:
    """One layer made ready for the golden model: which spikes it takes, how they become
    increments, and a threshold and initial potential per neuron.

    ``weights`` (``[n_events, n_out]``, one row per event source) for dense layers;
    for convolutions ``positions`` and ``slots`` (``[n_events, kh·kw]``: per kernel offset the
    output position it reaches, or ``NO_TARGET``, and the row of ``kernel_matrix``), the same
    pairs without the offsets out of range (``pairs``: each event source's first pair, then
    ``pair_positions``, ``pair_slots``) and ``order``. A convolution's neurons are held
    position-major (``q·K + k``) inside a layer's run, so a spike's row of ``K`` weights lands
    in one place; ``order`` takes them back to the channel-major order of everything else.
    ``shape`` where the layer's events are not its input spikes (max pooling).
    """

    n_out: int
    thresholds: np.ndarray
    initial_potentials: np.ndarray
    increment_bound: int
    weights: np.ndarray | None = None
    positions: np.ndarray | None = None
    slots: np.ndarray | None = None
    shape: LayerShape | None = None
    rows: np.ndarray | None = None
    conv: Conv2d | None = None
    kernel_matrix: np.ndarray | None = None
    pairs: np.ndarray | None = None
    pair_positions: np.ndarray | None = None
    pair_slots: np.ndarray | None = None
    order: np.ndarray | None = None

    def inputs(self, spike_times: np.ndarray) -> np.ndarray:
        return spike_times if self.shape is None else event_times(self.shape, spike_times)


def _wiring(params: CoreParams, k: int, layer: Layer) -> _Wiring:
    """Layer ``k`` as the golden model runs it (docs/arithmetic.md, "Layer shapes")."""
    shape = params.layer_shape(k)
    pool = shape.pool
    max_pool = shape if pool is not None and pool.kind is PoolKind.MAX else None
    # Each event source's index on the map the weights are indexed by (sum pooling).
    rows = None
    if pool is not None and max_pool is None:
        assert shape.input_map is not None  # checked by Dense and Conv2d
        rows = pool.window_of(shape.input_map)
    n_out = shape.n_outputs()
    summed = pool.size ** 2 if pool is not None and rows is not None else 1
    if isinstance(shape, Conv2d):
        positions, slots = shape.offsets()
        if rows is not None:
            positions = np.where(rows[:, None] == NO_TARGET, NO_TARGET, positions[rows])
            slots = slots[rows]
        per_neuron = shape.output_map.height * shape.output_map.width
        bound = int(np.abs(layer.weights).sum(axis=(0, 1, 2)).max(initial=0)) * summed
        c, kh, kw, k = layer.weights.shape
        reached = positions != NO_TARGET
        pairs = np.concatenate([[0], np.cumsum(reached.sum(axis=1))]).astype(np.int64)
        order = np.arange(n_out).reshape(per_neuron, k).T.ravel()  # channel-major index -> position-major
        return _Wiring(n_out, np.tile(layer.thresholds, per_neuron), np.tile(layer.initial_potentials, per_neuron),
                       bound, positions=positions, slots=slots, shape=max_pool, rows=rows, conv=shape,
                       kernel_matrix=layer.weights.reshape(c * kh * kw, k), pairs=pairs,
                       pair_positions=positions[reached], pair_slots=slots[reached], order=order)
    weights = layer.weights
    if rows is not None:
        weights = np.where(rows[:, None] == NO_TARGET, 0, weights[rows])
    bound = int(np.abs(weights).sum(axis=0).max(initial=0))
    return _Wiring(n_out, layer.thresholds, layer.initial_potentials, bound, weights=weights, shape=max_pool)


def _exact_dtype(params: CoreParams, increment_bound: int) -> type:
    """``float32`` where every intermediate of the layer stays below 2**24 in magnitude."""
    potential_bound = 1 << params.potential_bits  # V + I, V + a with |V|, |I| < 2**(pb-1)
    if increment_bound + potential_bound <= 1 << 24:
        return np.float32
    return np.float64


def _increments(spike_times: np.ndarray, weights: np.ndarray, steps: int, dtype: type,
                method: str = "auto") -> np.ndarray:
    """``a(t)`` for every step, sample and neuron: ``[T, batch, n_out]``.

    ``dense`` multiplies the one-hot spike times with the weights (BLAS, cost grows with
    ``T * n_in``); ``sparse`` adds up the weight rows of the spikes that happened (cost
    grows with the number of spikes). ``auto`` picks the cheaper one; both are exact.
    """
    batch, n_in = spike_times.shape
    n_out = weights.shape[1]
    spiking = spike_times != NO_SPIKE
    if method == "auto":
        density = spiking.mean() if spiking.size else 0.0
        method = "sparse" if density * _SPARSE_COST < steps else "dense"
    w: np.ndarray = weights.astype(dtype)
    if method == "dense":
        one_hot = spike_times[None, :, :] == np.arange(steps, dtype=np.int16)[:, None, None]
        return (one_hot.reshape(steps * batch, n_in).astype(dtype) @ w).reshape(steps, batch, n_out)
    # One row per (step, sample), time-major, holding the indices of its spikes: a sparse
    # matrix whose product with the weights adds up each row's weight rows.
    sample, source = np.nonzero(spiking)
    segment = spike_times[sample, source].astype(np.int64) * batch + sample
    rows = sparse.coo_matrix((np.ones(len(segment), dtype), (segment, source)), shape=(steps * batch, n_in))
    return np.asarray(rows @ w).reshape(steps, batch, n_out)


def _scatter_is_cheaper(spike_times: np.ndarray, wiring: _Wiring, steps: int) -> bool:
    """Whether adding each spike's kernel rows beats convolving every step's map (both exact)."""
    assert wiring.positions is not None and wiring.conv is not None and wiring.pairs is not None
    offsets = wiring.positions.shape[1]
    pairs = int((spike_times != NO_SPIKE).sum(axis=0) @ np.diff(wiring.pairs))
    out = wiring.conv.output_map
    windows = steps * len(spike_times) * out.height * out.width
    return pairs * _SCATTER_COST < windows * offsets * wiring.conv.seen_map().channels


def _scattered_increments(spike_times: np.ndarray, wiring: _Wiring, steps: int, dtype: type) -> np.ndarray:
    """``a(t)`` ``[T, batch, Q·K]`` (position-major) of a convolution, event by event: every
    spike adds, per kernel offset in range, that offset's row of ``K`` weights to its output
    position: one sparse product of the (step, sample, position) x slot counts with the kernel."""
    assert wiring.pairs is not None and wiring.pair_positions is not None and wiring.pair_slots is not None
    assert wiring.conv is not None and wiring.kernel_matrix is not None
    batch, out = len(spike_times), wiring.conv.output_map
    size = out.height * out.width
    sample, source = np.nonzero(spike_times != NO_SPIKE)
    segment = spike_times[sample, source].astype(np.int64) * batch + sample
    first, count = wiring.pairs[source], np.diff(wiring.pairs)[source]
    # Each spike's pairs: its first pair's index plus 0, 1, ... count - 1.
    pair = np.repeat(first - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
    cells = np.repeat(segment, count) * size + wiring.pair_positions[pair]
    counts = sparse.coo_matrix((np.ones(len(cells), dtype), (cells, wiring.pair_slots[pair])),
                               shape=(steps * batch * size, len(wiring.kernel_matrix)))
    sums = np.asarray(counts @ wiring.kernel_matrix.astype(dtype))  # [T·B·Q, K]
    return sums.reshape(steps, batch, wiring.n_out)


def _convolved_increments(spike_times: np.ndarray, wiring: _Wiring, steps: int, dtype: type) -> np.ndarray:
    """``a(t)`` ``[T, batch, Q·K]`` (position-major) of a convolution by one matrix product.

    First the events of every step are counted per position of the (padded) seen map
    (a sum-pooled window counts all its inputs); then those count maps, unrolled into
    windows (im2col) for all steps at once, times the ``[K, C·kh·kw]`` kernel.
    """
    shape, kernel = wiring.conv, wiring.kernel_matrix
    assert shape is not None and kernel is not None
    batch = len(spike_times)
    seen, out = shape.seen_map(), shape.output_map
    (kh, kw), (sy, sx), (py, px) = shape.kernel, shape.stride, shape.padding
    height, width = seen.height + 2 * py, seen.width + 2 * px
    sample, source = np.nonzero(spike_times != NO_SPIKE)
    step = spike_times[sample, source].astype(np.int64)
    if wiring.rows is not None:  # sum pooling: each input counts in its window
        source = wiring.rows[source]
        kept = source != NO_TARGET
        sample, source, step = sample[kept], source[kept], step[kept]
    channel, y, x = np.unravel_index(source, seen.as_tuple())
    cell = (((step * batch + sample) * seen.channels + channel) * height + y + py) * width + x + px
    counts: np.ndarray = np.bincount(cell, minlength=steps * batch * seen.channels * height * width).astype(dtype)
    counts = counts.reshape(steps, batch, seen.channels, height, width)
    windows = np.lib.stride_tricks.sliding_window_view(counts, (kh, kw), axis=(3, 4))
    windows = windows[:, :, :, ::sy, ::sx][:, :, :, :out.height, :out.width]  # [T, B, C, Ho, Wo, kh, kw]
    columns = windows.transpose(2, 5, 6, 0, 1, 3, 4).reshape(seen.channels * kh * kw, -1)
    products = kernel.T.astype(dtype) @ columns  # [K, T·B·Ho·Wo]
    products = products.reshape(out.channels, steps, batch, out.height * out.width).transpose(1, 2, 3, 0)
    return np.ascontiguousarray(products).reshape(steps, batch, wiring.n_out)  # position-major


def _run_layer(params: CoreParams, wiring: _Wiring, spike_times: np.ndarray, method: str = "auto",
               history: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One layer over a batch: spike times, final potentials and, if ``history``, all
    potentials ``[T, batch, n]``."""
    dtype = _exact_dtype(params, wiring.increment_bound)
    inputs = wiring.inputs(spike_times)
    if wiring.weights is not None:
        increments = _increments(inputs, wiring.weights, params.time_steps, dtype, method)
    elif method == "sparse" or (method == "auto" and _scatter_is_cheaper(inputs, wiring, params.time_steps)):
        increments = _scattered_increments(inputs, wiring, params.time_steps, dtype)
    else:
        increments = _convolved_increments(inputs, wiring, params.time_steps, dtype)
    initial: np.ndarray = wiring.initial_potentials.astype(dtype)
    thresholds: np.ndarray = wiring.thresholds.astype(dtype)
    if history:
        potentials = integrate_steps(increments, initial, params)
        spike_time, final = first_crossing(potentials, thresholds), potentials[-1].astype(np.int32)
    else:
        spike_time, last = fire_times(increments, initial, thresholds, params, wiring.increment_bound)
        final = last.astype(np.int32)
    if wiring.order is not None:  # back to channel-major
        spike_time, final = spike_time[:, wiring.order], final[:, wiring.order]
        if history:
            potentials = potentials[:, :, wiring.order]
    return spike_time, final, potentials if history else None


def _wirings(model: Model) -> tuple[_Wiring, ...]:
    return tuple(_wiring(model.params, k, layer) for k, layer in enumerate(model.layers))


def _simulate_chunk(model: Model, spike_times: np.ndarray, method: str = "auto",
                    wirings: tuple[_Wiring, ...] | None = None) -> GoldenResult:
    times = spike_times
    layer_times, layer_potentials = [], []
    wirings = wirings or _wirings(model)
    for k, wiring in enumerate(wirings):
        times, potential, history = _run_layer(model.params, wiring, times, method, history=k == len(wirings) - 1)
        layer_times.append(times)
        layer_potentials.append(potential)
    assert history is not None
    at_spike = np.take_along_axis(history, np.maximum(times, 0)[None].astype(np.int64), axis=0)[0]
    decision, fired = decide(times, at_spike.astype(np.int64), potential)
    steps = model.params.time_steps
    decision_step = np.where(fired, np.where(times == NO_SPIKE, steps, times).min(axis=1, initial=steps),
                             steps - 1).astype(np.int64)
    if model.params.stepped:  # the core stops after the decision step
        layer_times = [np.where(t > decision_step[:, None], NO_SPIKE, t).astype(t.dtype) for t in layer_times]
    return GoldenResult(model.params, spike_times, tuple(layer_times), tuple(layer_potentials),
                        decision, fired, decision_step)


def _chunk_size(params: CoreParams) -> int:
    widest = max(params.layer_sizes[:-1])
    return max(1, _CHUNK_ELEMENTS // (params.time_steps * widest))


def simulate_batches(model: Model, spike_times: np.ndarray, chunk: int | None = None,
                     method: str = "auto") -> Iterator[GoldenResult]:
    """Like :func:`simulate`, yielding one result per chunk of samples (for progress bars).

    ``method`` (``auto``, ``dense``, ``sparse``) only changes speed, never a result.
    """
    if method not in ("auto", "dense", "sparse"):
        raise ValueError(f"method must be 'auto', 'dense' or 'sparse', not {method!r}")
    spike_times = check_spike_times(spike_times, model.params)
    chunk = chunk or _chunk_size(model.params)
    starts = range(0, len(spike_times), chunk)
    wirings = _wirings(model)
    if len(starts) <= 1:
        yield from (_simulate_chunk(model, spike_times[s:s + chunk], method, wirings) for s in starts)
        return
    # NumPy releases the GIL in its loops, so chunks run in parallel on threads.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        yield from pool.map(lambda s: _simulate_chunk(model, spike_times[s:s + chunk], method, wirings), starts)


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
    spike_times = check_spike_times(spike_times, model.params)
    if len(spike_times) == 0:
        return _simulate_chunk(model, np.zeros((0, model.params.n_inputs), np.int16))
    return GoldenResult.join(simulate_batches(model, spike_times), len(spike_times))


def output_potentials(model: Model, spike_times: np.ndarray) -> np.ndarray:
    """``int64 [T, batch, n_out]``: the output layer's potential at every step.

    The output layer's thresholds play no part in it (nothing after it reads its spikes),
    so one run serves every output threshold a calibration tries."""
    spike_times = check_spike_times(spike_times, model.params)
    wirings = _wirings(model)
    chunk = _chunk_size(model.params)
    parts = []
    for start in range(0, len(spike_times), chunk):
        times = spike_times[start:start + chunk]
        for wiring in wirings[:-1]:
            times, _, _ = _run_layer(model.params, wiring, times)
        history = _run_layer(model.params, wirings[-1], times, history=True)[2]
        assert history is not None
        parts.append(history.astype(np.int64))
    if not parts:
        return np.zeros((model.params.time_steps, 0, model.params.n_outputs), np.int64)
    return np.concatenate(parts, axis=1)
