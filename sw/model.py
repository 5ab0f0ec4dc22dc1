"""The model file: an integer TTFS network in one ``.npz`` that ``numpy.load`` reads alone.

Format version 2 (docs/model-file.md); version 1 is the same without the layer shapes
(every layer dense) and loads unchanged::

    format                  'firstspike-model'
    format_version          1
    layer_sizes             int  [L+1]     (n_in, n_1, ..., n_out)
    time_steps              int            T
    kernel                  str            'step' | 'ramp'
    weight_bits             int
    potential_bits          int
    decision                str            'first-spike'
    encoding                str            'linear-latency'
    encoding_x_max          float          brightest input intensity
    layer_kind_K            str            'dense' | 'conv2d'            for K = 0 ... L-1
    input_map_K             int  [3]       C, H, W of the input map (conv2d; dense if pooled)
    pool_K                  int            p of p x p pooling of the input map, 1 = none
    pool_kind_K             str            'sum' | 'max'
    channels_K, kernel_K, stride_K, padding_K   int, int [2] x 3   (conv2d)
    weights_K               int  [n_K, n_K+1] (dense) | [C, kh, kw, K] (conv2d)
    thresholds_K            int  [n_K+1] (dense) | [K] (conv2d)
    initial_potentials_K    int  like thresholds_K
    provenance              str            JSON: dataset, command, accuracy, ...

Every string is a 0-d unicode array, so ``numpy.load(path)`` needs no pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .encoding import LatencyEncoding
from .errors import ModelFileError
from .files import write_atomically
from .params import CoreParams, DecisionRule, Kernel, Schedule
from .topology import Conv2d, Dense, LayerShape, MapShape, Pooling, PoolKind

__all__ = ["Layer", "Model", "load_model", "save_model", "FORMAT", "FORMAT_VERSION"]

FORMAT = "firstspike-model"
FORMAT_VERSION = 2
#: Versions :func:`load_model` reads.
READ_VERSIONS = (1, 2)


@dataclass(frozen=True)
class Layer:
    """One weight layer: ``weights[i, j]`` connects input ``i`` to neuron ``j`` (dense),
    or ``weights[c, dy, dx, k]`` input channel ``c`` to output channel ``k`` at kernel
    offset ``(dy, dx)`` (conv2d, thresholds and initial potentials per output channel);
    see :mod:`~firstspike.sw.topology`."""

    weights: np.ndarray  # int64 [n_in, n_out] | [C, kh, kw, K]
    thresholds: np.ndarray  # int64 [n_out] | [K]
    initial_potentials: np.ndarray  # int64 [n_out] | [K]


@dataclass(frozen=True)
class Model:
    """An integer TTFS network: parameters, layers, input encoding and where it came from."""

    params: CoreParams
    layers: tuple[Layer, ...]
    encoding: LatencyEncoding
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_layers(self.params, self.layers, source="model")

    def digest(self) -> str:
        """SHA-256 over everything that changes what the network computes."""
        h = hashlib.sha256()
        p = self.params
        identity: list = [list(p.layer_sizes), p.time_steps, p.kernel.value, p.weight_bits,
                          p.potential_bits, p.decision.value]
        if not p.fully_connected:  # digests of dense models stay what they were
            identity.append([_shape_fields(shape) for shape in p.shapes])
        h.update(json.dumps(identity, default=_plain).encode())
        for layer in self.layers:
            for array in (layer.weights, layer.thresholds, layer.initial_potentials):
                h.update(np.ascontiguousarray(array, dtype="<i8").tobytes())
        return h.hexdigest()

    def with_schedule(self, schedule: Schedule | str) -> Model:
        """The same network on a core with another :class:`~firstspike.sw.params.Schedule`."""
        return Model(self.params.with_schedule(Schedule(schedule)), self.layers, self.encoding,
                     dict(self.provenance))

    def replace_layer(self, index: int, layer: Layer) -> Model:
        layers = list(self.layers)
        layers[index] = layer
        return Model(self.params, tuple(layers), self.encoding, dict(self.provenance))


def _check_layers(params: CoreParams, layers: tuple[Layer, ...], source: str) -> None:
    if len(layers) != params.n_layers:
        raise ModelFileError(f"{source}: layer_sizes {list(params.layer_sizes)} needs "
                             f"{params.n_layers} layers, found {len(layers)}")
    w_low, w_high = params.weight_range
    v_low, v_high = params.potential_range
    for k, layer in enumerate(layers):
        layer_shape = params.layer_shape(k)
        weight_shape, neuron_shape = layer_shape.weight_shape(params.layer_sizes[k]), layer_shape.neuron_param_shape()
        checks = (
            (f"weights_{k}", layer.weights, weight_shape, w_low, w_high, f"{params.weight_bits}-bit"),
            (f"thresholds_{k}", layer.thresholds, neuron_shape, v_low, v_high, f"{params.potential_bits}-bit"),
            (f"initial_potentials_{k}", layer.initial_potentials, neuron_shape, v_low, v_high,
             f"{params.potential_bits}-bit"),
        )
        for name, array, shape, low, high, width in checks:
            if not isinstance(array, np.ndarray) or array.dtype == bool or \
                    not np.issubdtype(array.dtype, np.integer):
                dtype = getattr(array, "dtype", type(array).__name__)
                raise ModelFileError(f"{source}: {name} must hold integers, found {dtype}")
            if array.shape != shape:
                origin = (f"layer_sizes {list(params.layer_sizes)}" if isinstance(params.layer_shape(k), Dense)
                          else f"layer {k}'s conv2d shape")
                raise ModelFileError(f"{source}: {name} must have shape {list(shape)} "
                                     f"(from {origin}), found {list(array.shape)}")
            bad = (array < low) | (array > high)
            if bad.any():
                where = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ModelFileError(f"{source}: {name}{list(where)} = {int(array[where])} is outside "
                                     f"the {width} signed range [{low}, {high}]")


def _scalar(archive: np.lib.npyio.NpzFile, key: str, kind: type, source: str):
    if key not in archive.files:
        raise ModelFileError(f"{source}: missing '{key}' (every model file has it)")
    value = archive[key]
    if value.shape != ():
        raise ModelFileError(f"{source}: '{key}' must be a single value, found shape {list(value.shape)}")
    if kind is str:
        if value.dtype.kind != "U":
            raise ModelFileError(f"{source}: '{key}' must be a string, found {value.dtype}")
        return str(value)
    if kind is int:
        if value.dtype == bool or not np.issubdtype(value.dtype, np.integer):
            raise ModelFileError(f"{source}: '{key}' must be an integer, found {value.dtype}")
        return int(value)
    if not np.issubdtype(value.dtype, np.number) or np.issubdtype(value.dtype, np.complexfloating):
        raise ModelFileError(f"{source}: '{key}' must be a number, found {value.dtype}")
    return float(value)


def _enum(enum_type, key: str, value: str, source: str):
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(repr(e.value) for e in enum_type)
        raise ModelFileError(f"{source}: '{key}' is {value!r}; it must be one of {allowed}") from None


def load_model(path: str | os.PathLike) -> Model:
    """Read and check a model file; any problem raises :class:`ModelFileError` naming it."""
    source = str(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{source}: no such model file")
    if os.path.isdir(path):
        raise ModelFileError(f"{source}: is a folder, not a model file")
    if os.path.getsize(path) == 0:
        raise ModelFileError(f"{source}: not a model file (it is empty)")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, zipfile.BadZipFile, EOFError):
        # NumPy's own text advises loading pickles, which a model file never holds.
        raise ModelFileError(f"{source}: not a model file (not an .npz archive)") from None
    except OSError as error:
        raise ModelFileError(f"{source}: cannot be read ({error.strerror or error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ModelFileError(f"{source}: holds a single array, not a .npz model archive")
    try:
        with archive:
            return _read(archive, source)
    except (ValueError, zipfile.BadZipFile, OSError, EOFError) as error:
        if isinstance(error, ModelFileError):
            raise
        raise ModelFileError(f"{source}: damaged archive ({error})") from None


def _read(archive: np.lib.npyio.NpzFile, source: str) -> Model:
    fmt = _scalar(archive, "format", str, source)
    if fmt != FORMAT:
        raise ModelFileError(f"{source}: 'format' is {fmt!r}, expected {FORMAT!r}")
    version = _scalar(archive, "format_version", int, source)
    if version not in READ_VERSIONS:
        raise ModelFileError(f"{source}: format version {version} is not supported "
                             f"(this FirstSpike reads versions {', '.join(map(str, READ_VERSIONS))})")
    if "layer_sizes" not in archive.files:
        raise ModelFileError(f"{source}: missing 'layer_sizes'")
    sizes = archive["layer_sizes"]
    if sizes.ndim != 1 or not np.issubdtype(sizes.dtype, np.integer):
        raise ModelFileError(f"{source}: 'layer_sizes' must be a 1-D integer array, "
                             f"found {sizes.dtype} of shape {list(sizes.shape)}")
    n_layers = max(len(sizes) - 1, 0)
    shapes = tuple(_read_shape(archive, k, source) for k in range(n_layers)) if version >= 2 else ()
    try:
        params = CoreParams(
            shapes=shapes,
            layer_sizes=tuple(int(n) for n in sizes),
            time_steps=_scalar(archive, "time_steps", int, source),
            kernel=_enum(Kernel, "kernel", _scalar(archive, "kernel", str, source), source),
            weight_bits=_scalar(archive, "weight_bits", int, source),
            potential_bits=_scalar(archive, "potential_bits", int, source),
            decision=_enum(DecisionRule, "decision", _scalar(archive, "decision", str, source), source),
        )
    except ModelFileError:
        raise
    except ValueError as error:
        raise ModelFileError(f"{source}: {error}") from None
    layers = []
    for k in range(params.n_layers):
        arrays = []
        for name in ("weights", "thresholds", "initial_potentials"):
            key = f"{name}_{k}"
            if key not in archive.files:
                raise ModelFileError(f"{source}: missing '{key}' (layer_sizes has {params.n_layers} layers)")
            arrays.append(archive[key])
        layers.append(Layer(*arrays))
    _check_layers(params, tuple(layers), source)
    layers = [Layer(*(a.astype(np.int64) for a in (layer.weights, layer.thresholds, layer.initial_potentials)))
              for layer in layers]
    encoding_kind = _scalar(archive, "encoding", str, source)
    x_max = _scalar(archive, "encoding_x_max", float, source)
    try:
        encoding = LatencyEncoding(x_max=x_max, kind=encoding_kind)
    except ValueError as error:
        raise ModelFileError(f"{source}: {error}") from None
    provenance_text = _scalar(archive, "provenance", str, source)
    try:
        provenance = json.loads(provenance_text)
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{source}: 'provenance' is not valid JSON ({error})") from None
    if not isinstance(provenance, dict):
        raise ModelFileError(f"{source}: 'provenance' must be a JSON object")
    return Model(params, tuple(layers), encoding, provenance)


def _array(archive: np.lib.npyio.NpzFile, key: str, length: int, source: str) -> tuple[int, ...]:
    if key not in archive.files:
        raise ModelFileError(f"{source}: missing '{key}' (format version 2 requires it for this layer)")
    value = archive[key]
    if value.shape != (length,) or value.dtype == bool or not np.issubdtype(value.dtype, np.integer):
        raise ModelFileError(f"{source}: '{key}' must be {length} integers, found {value.dtype} "
                             f"of shape {list(value.shape)}")
    return tuple(int(v) for v in value)


def _read_shape(archive: np.lib.npyio.NpzFile, k: int, source: str) -> LayerShape:
    """Layer ``k``'s shape from a version-2 file; a bad field raises naming it and its value."""
    kind = _scalar(archive, f"layer_kind_{k}", str, source)
    if kind not in ("dense", "conv2d"):
        raise ModelFileError(f"{source}: 'layer_kind_{k}' is {kind!r}; it must be one of 'dense', 'conv2d'")
    has_map = f"input_map_{k}" in archive.files
    input_map = None
    pool = None
    try:
        if has_map or kind == "conv2d":
            input_map = MapShape(*_array(archive, f"input_map_{k}", 3, source))
        size = _scalar(archive, f"pool_{k}", int, source) if f"pool_{k}" in archive.files else 1
        if size != 1:
            pool_kind = _enum(PoolKind, f"pool_kind_{k}", _scalar(archive, f"pool_kind_{k}", str, source), source)
            pool = Pooling(size, pool_kind)
        if kind == "dense":
            return Dense(int(archive["layer_sizes"][k + 1]), input_map, pool)
        assert input_map is not None
        kernel, stride, padding = (_array(archive, f"{key}_{k}", 2, source) for key in ("kernel", "stride", "padding"))
        return Conv2d(input_map, _scalar(archive, f"channels_{k}", int, source),
                      (kernel[0], kernel[1]), (stride[0], stride[1]), (padding[0], padding[1]), pool)
    except ModelFileError:
        raise
    except ValueError as error:
        raise ModelFileError(f"{source}: layer {k}: {error}") from None


