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

Batch normalisation (``TrainConfig.batch_norm``) scales and shifts each hidden channel's
(dense: neuron's) potential trace ``V(t)`` by the statistics of its final potentials
``V(T-1)``: an affine map of ``V``, which is what a neuron's weights and initial potential
already are, so :meth:`SurrogateNet.fold_norms` moves it into them exactly and the
network trains on without it (the integer model has no normalisation to run).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..params import Kernel
from ..topology import Conv2d, Dense, LayerShape, PoolKind
from .config import TrainConfig

__all__ = ["SurrogateNet", "input_features", "reverse_times", "ChannelNorm", "running_max"]


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


class _RunningMax(torch.autograd.Function):
    """``torch.cummax(x, dim=1).values``, the same values and gradients (a tie goes to the
    later step), as a loop over the few steps: PyTorch's CPU ``cummax`` walks the long
    axes one element at a time and took a third of a CNN's training step."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        index = torch.zeros(x.shape, dtype=torch.int64, device=x.device)
        for t in range(1, x.shape[1]):
            later = x[:, t] >= out[:, t - 1]
            out[:, t] = torch.where(later, x[:, t], out[:, t - 1])
            index[:, t] = torch.where(later, t, index[:, t - 1])
        ctx.save_for_backward(index)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (index,) = ctx.saved_tensors
        return torch.zeros_like(grad).scatter_add_(1, index, grad)


def running_max(x: torch.Tensor) -> torch.Tensor:
    """The maximum of ``x`` over dimension 1 up to each position (``torch.cummax``'s values)."""
    return _RunningMax.apply(x)


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


class ChannelNorm(nn.Module):
    """Batch normalisation of a layer's potential traces ``[batch, T, channels * positions]``
    by the mean and variance of the final potentials over the batch and the positions."""

    mean: torch.Tensor
    var: torch.Tensor

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.gain = nn.Parameter(torch.ones(channels))
        self.shift = nn.Parameter(torch.zeros(channels))
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("var", torch.ones(channels))

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scale, offset)`` per channel with the running statistics: ``V -> scale V + offset``."""
        scale = self.gain / torch.sqrt(self.var + self.eps)
        return scale, self.shift - self.mean * scale

    def forward(self, potential: torch.Tensor) -> torch.Tensor:
        batch, steps, n = potential.shape
        channels = len(self.gain)
        v = potential.reshape(batch, steps, channels, n // channels)
        if self.training:
            final = v[:, -1].transpose(0, 1).reshape(channels, -1)
            mean, var = final.mean(dim=1), final.var(dim=1, unbiased=False)
            with torch.no_grad():
                self.mean.lerp_(mean, self.momentum)
                self.var.lerp_(final.var(dim=1), self.momentum)
            scale = self.gain / torch.sqrt(var + self.eps)
            offset = self.shift - mean * scale
        else:
            scale, offset = self.affine()
        return (v * scale[:, None] + offset[:, None]).reshape(batch, steps, n)


class SurrogateNet(nn.Module):
    """Float master weights per layer (``[n_in, n_out]`` dense, ``[K, C, kh, kw]`` conv2d as
    PyTorch holds them), biases (per neuron, or per output channel), and the decoding weights."""

    folded: torch.Tensor

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
        self.norms = nn.ModuleList(ChannelNorm(shape.neuron_param_shape()[0])
                                   for shape in self.shapes[:-1]) if config.batch_norm > 0 else nn.ModuleList()
        self.register_buffer("folded", torch.tensor(False))
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

    @property
    def normalizing(self) -> bool:
        return len(self.norms) > 0 and not bool(self.folded)

    @torch.no_grad()
    def fold_norms(self) -> None:
        """Move each hidden layer's normalisation into its weights and biases (exact in
        float: both are affine in ``V``); the network runs without it from then on."""
        if not self.normalizing:
            return
        for k in range(len(self.norms)):
            norm = self.norms[k]
            assert isinstance(norm, ChannelNorm)
            scale, offset = norm.affine()
            if isinstance(self.shapes[k], Conv2d):
                self.weights[k].mul_(scale[:, None, None, None])
            else:
                self.weights[k].mul_(scale[None, :])
            self.biases[k].mul_(scale).add_(offset)
        self.folded.fill_(True)

    # -- forward ---------------------------------------------------------------------

    def activation(self, potential: torch.Tensor, theta: torch.Tensor, alpha: float) -> torch.Tensor:
        """The first-spike latch ``z(t)``, blended with a sigmoid while ``alpha < 1``."""
        u = running_max(potential) - theta
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
            if k < len(self.weights) - 1 and self.normalizing:
                potential = self.norms[k](potential)
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
