"""The surrogate network that training differentiates: the hardware's neuron, made smooth.

A layer's potential at step ``t`` is a linear function of what its inputs did by ``t``
(docs/arithmetic.md, without saturation):

* ``step`` kernel: ``V(t) = b + sum_i w_i [s_i <= t]``: the inputs' *thermometer*;
* ``ramp`` kernel: ``V(t) = b + sum_i w_i (t - s_i + 1)^+``: the thermometer's running sum;

so all steps of a layer are one matrix product (a convolution of every step's map, for
conv2d layers; sum pooling sums a window's features, max pooling takes their maximum,
which for these monotone features is the earliest spike's). The first-spike latch is
``z(t) = H(max_{tau <= t} V(tau) - theta)``, whose derivative is replaced by a fast
sigmoid's (Park & Yoon's surrogate). Weights, biases and thresholds are fake-quantized to
the integer grid that :mod:`.export` writes, with a straight-through gradient; the
``alpha`` blend (Voelker et al.) moves from float weights and sigmoid activations
(``alpha = 0``) to integer weights and hard spikes (``alpha = 1``).

Units: hidden thresholds are 1; a layer's integer scale maps its largest weight to the
largest integer weight.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..params import Kernel
from ..topology import Conv2d, Dense, LayerShape, PoolKind
from .config import TrainConfig

__all__ = ["SurrogateNet", "input_features", "reverse_times"]


class _Spike(torch.autograd.Function):
    """Heaviside forward, fast-sigmoid derivative backward."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.slope = slope
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (u,) = ctx.saved_tensors
        return grad / (1.0 + ctx.slope * u.abs()) ** 2, None


def input_features(times: torch.Tensor, kernel: Kernel, steps: int) -> torch.Tensor:
    """``[batch, T, n]``: what each input contributed by step ``t`` per unit weight."""
    t = torch.arange(steps, device=times.device, dtype=torch.float32)[None, :, None]
    s = times.to(torch.float32)[:, None, :]
    spiked = s >= 0
    if kernel is Kernel.STEP:
        return (spiked & (s <= t)).to(torch.float32)
    return torch.where(spiked, (t - s + 1).clamp(min=0), torch.zeros_like(t - s))


def reverse_times(times: torch.Tensor, steps: int) -> torch.Tensor:
    """Zuo et al.'s temporal reversal of TTFS inputs: ``s -> T-1-s``; silence stays silent."""
    return torch.where(times >= 0, steps - 1 - times, times)


def _fake_quantize(x: torch.Tensor, scale: torch.Tensor, low: float, high: float,
                   alpha: float) -> torch.Tensor:
    """``x`` moved ``alpha`` of the way to ``round(x * scale) / scale`` (straight-through)."""
    grid = (x * scale).round().clamp(low, high) / scale
    return x + alpha * (grid - x).detach()


