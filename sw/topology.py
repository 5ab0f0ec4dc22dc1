"""Layer shapes: which of a layer's inputs reach which of its neurons (docs/arithmetic.md).

A layer is :class:`Dense` (every input reaches every neuron) or :class:`Conv2d` (neurons
on a ``K x Ho x Wo`` map, each reached by a ``kh x kw`` window of a ``C x H x W`` input
map, weights shared across positions). Either can read its input map through ``p x p``
:class:`Pooling` first: ``sum`` (ETTFS's average pooling, its ``1/p²`` folded into the
integer weights' scale, so every input spike is an event) or ``max`` (the earliest spike
of each window, the TTFS form of max pooling).

Maps are flat everywhere else: ``(c, y, x)`` of a ``C x H x W`` map is neuron
``c·H·W + y·W + x`` (channel-major, as PyTorch and NIR flatten). The shapes are part of
:class:`~firstspike.sw.params.CoreParams`, so hw, golden model and driver read one value.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PoolKind", "MapShape", "Pooling", "Dense", "Conv2d", "LayerShape", "NO_TARGET", "stack",
           "event_times", "fan_out", "describe"]

#: Padding in fan-out tables: no neuron.
NO_TARGET = -1


def _positive(name: str, value: object, high: int = 65535) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= high:
        raise ValueError(f"{name} must be an integer between 1 and {high}, not {value!r}")
    return int(value)


def _pair(name: str, value: object, low: int) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    if not isinstance(value, tuple) or len(value) != 2 or any(
            isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not low <= v <= 255 for v in value):
        raise ValueError(f"{name} must be an integer or a pair of integers between {low} and 255, not {value!r}")
    return int(value[0]), int(value[1])


class PoolKind(enum.Enum):
    """``SUM``: every input of a window counts with the window's weight (average pooling
    with ``1/p²`` in the weights' scale). ``MAX``: a window spikes once, at its earliest
    input spike."""

    SUM = "sum"
    MAX = "max"


@dataclass(frozen=True)
class MapShape:
    """``channels x height x width`` neurons, flattened channel-major."""

    channels: int
    height: int
    width: int

    def __post_init__(self) -> None:
        for name in ("channels", "height", "width"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))

    @property
    def size(self) -> int:
        return self.channels * self.height * self.width

    def as_tuple(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    def coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(c, y, x)`` of every flat index, in order."""
        c, y, x = np.unravel_index(np.arange(self.size), self.as_tuple())
        return c, y, x


