"""The surrogate network that training differentiates: the hardware's neuron, made smooth.

A layer's potential at step ``t`` is a linear function of what its inputs did by ``t``
(docs/arithmetic.md, without saturation):

* ``step`` kernel: ``V(t) = b + sum_i w_i [s_i <= t]``: the inputs' *thermometer*;
* ``ramp`` kernel: ``V(t) = b + sum_i w_i (t - s_i + 1)^+``: the thermometer's running sum;

so all steps of a layer are one matrix product. The first-spike latch is
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
from torch import nn

from ..params import Kernel
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


class SurrogateNet(nn.Module):
    """Float master weights ``[n_in, n_out]`` per layer, biases, and the decoding weights."""

    def __init__(self, sizes: tuple[int, ...], config: TrainConfig, generator: torch.Generator):
        super().__init__()
        self.config = config
        self.sizes = sizes
        self.w_max = (1 << (config.weight_bits - 1)) - 1
        self.p_max = (1 << (config.potential_bits - 1)) - 1
        spread = 1.0 if config.kernel is Kernel.STEP else 2.0 / config.time_steps
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for n_in, n_out in zip(sizes, sizes[1:]):
            w = torch.randn(n_in, n_out, generator=generator) * spread / math.sqrt(max(1.0, n_in / 2))
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(n_out)))
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
            potential = features @ w + b
            potentials.append(potential)
            if k == len(self.weights) - 1:
                return potential, spikes, potentials
            z = self.activation(potential, theta, alpha)
            spikes.append(z)
            features = z if kernel is Kernel.STEP else torch.cumsum(z, dim=1)
        raise AssertionError("unreachable")

    def readout(self, hidden_final: torch.Tensor, alpha: float) -> torch.Tensor:
        """Output potentials from a last-hidden-layer spike pattern at ``T-1`` (star mixing)."""
        w, b, _ = self.layer_parameters(len(self.weights) - 1, alpha)
        return hidden_final @ w + b