def _shape_fields(shape: LayerShape) -> dict[str, Any]:
    """Layer shape keys of the file (without the ``_K`` suffix)."""
    fields: dict[str, Any] = {"layer_kind": shape.kind}
    if shape.input_map is not None:
        fields["input_map"] = shape.input_map.as_tuple()
    if shape.pool is not None:
        fields["pool"] = shape.pool.size
        fields["pool_kind"] = shape.pool.kind.value
    if isinstance(shape, Conv2d):
        fields.update(channels=shape.channels, kernel=shape.kernel, stride=shape.stride, padding=shape.padding)
    return fields


def _plain(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {value!r}")


def _smallest_int_dtype(array: np.ndarray) -> np.dtype:
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if array.size == 0 or (array.min() >= info.min and array.max() <= info.max):
            return np.dtype(dtype)
    return np.dtype(np.int64)


def save_model(model: Model, path: str | os.PathLike) -> None:
    """Write ``model``; the file appears whole or not at all (written aside, then renamed)."""
    p = model.params
    arrays: dict[str, Any] = {  # Any: NumPy's stubs read **arrays as its keyword options
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "layer_sizes": np.array(p.layer_sizes, np.int64),
        "time_steps": np.array(p.time_steps, np.int64),
        "kernel": np.array(p.kernel.value),
        "weight_bits": np.array(p.weight_bits, np.int64),
        "potential_bits": np.array(p.potential_bits, np.int64),
        "decision": np.array(p.decision.value),
        "encoding": np.array(model.encoding.kind),
        "encoding_x_max": np.array(model.encoding.x_max, np.float64),
        "provenance": np.array(json.dumps(model.provenance, sort_keys=True)),
    }
    for k, layer in enumerate(model.layers):
        for key, value in _shape_fields(p.layer_shape(k)).items():
            arrays[f"{key}_{k}"] = np.array(value, np.int64) if not isinstance(value, str) else np.array(value)
        for name, array in (("weights", layer.weights), ("thresholds", layer.thresholds),
                            ("initial_potentials", layer.initial_potentials)):
            arrays[f"{name}_{k}"] = array.astype(_smallest_int_dtype(array))
    write_atomically(path, lambda handle: np.savez_compressed(handle, **arrays))