@dataclass(frozen=True)
class Pooling:
    """``size x size`` windows at stride ``size``; rows and columns past the last whole
    window are dropped (as PyTorch's pooling does)."""

    size: int
    kind: PoolKind = PoolKind.SUM

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", _positive("pool size", self.size, 255))
        if not isinstance(self.kind, PoolKind):
            raise ValueError(f"pool kind must be one of {[k.value for k in PoolKind]}, not {self.kind!r}")

    def output(self, shape: MapShape) -> MapShape:
        p = self.size
        if shape.height < p or shape.width < p:
            raise ValueError(f"a {p}x{p} pooling needs a map of at least {p}x{p}, "
                             f"not {shape.height}x{shape.width}")
        return MapShape(shape.channels, shape.height // p, shape.width // p)

    def window_of(self, shape: MapShape) -> np.ndarray:
        """``int64 [shape.size]``: the pooled neuron each input falls in, or ``NO_TARGET``."""
        pooled = self.output(shape)
        c, y, x = shape.coordinates()
        py, px = y // self.size, x // self.size
        inside = (py < pooled.height) & (px < pooled.width)
        py, px = np.minimum(py, pooled.height - 1), np.minimum(px, pooled.width - 1)
        index = (c * pooled.height + py) * pooled.width + px
        return np.where(inside, index, NO_TARGET).astype(np.int64)

    def first_spikes(self, spike_times: np.ndarray, shape: MapShape) -> np.ndarray:
        """Max pooling in time: ``[batch, pooled.size]``, each window's earliest spike
        time (``-1`` where none of its inputs spikes). ``spike_times``: ``[batch, shape.size]``."""
        pooled, p = self.output(shape), self.size
        batch = len(spike_times)
        never = np.iinfo(np.int16).max
        times = np.where(spike_times < 0, never, spike_times).astype(np.int16)
        maps = times.reshape(batch, shape.channels, shape.height, shape.width)
        maps = maps[:, :, :pooled.height * p, :pooled.width * p]
        windows = maps.reshape(batch, pooled.channels, pooled.height, p, pooled.width, p).min(axis=(3, 5))
        return np.where(windows == never, -1, windows).reshape(batch, pooled.size).astype(np.int16)


def _pooled(shape: MapShape | None, pool: Pooling | None) -> MapShape | None:
    return shape if shape is None or pool is None else pool.output(shape)


@dataclass(frozen=True)
class Dense:
    """Every (pooled) input reaches every one of ``outputs`` neurons.

    ``input_map`` is needed only with ``pool`` (or to check that the layer before makes
    that map). Weights ``[n_seen, outputs]``; a threshold and an initial potential per neuron.
    """

    outputs: int
    input_map: MapShape | None = None
    pool: Pooling | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", _positive("outputs", self.outputs))
        if self.pool is not None and self.input_map is None:
            raise ValueError("a dense layer with pooling needs its input map's shape")
        self.seen_map()  # checks the pooling fits

    kind = "dense"

    def seen_map(self) -> MapShape | None:
        """The map the weights are indexed by: the input map after pooling."""
        return _pooled(self.input_map, self.pool)

    @property
    def output_map(self) -> MapShape | None:
        return None

    def n_outputs(self) -> int:
        return self.outputs

    def weight_shape(self, n_inputs: int) -> tuple[int, ...]:
        seen = self.seen_map()
        return (seen.size if seen is not None else n_inputs, self.outputs)

    def neuron_param_shape(self) -> tuple[int, ...]:
        return (self.outputs,)


@dataclass(frozen=True)
class Conv2d:
    """``channels`` output maps of a 2-D convolution over the (pooled) input map.

    Output ``(k, oy, ox)`` sums ``w[c, dy, dx, k]`` over inputs ``(c, oy·sy − py + dy,
    ox·sx − px + dx)``; positions in the zero padding never spike. Weights
    ``[C, kh, kw, K]`` (a row of ``K`` per input channel and kernel offset, the order the
    hardware reads them); a threshold and an initial potential per output channel.
    """

    input_map: MapShape
    channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    pool: Pooling | None = None

    kind = "conv2d"

    def __post_init__(self) -> None:
        if not isinstance(self.input_map, MapShape):
            raise ValueError(f"a conv2d layer needs its input map's shape, not {self.input_map!r}")
        object.__setattr__(self, "channels", _positive("channels", self.channels))
        object.__setattr__(self, "kernel", _pair("kernel", self.kernel, 1))
        object.__setattr__(self, "stride", _pair("stride", self.stride, 1))
        object.__setattr__(self, "padding", _pair("padding", self.padding, 0))
        seen = self.seen_map()
        (kh, kw), (py, px) = self.kernel, self.padding
        if kh > seen.height + 2 * py or kw > seen.width + 2 * px:
            raise ValueError(f"kernel {kh}x{kw} is larger than the padded input map "
                             f"{seen.height + 2 * py}x{seen.width + 2 * px}")

    def seen_map(self) -> MapShape:
        """The map the weights are indexed by: the input map after pooling."""
        seen = _pooled(self.input_map, self.pool)
        assert seen is not None
        return seen

    @property
    def output_map(self) -> MapShape:
        seen = self.seen_map()
        (kh, kw), (sy, sx), (py, px) = self.kernel, self.stride, self.padding
        return MapShape(self.channels, (seen.height + 2 * py - kh) // sy + 1,
                        (seen.width + 2 * px - kw) // sx + 1)

    def n_outputs(self) -> int:
        return self.output_map.size

    def weight_shape(self, n_inputs: int) -> tuple[int, ...]:
        return (self.input_map.channels, *self.kernel, self.channels)

    def neuron_param_shape(self) -> tuple[int, ...]:
        return (self.channels,)

    def offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """Per kernel offset of each seen neuron: the output position it reaches
        (``oy·Wo + ox``, or ``NO_TARGET``) and its weight slot (``(c·kh + dy)·kw + dx``),
        ``int64 [seen.size, kh·kw]``: :meth:`fanout` for the first output channel."""
        targets, index = self.fanout()
        return targets[:, ::self.channels], index[:, ::self.channels] // self.channels

    def fanout(self) -> tuple[np.ndarray, np.ndarray]:
        """Whom each neuron of the seen map reaches, and with which weight.

        Returns ``(targets, weight_index)``, ``int64 [seen.size, kh·kw·K]``: output
        neurons (``NO_TARGET`` where a kernel offset falls outside the output map or
        between strides) and flat indices into the ``[C, kh, kw, K]`` weights.
        """
        seen, out = self.seen_map(), self.output_map
        (kh, kw), (sy, sx), (py, px), k = self.kernel, self.stride, self.padding, self.channels
        c, y, x = seen.coordinates()
        dy, dx = np.arange(kh)[None, :, None], np.arange(kw)[None, None, :]
        ny = y[:, None, None] + py - dy  # oy·sy, [n, kh, 1]
        nx = x[:, None, None] + px - dx  # ox·sx, [n, 1, kw]
        oy, ox = ny // sy, nx // sx
        reached = ((ny >= 0) & (ny % sy == 0) & (oy < out.height)
                   & (nx >= 0) & (nx % sx == 0) & (ox < out.width))
        channel = np.arange(k)
        targets = (channel * out.height + oy[..., None]) * out.width + ox[..., None]
        targets = np.where(reached[..., None], targets, NO_TARGET)
        weight_index = ((c[:, None, None, None] * kh + dy[..., None]) * kw + dx[..., None]) * k + channel
        weight_index = np.broadcast_to(weight_index, targets.shape)
        return targets.reshape(seen.size, -1).astype(np.int64), weight_index.reshape(seen.size, -1).astype(np.int64)


LayerShape = Dense | Conv2d


def stack(input_map: MapShape, makers: Sequence[Callable[[MapShape | None], LayerShape]]
          ) -> tuple[tuple[int, ...], tuple[LayerShape, ...]]:
    """``(layer_sizes, shapes)`` of layers made one after another, each from the map the
    one before makes (``None`` after a dense layer), e.g.
    ``stack(MapShape(1, 28, 28), [lambda m: Conv2d(m, 8, (3, 3)), lambda m: Dense(10, m)])``."""
    sizes, shapes = [input_map.size], []
    current: MapShape | None = input_map
    for make in makers:
        shape = make(current)
        shapes.append(shape)
        sizes.append(shape.n_outputs())
        current = shape.output_map
    return tuple(sizes), tuple(shapes)


def _max_pooled(shape: LayerShape) -> bool:
    return shape.pool is not None and shape.pool.kind is PoolKind.MAX


def event_times(shape: LayerShape, spike_times: np.ndarray) -> np.ndarray:
    """The spikes that are a layer's events: its input spikes, or with max pooling each
    window's first spike. ``[batch, n_inputs]`` in, ``[batch, n_events]`` out."""
    if _max_pooled(shape):
        assert shape.pool is not None and shape.input_map is not None
        return shape.pool.first_spikes(spike_times, shape.input_map)
    return spike_times


def fan_out(shape: LayerShape, n_inputs: int) -> np.ndarray:
    """``int64 [n_events]``: the neurons each of a layer's event sources reaches (a dense
    layer's every neuron; a convolution's kernel offsets that land on an output, times
    its channels; nothing for inputs that sum pooling drops)."""
    if isinstance(shape, Conv2d):
        per_seen = (shape.fanout()[0] != NO_TARGET).sum(axis=1).astype(np.int64)
    else:
        seen = shape.seen_map()
        per_seen = np.full(seen.size if seen is not None else n_inputs, shape.outputs, np.int64)
    if shape.pool is None or _max_pooled(shape):
        return per_seen
    assert shape.input_map is not None
    window = shape.pool.window_of(shape.input_map)
    return np.where(window == NO_TARGET, 0, per_seen[window])


def describe(shape: LayerShape) -> str:
    """One layer in a few words: ``sum-pool 2 > conv 32@3x3 stride 2 pad 1``, ``dense 10``."""
    pooled = f"{shape.pool.kind.value}-pool {shape.pool.size} > " if shape.pool is not None else ""
    if isinstance(shape, Dense):
        return f"{pooled}dense {shape.outputs}"
    (kh, kw), stride, padding = shape.kernel, shape.stride, shape.padding
    text = f"{pooled}conv {shape.channels}@{kh}x{kw}"
    if stride != (1, 1):
        text += f" stride {stride[0] if stride[0] == stride[1] else stride}"
    if padding != (0, 0):
        text += f" pad {padding[0] if padding[0] == padding[1] else padding}"
    return text
