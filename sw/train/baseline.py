"""A NumPy baseline trainer for step-kernel TTFS networks with integer weights.

The forward pass is the golden model's arithmetic on integers: a neuron's potential is
``b + sum of weights of inputs that have spiked``, it spikes at the first crossing of
its threshold, and the next layer sees "has spiked by step t". The backward pass
replaces the spike's step function by a smooth surrogate (straight-through for the
rounding of weights to integers). The loss asks the right output neuron to hold the
highest potential at every step, so it crosses a common output threshold first; that
threshold is then chosen on the training set with the golden model itself.

Hidden thresholds are 1.0 in float units; each layer's float-to-integer scale maps its
largest weight to the largest integer weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arith import NO_SPIKE
from ..encoding import LatencyEncoding
from ..golden import simulate
from ..model import Layer, Model
from ..params import CoreParams, Kernel
from .threshold import lowest_good_threshold

__all__ = ["BaselineConfig", "train_baseline"]


@dataclass(frozen=True)
class BaselineConfig:
    hidden: tuple[int, ...] = (128,)
    time_steps: int = 16
    weight_bits: int = 8
    potential_bits: int = 16
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 0.01
    logit_scale: float = 4.0
    surrogate_slope: float = 4.0
    input_dropout: float = 0.1
    seed: int = 0


def _thermometer(spike_times: np.ndarray, steps: int) -> np.ndarray:
    """``float [batch, T, n]``: 1 where the neuron has spiked by step t."""
    t = np.arange(steps)[None, :, None]
    s = spike_times[:, None, :]
    return ((s != NO_SPIKE) & (s <= t)).astype(np.float64)


class _Net:
    """Float master weights; integer forward; surrogate backward."""

    def __init__(self, sizes: tuple[int, ...], config: BaselineConfig, rng: np.random.Generator):
        self.config = config
        self.w_max = (1 << (config.weight_bits - 1)) - 1
        self.weights, self.biases = [], []
        for n_in, n_out in zip(sizes, sizes[1:]):
            self.weights.append(rng.normal(0.0, 1.0 / np.sqrt(max(1.0, n_in / 2)), (n_in, n_out)))
            self.biases.append(np.zeros(n_out))

    def scales(self) -> list[float]:
        return [self.w_max / max(np.abs(w).max(), 1e-9) for w in self.weights]

    def integer_layers(self) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """(weights, biases, hidden threshold) in integer units, per layer."""
        out = []
        for w, b, s in zip(self.weights, self.biases, self.scales()):
            out.append((np.round(w * s), np.round(b * s), round(s)))
        return out

    def forward(self, x_therm: np.ndarray):
        cache = []
        z = x_therm
        layers = self.integer_layers()
        for k, ((w, b, theta), s) in enumerate(zip(layers, self.scales())):
            v = (z @ w + b) / s  # float units, exact up to the scale
            cache.append((z, v, s))
            if k < len(layers) - 1:
                m = np.maximum.accumulate(v * s, axis=1)
                z = (m >= theta).astype(np.float64)
        return v, cache

    def loss_and_grads(self, x_therm: np.ndarray, labels: np.ndarray):
        cfg = self.config
        v_out, cache = self.forward(x_therm)
        logits = cfg.logit_scale * v_out
        logits -= logits.max(axis=2, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=2, keepdims=True)
        batch, steps, _ = v_out.shape
        onehot = np.zeros_like(p)
        onehot[np.arange(batch), :, labels] = 1.0
        loss = -np.mean(np.log(np.maximum((p * onehot).sum(axis=2), 1e-12)))
        d_v = cfg.logit_scale * (p - onehot) / (batch * steps)
        grads = []
        for k in range(len(self.weights) - 1, -1, -1):
            z, _, _ = cache[k]
            grads.append((np.einsum("btn,btm->nm", z, d_v), d_v.sum(axis=(0, 1))))
            if k == 0:
                break
            d_z = d_v @ self.weights[k].T
            # Through the latch: z(t) = H(max_{tau<=t} V(tau) - 1); the max routes to its argmax.
            _, v_prev, _ = cache[k - 1]
            m = np.maximum.accumulate(v_prev, axis=1)
            d_m = d_z / (1.0 + cfg.surrogate_slope * np.abs(m - 1.0)) ** 2
            new_max = np.ones_like(v_prev, dtype=bool)
            new_max[:, 1:] = v_prev[:, 1:] >= m[:, :-1]
            d_v = np.zeros_like(v_prev)
            pending = np.zeros_like(v_prev[:, 0])
            for t in range(steps - 1, -1, -1):
                pending = pending + d_m[:, t]
                d_v[:, t] = np.where(new_max[:, t], pending, 0.0)
                pending = np.where(new_max[:, t], 0.0, pending)
        return loss, grads[::-1]


def _to_model(net: _Net, params: CoreParams, encoding: LatencyEncoding, output_threshold: int,
              provenance: dict) -> Model:
    layers = []
    integer = net.integer_layers()
    for k, (w, b, theta) in enumerate(integer):
        threshold = theta if k < len(integer) - 1 else output_threshold
        layers.append(Layer(w.astype(np.int64), np.full(len(b), threshold, np.int64), b.astype(np.int64)))
    return Model(params, tuple(layers), encoding, provenance)


def _choose_output_threshold(net: _Net, params: CoreParams, encoding: LatencyEncoding,
                             spike_times: np.ndarray, labels: np.ndarray,
                             tolerance: float = 0.005) -> tuple[int, float]:
    """The lowest common output threshold whose golden accuracy on the given samples is
    within ``tolerance`` of the best: a lower threshold lets more outputs fire early."""
    v_out, _ = net.forward(_thermometer(spike_times, params.time_steps))
    peak = (v_out * net.scales()[-1]).max(axis=2)  # integer units, [batch, T]
    low, high = params.potential_range
    candidates = np.clip(np.round(np.quantile(peak, np.linspace(0.02, 0.98, 49))), low, high)

    def accuracy_of(theta: int) -> float:
        model = _to_model(net, params, encoding, theta, {})
        return float(np.mean(simulate(model, spike_times).decision == labels))
    return lowest_good_threshold(candidates, accuracy_of, tolerance)


def train_baseline(train_x: np.ndarray, train_y: np.ndarray, *, x_max: float, config: BaselineConfig,
                   provenance: dict, progress=None) -> Model:
    """Train a step-kernel network ``n_in - hidden... - n_classes`` and export it.

    During training each input spike is dropped with probability
    ``config.input_dropout`` (a regulariser; the exported model sees every spike).

    ``progress``, if given, is called as ``progress(epoch, loss)`` after every epoch.
    """
    rng = np.random.default_rng(config.seed)
    n_classes = int(train_y.max()) + 1
    sizes = (train_x.shape[1], *config.hidden, n_classes)
    params = CoreParams(sizes, config.time_steps, Kernel.STEP, config.weight_bits, config.potential_bits)
    encoding = LatencyEncoding(x_max)
    spike_times = encoding.encode(train_x, config.time_steps)
    therm = _thermometer(spike_times, config.time_steps)
    net = _Net(sizes, config, rng)
    moments = [[np.zeros_like(a) for a in (w, b)] for w, b in zip(net.weights, net.biases)]
    squares = [[np.zeros_like(a) for a in (w, b)] for w, b in zip(net.weights, net.biases)]
    step = 0
    for epoch in range(config.epochs):
        lr = config.learning_rate * 0.5 * (1 + np.cos(np.pi * epoch / config.epochs))
        order = rng.permutation(len(train_x))
        losses = []
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            inputs = therm[batch]
            if config.input_dropout > 0:
                inputs = inputs * (rng.random((len(batch), 1, inputs.shape[2])) >= config.input_dropout)
            loss, grads = net.loss_and_grads(inputs, train_y[batch])
            losses.append(loss)
            step += 1
            for k, (gw, gb) in enumerate(grads):
                for slot, (param, grad) in enumerate(((net.weights[k], gw), (net.biases[k], gb))):
                    m, v = moments[k][slot], squares[k][slot]
                    m *= 0.9
                    m += 0.1 * grad
                    v *= 0.999
                    v += 0.001 * grad * grad
                    param -= lr * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
        if progress is not None:
            progress(epoch, float(np.mean(losses)))
    threshold, accuracy = _choose_output_threshold(net, params, encoding, spike_times, train_y)
    return _to_model(net, params, encoding, threshold, {**provenance, "train_accuracy": accuracy})
