"""Where a model's integers live in the core's memories, and how they are packed.

Shared by the gateware (initial contents) and the host driver (loading a model at run
time), so both agree on every bit. One memory word holds ``P`` lanes side by side, lane
``l`` in bits ``[l*width, (l+1)*width)``, two's complement; lanes past a layer's last
neuron hold zero.

* weights: layer ``k``'s rows start at ``weight_base[k]``; slot ``s``, fold ``f`` is row
  ``weight_base[k] + s * F_k + f`` and holds the weights to neurons (dense) or channels
  (conv2d) ``f*P ... f*P+P-1``. A dense layer's slot is its input (after pooling, the
  pooled input); a convolution's is ``(c * kh + dy) * kw + dx``.
* thresholds and initial potentials: layer ``k``, fold ``f`` is row ``neuron_base[k] + f``
  (a convolution's are per output channel).
* neuron state: layer ``k``, position ``q`` (``oy * Wo + ox``; 0 for dense), fold ``f`` is
  row ``state_base[k] + q * F_k + f``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .model import Model
from .params import CoreParams

__all__ = ["MemoryLayout", "Target"]


class Target(IntEnum):
    """Which memory a run-time write goes to."""

    WEIGHTS = 0
    THRESHOLDS = 1
    INITIAL_POTENTIALS = 2


def _pack(values: np.ndarray, width: int) -> list[int]:
    """Rows of signed lane values -> one integer word per row."""
    unsigned = values.astype(np.int64) & ((1 << width) - 1)
    words = []
    for row in unsigned.tolist():
        word = 0
        for lane, value in enumerate(row):
            word |= value << (lane * width)
        words.append(word)
    return words


@dataclass(frozen=True)
class MemoryLayout:
    """Memory shapes for ``params`` (``params.lanes`` is ``P``)."""

    params: CoreParams

    @property
    def folds(self) -> tuple[int, ...]:
        return tuple(self.params.folds(k) for k in range(self.params.n_layers))

    @property
    def weight_slots(self) -> tuple[int, ...]:
        """Rows of weights per fold of each layer: a dense layer's (pooled) inputs, a
        convolution's input channels times kernel offsets."""
        slots = []
        for k in range(self.params.n_layers):
            shape = self.params.layer_shape(k)
            slots.append(int(np.prod(shape.weight_shape(self.params.layer_sizes[k])[:-1])))
        return tuple(slots)

    @property
    def weight_base(self) -> tuple[int, ...]:
        return tuple(int(b) for b in np.cumsum((0,) + tuple(n * f for n, f in zip(self.weight_slots, self.folds)))[:-1])

    @property
    def weight_rows(self) -> int:
        return sum(n * f for n, f in zip(self.weight_slots, self.folds))

    @property
    def neuron_base(self) -> tuple[int, ...]:
        return tuple(int(b) for b in np.cumsum((0,) + self.folds[:-1]))

    @property
    def neuron_rows(self) -> int:
        return sum(self.folds)

    @property
    def state_base(self) -> tuple[int, ...]:
        sizes = tuple(self.params.positions(k) * f for k, f in enumerate(self.folds))
        return tuple(int(b) for b in np.cumsum((0,) + sizes[:-1]))

    @property
    def state_rows(self) -> int:
        return sum(self.params.positions(k) * f for k, f in enumerate(self.folds))

    @property
    def weight_width(self) -> int:
        return self.params.lanes * self.params.weight_bits

    @property
    def neuron_width(self) -> int:
        return self.params.lanes * self.params.potential_bits

    def _lanes(self, values: np.ndarray, layer: int) -> np.ndarray:
        """``[..., n_out]`` -> ``[..., F, P]`` with zeros past the last neuron."""
        p, folds = self.params.lanes, self.folds[layer]
        padded = np.zeros(values.shape[:-1] + (folds * p,), np.int64)
        padded[..., :values.shape[-1]] = values
        return padded.reshape(values.shape[:-1] + (folds, p))

    def weight_words(self, model: Model) -> list[int]:
        words = []
        for k, layer in enumerate(model.layers):
            slots = layer.weights.reshape(self.weight_slots[k], -1)
            rows = self._lanes(slots, k).reshape(-1, self.params.lanes)
            words += _pack(rows, self.params.weight_bits)
        return words

    def threshold_words(self, model: Model) -> list[int]:
        return [w for k, layer in enumerate(model.layers)
                for w in _pack(self._lanes(layer.thresholds, k), self.params.potential_bits)]

    def initial_potential_words(self, model: Model) -> list[int]:
        return [w for k, layer in enumerate(model.layers)
                for w in _pack(self._lanes(layer.initial_potentials, k), self.params.potential_bits)]

    def unpack(self, words: list[int], target: Target) -> list[np.ndarray]:
        """The inverse of :meth:`words`: per layer, the values in the model file's shapes
        (weights ``[n_in, n_out]`` or ``[C, kh, kw, K]``; thresholds and initial
        potentials ``[n_out]`` or ``[K]``), sign-extended."""
        p = self.params.lanes
        bits = self.params.weight_bits if target is Target.WEIGHTS else self.params.potential_bits
        lanes = np.array([[(word >> (lane * bits)) & ((1 << bits) - 1) for lane in range(p)] for word in words],
                         np.int64).reshape(-1, p)
        lanes = np.where(lanes >= 1 << (bits - 1), lanes - (1 << bits), lanes)
        base = self.weight_base if target is Target.WEIGHTS else self.neuron_base
        layers = []
        for k, folds in enumerate(self.folds):
            shape, n_out = self.params.layer_shape(k), self.params.channels(k)
            if target is Target.WEIGHTS:
                slots = self.weight_slots[k]
                rows = lanes[base[k]:base[k] + slots * folds].reshape(slots, folds * p)
                layers.append(rows[:, :n_out].reshape(shape.weight_shape(self.params.layer_sizes[k])))
            else:
                layers.append(lanes[base[k]:base[k] + folds].reshape(folds * p)[:n_out])
        return layers

    def words(self, model: Model, target: Target) -> list[int]:
        return {Target.WEIGHTS: self.weight_words, Target.THRESHOLDS: self.threshold_words,
                Target.INITIAL_POTENTIALS: self.initial_potential_words}[target](model)
