"""Networks and inputs shared by the gateware tests (Amaranth simulation and cocotb)."""

from __future__ import annotations

import numpy as np

from firstspike.sw import NO_SPIKE, CoreParams, Kernel, Layer, Model
from firstspike.sw.params import Schedule
from firstspike.sw.synthetic import random_model, random_spike_times
from firstspike.sw.topology import Conv2d, Dense, MapShape, Pooling, stack


def random_case(seed: int, kernel: Kernel, batch: int = 6) -> tuple[Model, np.ndarray]:
    """Layer sizes that are mostly not multiples of the lane counts under test."""
    rng = np.random.default_rng(seed)
    sizes = (int(rng.integers(3, 20)), int(rng.integers(5, 23)), int(rng.integers(2, 11)))
    params = CoreParams(sizes, time_steps=int(rng.integers(2, 12)), kernel=kernel,
                        weight_bits=int(rng.integers(3, 9)), potential_bits=12)
    model = random_model(params, rng, firing=float(rng.uniform(0.3, 0.8)))
    return model, random_spike_times(params, rng, batch, density=0.6)


def sparse_deep_case(time_steps: int, seed: int = 21) -> tuple[Model, np.ndarray]:
    """Ramp, two hidden layers, few input spikes over many steps: most spikes happen inside
    runs of empty steps, in a different order from the folds that find them."""
    rng = np.random.default_rng(seed)
    params = CoreParams((12, 19, 13, 5), time_steps=time_steps, kernel=Kernel.RAMP, weight_bits=6,
                        potential_bits=14)
    return random_model(params, rng, firing=0.7), random_spike_times(params, rng, 8, density=0.15)


def saturating_case(kernel: Kernel) -> tuple[Model, np.ndarray]:
    rng = np.random.default_rng(7)
    params = CoreParams((10, 7, 4), time_steps=9, kernel=kernel, weight_bits=5, potential_bits=6)
    return random_model(params, rng, firing=0.5), random_spike_times(params, rng, 6, density=0.9)


def tie_case(kernel: Kernel) -> tuple[Model, np.ndarray]:
    """Weights of 0 and 1 and equal thresholds: outputs fire together with equal potentials."""
    rng = np.random.default_rng(3)
    params = CoreParams((6, 5, 4), time_steps=6, kernel=kernel, weight_bits=3, potential_bits=8)
    layers = (Layer(rng.integers(0, 2, (6, 5)), np.full(5, 2), np.zeros(5, np.int64)),
              Layer(rng.integers(0, 2, (5, 4)), np.full(4, 2), np.zeros(4, np.int64)))
    from firstspike.sw import LatencyEncoding
    return Model(params, layers, LatencyEncoding(1.0)), random_spike_times(params, rng, 8, density=0.8)


def silent_case(kernel: Kernel) -> tuple[Model, np.ndarray]:
    model, times = random_case(11, kernel)
    high = model.params.potential_range[1]
    layers = tuple(Layer(la.weights, np.full_like(la.thresholds, high), la.initial_potentials * 0)
                   for la in model.layers)
    return Model(model.params, layers, model.encoding), times


def floor_case(kernel: Kernel) -> tuple[Model, np.ndarray]:
    """Some thresholds at the lowest potential, with inputs that drive potentials below it:
    a saturated potential still reaches such a threshold."""
    model, times = saturating_case(kernel)
    low = model.params.potential_range[0]
    layers = tuple(Layer(-np.abs(la.weights), np.where(np.arange(len(la.thresholds)) % 2 == 0, low, la.thresholds),
                         la.initial_potentials) for la in model.layers)
    return Model(model.params, layers, model.encoding), times


def edge_case(kernel: Kernel, when: str) -> tuple[Model, np.ndarray]:
    model, times = random_case(13, kernel)
    step = 0 if when == "first" else model.params.time_steps - 1
    edge = np.where(times == NO_SPIKE, NO_SPIKE, step).astype(np.int16)
    return model, edge


def single_neuron_case(kernel: Kernel) -> tuple[Model, np.ndarray]:
    rng = np.random.default_rng(17)
    params = CoreParams((5, 1, 3), time_steps=5, kernel=kernel, weight_bits=4)
    return random_model(params, rng, firing=0.8), random_spike_times(params, rng, 6, density=0.8)


def reshuffled(model: Model, seed: int = 99, *, initial: bool = True) -> Model:
    """The same shapes with the weights permuted and the thresholds (and, if ``initial``,
    the initial potentials) reversed: a reload that changes decisions."""
    rng = np.random.default_rng(seed)
    return Model(model.params, tuple(
        Layer(rng.permutation(layer.weights.ravel()).reshape(layer.weights.shape), layer.thresholds[::-1].copy(),
              layer.initial_potentials[::-1].copy() if initial else layer.initial_potentials)
        for layer in model.layers), model.encoding)


# -- conv networks (the stepped schedule) ------------------------------------------------------

#: Layer stacks the core runs: stride 2, padding, kernels 1x1 ... 5x5, sum pooling of a conv
#: map before a conv and a dense layer, channel counts that are multiples of nothing.
CONV_STACKS = {
    "conv": lambda: [lambda m: Conv2d(m, 3, (3, 3), 1, 1), lambda m: Dense(4)],
    "strided": lambda: [lambda m: Conv2d(m, 7, (5, 5), 2, 2), lambda m: Conv2d(m, 3, (2, 3), (1, 2), (0, 1)),
                        lambda m: Dense(3)],
    "pooled": lambda: [lambda m: Conv2d(m, 5, (3, 3), 1, 0), lambda m: Conv2d(m, 2, (2, 2), 1, 1, Pooling(2)),
                       lambda m: Dense(3, m, Pooling(2))],
    # A 1x1 kernel at stride 2 skips every other input: those spikes reach nothing.
    "skipping": lambda: [lambda m: Conv2d(m, 5, (1, 1), 2, 0), lambda m: Conv2d(m, 3, (3, 3), 2, 0),
                         lambda m: Dense(4)],
}


def random_conv_case(seed: int, kernel: Kernel, kind: str, batch: int = 6, *, firing: float = 0.3,
                     potential_bits: int = 12, density: float = 0.4) -> tuple[Model, np.ndarray]:
    """A random conv network of ``CONV_STACKS[kind]`` on an input map of odd sizes, stepped."""
    rng = np.random.default_rng(seed)
    input_map = MapShape(int(rng.integers(1, 3)), int(rng.integers(7, 12)), int(rng.integers(7, 12)))
    sizes, shapes = stack(input_map, CONV_STACKS[kind]())
    params = CoreParams(sizes, time_steps=int(rng.integers(3, 9)), kernel=kernel, weight_bits=4,
                        potential_bits=potential_bits, shapes=shapes, schedule=Schedule.STEPPED)
    return random_model(params, rng, firing=firing), random_spike_times(params, rng, batch, density=density)
