"""Random networks and random input spikes, for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from .arith import NO_SPIKE
from .encoding import LatencyEncoding
from .errors import FirstSpikeError
from .model import Layer, Model
from .params import CoreParams
from .topology import PoolKind

__all__ = ["random_model", "random_spike_times", "benchmark_network"]


def random_model(params: CoreParams, rng: np.random.Generator, *, firing: float = 0.5) -> Model:
    """A network with uniform random weights over the full weight range.

    Thresholds are drawn so that, for inputs that spike about half the time, roughly
    ``firing`` of each layer's neurons reach them: larger values make more spikes.
    Initial potentials are small random values.
    """
    w_low, w_high = params.weight_range
    v_low, v_high = params.potential_range
    layers = []
    for k, n_in in enumerate(params.layer_sizes[:-1]):
        shape = params.layer_shape(k)
        weights = rng.integers(w_low, w_high + 1, shape.weight_shape(n_in))
        # Weights one neuron sums: a dense layer's rows; a kernel's C·kh·kw (times the
        # window of sum pooling).
        fan_in = int(np.prod(weights.shape[:-1]))
        if shape.pool is not None and shape.pool.kind is PoolKind.SUM:
            fan_in *= shape.pool.size ** 2
        # Spread of a random walk of about fan_in / 2 weights, scaled by how much should fire.
        spread = max(1.0, np.sqrt(fan_in / 2) * (w_high + 1) / np.sqrt(3))
        centre = spread * (1.0 - 2.0 * firing)
        n_out = shape.neuron_param_shape()
        thresholds = np.clip(np.round(rng.normal(centre, spread / 2, n_out)), v_low, v_high)
        initial = np.clip(rng.integers(-(w_high + 1), w_high + 1, n_out), v_low, v_high)
        layers.append(Layer(weights.astype(np.int64), thresholds.astype(np.int64), initial.astype(np.int64)))
    return Model(params, tuple(layers), LatencyEncoding(x_max=1.0),
                 {"dataset": "none", "command": "firstspike.sw.synthetic.random_model"})


def random_spike_times(params: CoreParams, rng: np.random.Generator, batch: int,
                       *, density: float = 0.5) -> np.ndarray:
    """``int16 [batch, n_in]``: each input spikes with probability ``density`` at a uniform step."""
    times = rng.integers(0, params.time_steps, (batch, params.n_inputs))
    times[rng.random(times.shape) >= density] = NO_SPIKE
    return times.astype(np.int16)


def benchmark_network(seed: int, samples: int, data_dir: str | None = None) -> tuple[Model, np.ndarray, str]:
    """The 784-400-10 benchmark network (random weights, T = 32) and ``samples`` inputs:
    Fashion-MNIST test images when the data set is installed, else random spike times of a
    similar density. Returns the model, the spike times and where the inputs came from."""
    from .datasets import load_dataset

    rng = np.random.default_rng(seed)
    params = CoreParams((784, 400, 10), time_steps=32, weight_bits=8, potential_bits=16)
    model = random_model(params, rng)
    try:
        data = load_dataset("fashion-mnist", data_dir)
    except FirstSpikeError:
        return (model, random_spike_times(params, rng, samples, density=0.5),
                "random inputs (density 0.5; Fashion-MNIST not installed)")
    return (model, LatencyEncoding(data.x_max).encode(data.test_x[:samples], params.time_steps),
            "Fashion-MNIST test images")