def _pool(features: torch.Tensor, shape: LayerShape) -> torch.Tensor:
    """``[batch, T, n]`` features of the input map through the layer's pooling."""
    if shape.pool is None:
        return features
    assert shape.input_map is not None
    c, h, w = shape.input_map.as_tuple()
    p = shape.pool.size
    maps = features.reshape(-1, c, h, w)[:, :, :h // p * p, :w // p * p].reshape(-1, c, h // p, p, w // p, p)
    pooled = maps.sum(dim=(3, 5)) if shape.pool.kind is PoolKind.SUM else maps.amax(dim=(3, 5))
    return pooled.reshape(features.shape[0], features.shape[1], -1)


class SurrogateNet(nn.Module):
    """Float master weights per layer (``[n_in, n_out]`` dense, ``[K, C, kh, kw]`` conv2d as
    PyTorch holds them), biases (per neuron, or per output channel), and the decoding weights."""

    def __init__(self, sizes: tuple[int, ...], config: TrainConfig, generator: torch.Generator,
                 shapes: tuple[LayerShape, ...] = ()):
        super().__init__()
        self.config = config
        self.sizes = sizes
        self.shapes = shapes or tuple(Dense(n) for n in sizes[1:])
        self.w_max = (1 << (config.weight_bits - 1)) - 1
        self.p_max = (1 << (config.potential_bits - 1)) - 1
        spread = 1.0 if config.kernel is Kernel.STEP else 2.0 / config.time_steps
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for n_in, shape in zip(sizes, self.shapes):
            if isinstance(shape, Conv2d):
                size: tuple[int, ...] = (shape.channels, shape.input_map.channels, *shape.kernel)
                fan_in = shape.input_map.channels * shape.kernel[0] * shape.kernel[1]
            else:
                seen = shape.seen_map()
                size = (seen.size if seen is not None else n_in, shape.outputs)
                fan_in = size[0]
            if shape.pool is not None and shape.pool.kind is PoolKind.SUM:
                fan_in *= shape.pool.size ** 2
            w = torch.randn(*size, generator=generator) * spread / math.sqrt(max(1.0, fan_in / 2))
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(shape.neuron_param_shape())))
        # ETTFS temporal-weighted decoding: softmax over these gives each step's weight.
        self.step_logits = nn.Parameter(torch.zeros(config.time_steps),
                                        requires_grad=config.decoding == "temporal")

    # -- the integer grid ------------------------------------------------------------

    def scale(self, k: int) -> torch.Tensor:
        """Integer units per float unit for layer ``k`` (no gradient)."""
        return (self.w_max / self.weights[k].detach().abs().max().clamp(min=1e-6))

    def layer_parameters(self, k: int, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fake-quantized ``(weights, bias, threshold)`` of layer ``k`` in float units."""
        s = self.scale(k)
        w = _fake_quantize(self.weights[k], s, -self.w_max - 1, self.w_max, alpha)
        b = _fake_quantize(self.biases[k], s, -self.p_max - 1, self.p_max, alpha)
        theta = 1.0 + alpha * ((s.round() / s) - 1.0)
        return w, b, theta

    def step_weights(self) -> torch.Tensor:
        if self.config.decoding == "temporal":
            return torch.softmax(self.step_logits, dim=0)
        return torch.full_like(self.step_logits, 1.0 / len(self.step_logits))

    # -- forward ---------------------------------------------------------------------

    def activation(self, potential: torch.Tensor, theta: torch.Tensor, alpha: float) -> torch.Tensor:
        """The first-spike latch ``z(t)``, blended with a sigmoid while ``alpha < 1``."""
        u = torch.cummax(potential, dim=1).values - theta
        hard = _Spike.apply(u, self.config.surrogate_slope)
        if alpha >= 1.0:
            return hard
        return alpha * hard + (1.0 - alpha) * torch.sigmoid(self.config.surrogate_slope * u)

    def forward(self, times: torch.Tensor, alpha: float = 1.0
                ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """``(output potentials [batch, T, n_out], hidden z per layer, potentials per layer)``."""
        kernel, steps = self.config.kernel, self.config.time_steps
        features = input_features(times, kernel, steps)
        spikes: list[torch.Tensor] = []
        potentials: list[torch.Tensor] = []
        for k in range(len(self.weights)):
            w, b, theta = self.layer_parameters(k, alpha)
            potential = self.apply_layer(k, features, w, b)
            potentials.append(potential)
            if k == len(self.weights) - 1:
                return potential, spikes, potentials
            z = self.activation(potential, theta, alpha)
            spikes.append(z)
            features = z if kernel is Kernel.STEP else torch.cumsum(z, dim=1)
        raise AssertionError("unreachable")

    def apply_layer(self, k: int, features: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Potentials ``[batch, T, n_out]`` of layer ``k`` from its input features ``[batch, T, n_in]``."""
        shape = self.shapes[k]
        features = _pool(features, shape)
        if not isinstance(shape, Conv2d):
            return features @ w + b
        batch, steps, _ = features.shape
        maps = features.reshape(batch * steps, *shape.seen_map().as_tuple())
        out = F.conv2d(maps, w, b, stride=shape.stride, padding=shape.padding)
        return out.reshape(batch, steps, -1)

    def readout(self, hidden_final: torch.Tensor, alpha: float) -> torch.Tensor:
        """Output potentials from a last-hidden-layer spike pattern at ``T-1`` (star mixing)."""
        k = len(self.weights) - 1
        w, b, _ = self.layer_parameters(k, alpha)
        return self.apply_layer(k, hidden_final[:, None, :], w, b)[:, 0, :]
