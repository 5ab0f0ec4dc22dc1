"""NIR (the Neuromorphic Intermediate Representation) in and out of FirstSpike's model file.

Import takes a chain ``Input -> (Affine | Linear) -> [I] -> IF -> ... -> Output`` as
snnTorch and Norse export it (a non-leaky ``LIF``, snnTorch's ``Leaky(beta=1)``, counts
as an ``IF``) and reads it the TTFS way (docs/nir.md):

* ``IF`` neurons are integrate-and-fire and fire **once**: the first crossing of
  ``v_threshold`` is the spike, later ones are ignored (``v_reset`` does not matter);
* a spike through ``Affine``/``Linear`` adds ``r * weight`` to the potential once
  (the ``step`` kernel); with an ``I`` node between them it adds to a current that the
  ``IF`` integrates every step (the ``ramp`` kernel). Time is discrete, ``dt = 1``;
* an ``Affine`` bias is a charge at ``t = 0``: the neuron's initial potential.

Each layer is quantized to ``weight_bits`` with its own scale; what rounding and
clipping did is in the :class:`ImportReport`. Export writes the same chain, plus the
model's parameters in the graph's metadata so that a round trip is exact.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, replace

import numpy as np

from .encoding import LatencyEncoding
from .errors import FirstSpikeError
from .files import write_atomically
from .model import Layer, Model
from .params import CoreParams, Kernel
from .topology import Conv2d, Dense, LayerShape, MapShape, Pooling, PoolKind

__all__ = ["NIRImportError", "ImportReport", "LayerReport", "import_nir", "export_nir", "read_nir",
           "write_nir"]

_METADATA_KEY = "firstspike"


class NIRImportError(FirstSpikeError, ValueError):
    """A NIR graph FirstSpike cannot run, with the node and the reason."""


def _nir():
    try:
        import nir
    except ImportError:
        raise FirstSpikeError("NIR support needs the package 'nir': pip install 'firstspike[nir]'") from None
    return nir


@dataclass(frozen=True)
class LayerReport:
    """What quantizing one layer did."""

    nodes: tuple[str, ...]
    scale: float                 # integer units per NIR unit
    weights_clipped: int
    thresholds_clipped: int
    biases_clipped: int
    weight_rms_error: float      # RMS rounding error relative to the largest weight

    def line(self) -> str:
        return (f"{' -> '.join(self.nodes)}: scale {self.scale:.4g}, rounding error "
                f"{100 * self.weight_rms_error:.2f} % RMS of the largest weight, clipped: "
                f"{self.weights_clipped} weights, {self.thresholds_clipped} thresholds, "
                f"{self.biases_clipped} biases")


@dataclass(frozen=True)
class ImportReport:
    kernel: Kernel
    layers: tuple[LayerReport, ...]
    exact: bool  # the graph was written by FirstSpike: integers restored, nothing rounded
    overrides: tuple[str, ...] = ()  # "time_steps 9 -> 5": parameters given that differ from the graph's

    def lines(self) -> list[str]:
        if self.exact:
            return ["FirstSpike graph: integers restored exactly"
                    + (f"; as given: {', '.join(self.overrides)}" if self.overrides else "")]
        return [f"kernel {self.kernel.value}", *(layer.line() for layer in self.layers)]


# -- import --------------------------------------------------------------------------

def _chain(graph) -> list[tuple[str, object]]:
    """The nodes from the one Input to the one Output, checking that it is a chain."""
    nir = _nir()
    inputs = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise NIRImportError(f"the graph must have exactly one Input node, it has {len(inputs)}")
    successors: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for source, target in graph.edges:
        if source not in graph.nodes or target not in graph.nodes:
            raise NIRImportError(f"edge {source!r} -> {target!r} names a node the graph does not have")
        successors[source].append(target)
    chain, name = [], inputs[0]
    while True:
        node = graph.nodes[name]
        chain.append((name, node))
        if isinstance(node, nir.Output):
            break
        after = successors[name]
        if len(after) != 1:
            raise NIRImportError(f"node {name!r} ({type(node).__name__}) has {len(after)} successors; "
                                 "FirstSpike runs feed-forward chains only")
        name = after[0]
        if any(name == seen for seen, _ in chain):
            raise NIRImportError(f"the graph has a cycle through node {name!r}; recurrent graphs are not supported")
    if len(chain) != len(graph.nodes):
        stray = sorted(set(graph.nodes) - {n for n, _ in chain})
        raise NIRImportError(f"nodes {stray} are not on the path from Input to Output")
    return chain


def _vector(node_name: str, field: str, value, size: int) -> np.ndarray:
    array = np.asarray(value, np.float64)
    if array.size == 1:
        array = np.full(size, float(array.reshape(-1)[0]))
    array = array.reshape(-1)
    if array.size != size:
        raise NIRImportError(f"node {node_name!r}: {field} has {array.size} values for {size} neurons")
    if not np.all(np.isfinite(array)):
        raise NIRImportError(f"node {node_name!r}: {field} has values that are not finite")
    return array


def _non_leaky_gain(name: str, node, size: int) -> np.ndarray:
    """A ``LIF`` that does not leak is an ``IF``: snnTorch writes ``Leaky(beta=1)`` as
    ``LIF(tau=inf, r=inf, v_leak=0)``, whose input gain ``r / tau * dt`` is 1."""
    with np.errstate(all="ignore"):
        tau = np.broadcast_to(np.asarray(node.tau, np.float64).reshape(-1), (size,))
        leak = np.broadcast_to(np.asarray(node.v_leak, np.float64).reshape(-1), (size,))
        r = np.broadcast_to(np.asarray(node.r, np.float64).reshape(-1), (size,))
    if not np.all(np.isinf(tau)) or np.any(leak != 0):
        finite = tau[np.isfinite(tau)]
        raise NIRImportError(
            f"node {name!r} (LIF) leaks (tau = {float(finite.min()) if finite.size else 'inf':g}, "
            "v_leak must be 0): FirstSpike's neurons are non-leaky integrate-and-fire; export with "
            "beta = 1 (snnTorch) or as IF")
    return np.where(np.isinf(r), 1.0, r)


def _pair_of(name: str, field: str, value, *, low: int) -> tuple[int, int]:
    if isinstance(value, str):
        raise NIRImportError(f"node {name!r}: {field} {value!r} is not supported; give it as numbers")
    array = np.asarray(value).reshape(-1)
    if array.size == 1:
        array = np.repeat(array, 2)
    if array.size != 2 or not np.all(array == np.round(array)) or np.any(array < low):
        raise NIRImportError(f"node {name!r}: {field} must be one or two integers >= {low}, not {value!r}")
    return int(array[0]), int(array[1])


def _per_channel(name: str, field: str, values: np.ndarray, shape: Conv2d) -> np.ndarray:
    """Per-neuron values of a conv layer's IF node to one per output channel (FirstSpike's form)."""
    grid = values.reshape(shape.channels, -1)
    if np.any(grid != grid[:, :1]):
        raise NIRImportError(f"node {name!r}: {field} differs between positions of one channel; FirstSpike "
                             "holds one per output channel, as a convolution's bias is")
    return grid[:, 0]


def _input_map(node) -> tuple[int, MapShape | None]:
    shape = np.asarray(node.input_type.get("input", next(iter(node.input_type.values()))), np.int64).reshape(-1)
    n_in = int(np.prod(shape)) if shape.size else 1
    if shape.size == 3:
        return n_in, MapShape(*(int(v) for v in shape))
    if shape.size == 2:
        return n_in, MapShape(1, int(shape[0]), int(shape[1]))
    return n_in, None


def _pooling(name: str, node, current: MapShape | None) -> tuple[Pooling, float]:
    """A pool node before a layer: sum pooling, and the factor its weights take (1/p² for average)."""
    nir = _nir()
    if current is None:
        raise NIRImportError(f"node {name!r} ({type(node).__name__}) pools a map, but its input is flat")
    kernel = _pair_of(name, "kernel_size", node.kernel_size, low=1)
    stride = _pair_of(name, "stride", node.stride, low=1)
    padding = _pair_of(name, "padding", node.padding, low=0)
    if kernel[0] != kernel[1] or stride != kernel or padding != (0, 0):
        raise NIRImportError(f"node {name!r}: FirstSpike pools square windows at a stride of their size, without "
                             f"padding; this one has kernel {kernel}, stride {stride}, padding {padding}")
    try:
        pool = Pooling(kernel[0], PoolKind.SUM)
        pool.output(current)
    except ValueError as error:
        raise NIRImportError(f"node {name!r}: {error}") from None
    return pool, 1.0 / kernel[0] ** 2 if isinstance(node, nir.AvgPool2d) else 1.0


def _synapse(name: str, node, current: MapShape | None, flat: bool, width: int, pool: Pooling | None,
             factor: float) -> tuple[np.ndarray, np.ndarray, LayerShape]:
    """``(weights in the file's layout, bias per neuron or channel, shape)`` of a weight node."""
    nir = _nir()
    weight = np.asarray(node.weight, np.float64)
    if not np.all(np.isfinite(weight)):
        raise NIRImportError(f"node {name!r}: weight has values that are not finite")
    if isinstance(node, nir.Conv2d):
        if current is None or flat:
            raise NIRImportError(f"node {name!r} (Conv2d) needs a 2-D map as input, not a flat vector")
        dilation = _pair_of(name, "dilation", node.dilation, low=1)
        if dilation != (1, 1):
            raise NIRImportError(f"node {name!r}: dilation {dilation} is not supported (only 1)")
        if int(node.groups) != 1:
            raise NIRImportError(f"node {name!r}: groups = {node.groups} is not supported (only 1)")
        if weight.ndim != 4:
            raise NIRImportError(f"node {name!r}: a Conv2d weight must be [K, C, kh, kw], not {list(weight.shape)}")
        seen = pool.output(current) if pool is not None else current
        if weight.shape[1] != seen.channels:
            raise NIRImportError(f"node {name!r}: weight takes {weight.shape[1]} channels, its input map "
                                 f"{list(seen.as_tuple())} has {seen.channels}")
        try:
            shape: LayerShape = Conv2d(current, weight.shape[0], (weight.shape[2], weight.shape[3]),
                                       _pair_of(name, "stride", node.stride, low=1),
                                       _pair_of(name, "padding", node.padding, low=0), pool)
        except ValueError as error:
            raise NIRImportError(f"node {name!r}: {error}") from None
        bias = _vector(name, "bias", node.bias, weight.shape[0])
        return weight.transpose(1, 2, 3, 0) * factor, bias, shape
    if current is not None and not flat and (current.height > 1 or current.width > 1):
        raise NIRImportError(f"node {name!r} ({type(node).__name__}) follows a 2-D map "
                             f"{list(current.as_tuple())} without a Flatten node")
    seen_width = pool.output(current).size if pool is not None and current is not None else width
    if weight.ndim != 2 or weight.shape[1] != seen_width:
        raise NIRImportError(f"node {name!r}: weight shape {weight.shape} does not take "
                             f"{seen_width} inputs (expected [n_out, {seen_width}])")
    n_out = weight.shape[0]
    bias = _vector(name, "bias", node.bias, n_out) if isinstance(node, nir.Affine) else np.zeros(n_out)
    return weight.T * factor, bias, Dense(n_out, current if pool is not None else None, pool)


def _layers(chain) -> tuple[int, MapShape | None, list[dict], Kernel]:
    """Float layers ``{weights, thresholds, biases, nodes, shape}`` from the chain (weights in
    the file's layout: ``[n_in, n_out]`` or ``[C, kh, kw, K]``)."""
    nir = _nir()
    n_in, current = _input_map(chain[0][1])
    input_map = current
    width, layers, kernels = n_in, [], set()
    pool: Pooling | None = None
    factor, flat, position = 1.0, False, 1
    pool_nodes: list[str] = []
    while position < len(chain) - 1:
        name, node = chain[position]
        if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
            if pool is not None:
                raise NIRImportError(f"node {name!r}: two pooling nodes in a row are not supported")
            pool, factor = _pooling(name, node, current)
            pool_nodes.append(name)
            position += 1
            continue
        if isinstance(node, nir.Flatten):
            flat = True
            pool_nodes.append(name)
            position += 1
            continue
        if isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d)):
            weights, bias, shape = _synapse(name, node, current, flat, width, pool, factor)
            n_out = shape.n_outputs()
            nodes, gain = [*pool_nodes, name], np.ones(n_out)
            position += 1
            name, node = chain[position]
            kernel = Kernel.STEP
            if isinstance(node, nir.I):
                kernel = Kernel.RAMP
                gain = gain * _vector(name, "r", node.r, n_out)
                nodes.append(name)
                position += 1
                name, node = chain[position]
            if isinstance(node, nir.LIF):
                gain = gain * _non_leaky_gain(name, node, n_out)
            elif isinstance(node, nir.IF):
                gain = gain * _vector(name, "r", node.r, n_out)
            else:
                raise NIRImportError(
                    f"node {name!r} ({type(node).__name__}) is not supported after {nodes[-1]!r}: FirstSpike "
                    "runs Input -> [pool] [Flatten] (Affine|Linear|Conv2d) -> [I] -> IF -> ... -> Output chains "
                    "of non-leaky integrate-and-fire neurons")
            nodes.append(name)
            kernels.add(kernel)
            thresholds = _vector(name, "v_threshold", node.v_threshold, n_out)
            if isinstance(shape, Conv2d):
                gain = _per_channel(name, "the input gain r", gain, shape)
                thresholds = _per_channel(name, "v_threshold", thresholds, shape)
                weights = weights * gain
            else:
                weights = weights * gain[None, :]
            layers.append({"weights": weights, "biases": bias, "thresholds": thresholds,
                           "nodes": tuple(nodes), "shape": shape})
            width, current = n_out, shape.output_map
            pool, factor, flat, pool_nodes = None, 1.0, False, []
            position += 1
            continue
        raise NIRImportError(
            f"node {name!r} ({type(node).__name__}) is not supported: FirstSpike runs Input -> [pool] [Flatten] "
            "(Affine|Linear|Conv2d) -> [I] -> IF -> ... -> Output chains of non-leaky integrate-and-fire neurons "
            "(max pooling, dilation, groups and leaky neurons are not)")
    if not layers:
        raise NIRImportError("the graph has no Affine/Linear -> IF layer")
    if pool is not None or pool_nodes:
        raise NIRImportError(f"nodes {pool_nodes} come after the last layer; FirstSpike decides on its neurons")
    if len(kernels) > 1:
        raise NIRImportError("every layer must use the same synapse: either all with an I node (ramp) "
                             "or none (step)")
    return n_in, input_map, layers, kernels.pop()


def _quantize(layer: dict, params: CoreParams, clip_percentile: float) -> tuple[Layer, LayerReport]:
    w_low, w_high = params.weight_range
    p_low, p_high = params.potential_range
    weights = layer["weights"]
    if weights.size and not np.any(weights):
        raise NIRImportError(f"{' -> '.join(layer['nodes'])}: every weight is 0, so no spike can reach "
                             "its neurons")
    magnitude = np.abs(weights)
    top = float(np.percentile(magnitude, clip_percentile)) if magnitude.size else 0.0
    if top <= 0:
        top = float(magnitude.max(initial=0.0)) or 1.0
    scale = w_high / top
    w_real = weights * scale
    w = np.round(w_real)
    weights_clipped = int(np.sum((w < w_low) | (w > w_high)))
    w = np.clip(w, w_low, w_high)
    rms = float(np.sqrt(np.mean((w - w_real) ** 2)) / w_high) if w.size else 0.0

    def clip(values: np.ndarray) -> tuple[np.ndarray, int]:
        rounded = np.round(values * scale)
        return np.clip(rounded, p_low, p_high).astype(np.int64), int(np.sum((rounded < p_low) | (rounded > p_high)))

    thresholds, thresholds_clipped = clip(layer["thresholds"])
    biases, biases_clipped = clip(layer["biases"])
    return (Layer(w.astype(np.int64), thresholds, biases),
            LayerReport(layer["nodes"], scale, weights_clipped, thresholds_clipped, biases_clipped, rms))


def _sizes(n_in: int, layers: list[dict]) -> tuple[int, ...]:
    return (n_in, *(layer["shape"].n_outputs() for layer in layers))


def _restore(graph, n_in: int, layers: list[dict], kernel: Kernel) -> Model | None:
    """A FirstSpike-written graph: its integers and parameters back, or None."""
    raw = (graph.metadata or {}).get(_METADATA_KEY)
    if raw is None:
        return None
    try:
        saved = json.loads(raw)
        params = CoreParams(tuple(saved["layer_sizes"]), int(saved["time_steps"]), Kernel(saved["kernel"]),
                            int(saved["weight_bits"]), int(saved["potential_bits"]),
                            shapes=tuple(layer["shape"] for layer in layers))
        encoding = LatencyEncoding(float(saved["encoding_x_max"]))
    except (ValueError, KeyError, TypeError) as error:
        raise NIRImportError(f"the graph's FirstSpike metadata is damaged ({error})") from None
    if params.layer_sizes != _sizes(n_in, layers) or params.kernel is not kernel:
        raise NIRImportError("the graph's FirstSpike metadata does not match its nodes")
    restored = []
    for layer in layers:
        parts = [layer["weights"], layer["thresholds"], layer["biases"]]
        if any(not np.array_equal(p, np.round(p)) for p in parts):
            return None
        restored.append(Layer(*(np.round(p).astype(np.int64) for p in parts)))
    return Model(params, tuple(restored), encoding, saved.get("provenance", {}))


IMPORT_DEFAULTS = {"time_steps": 16, "weight_bits": 8, "potential_bits": 16}


def _override(model: Model, given: dict) -> tuple[Model, tuple[str, ...]]:
    """``model`` with the parameters the user gave (``None`` = keep the graph's)."""
    p = model.params
    changes = {name: value for name, value in given.items()
               if value is not None and value != (model.encoding.x_max if name == "x_max" else getattr(p, name))}
    if not changes:
        return model, ()
    said = tuple(f"{name} {model.encoding.x_max if name == 'x_max' else getattr(p, name)} -> {value}"
                 for name, value in changes.items())
    encoding = LatencyEncoding(float(changes.pop("x_max", model.encoding.x_max)), model.encoding.kind)
    try:
        return Model(replace(p, **changes), model.layers, encoding, model.provenance), said
    except ValueError as error:
        raise NIRImportError(f"{', '.join(said)}: {error}") from None


def import_nir(graph, *, time_steps: int | None = None, x_max: float | None = None,
               weight_bits: int | None = None, potential_bits: int | None = None,
               clip_percentile: float = 100.0, provenance: dict | None = None) -> tuple[Model, ImportReport]:
    """A FirstSpike model from a NIR graph (an object, or a path to read).

    ``time_steps``, ``x_max`` (the encoding) and the bit widths are not in a NIR graph:
    ``x_max`` must be given, the others default to :data:`IMPORT_DEFAULTS`. A graph
    FirstSpike wrote carries them and comes back exactly; values given here replace
    the graph's (and say so in the report). ``clip_percentile`` below 100 clips each
    layer's largest weights to spend the integer range on the rest.
    """
    if isinstance(graph, (str, os.PathLike)):
        graph = read_nir(graph)
    if not 0 < clip_percentile <= 100:
        raise NIRImportError(f"clip_percentile must be in (0, 100], not {clip_percentile!r}")
    n_in, _, layers, kernel = _layers(_chain(graph))
    restored = _restore(graph, n_in, layers, kernel)
    if restored is not None:
        model, said = _override(restored, {"time_steps": time_steps, "weight_bits": weight_bits,
                                           "potential_bits": potential_bits, "x_max": x_max})
        return model, ImportReport(kernel, (), exact=True, overrides=said)
    if x_max is None:
        raise NIRImportError("this graph was not written by FirstSpike, so it does not carry the input "
                             "encoding's brightest value: give x_max (--x-max, or --dataset to take it "
                             "from a data set)")
    given = {"time_steps": time_steps, "weight_bits": weight_bits, "potential_bits": potential_bits}
    time_steps, weight_bits, potential_bits = (IMPORT_DEFAULTS[k] if v is None else v for k, v in given.items())
    try:
        params = CoreParams(_sizes(n_in, layers), time_steps, kernel, weight_bits, potential_bits,
                            shapes=tuple(layer["shape"] for layer in layers))
    except ValueError as error:
        raise NIRImportError(str(error)) from None
    quantized = [_quantize(layer, params, clip_percentile) for layer in layers]
    model = Model(params, tuple(q[0] for q in quantized), LatencyEncoding(x_max),
                  {"imported_from": "nir", **(provenance or {})})
    return model, ImportReport(kernel, tuple(q[1] for q in quantized), exact=False)


def read_nir(path: str | os.PathLike):
    nir = _nir()
    try:
        return nir.read(path, type_check=False)
    except FileNotFoundError:
        raise FirstSpikeError(f"{path}: no such file") from None
    except Exception as error:  # h5py and NIR raise many kinds for a file that is not NIR
        raise NIRImportError(f"{path}: not a NIR graph ({type(error).__name__}: {error})") from None


# -- export --------------------------------------------------------------------------

def export_nir(model: Model):
    """The model as a NIR graph (``float`` copies of its integers, units of one weight step).

    Sum pooling becomes a ``SumPool2d`` node before the layer that reads through it, a
    dense layer after a map a ``Flatten`` before its ``Affine``. Max pooling has no NIR
    node: such a model is refused, naming the layer."""
    nir = _nir()
    p = model.params
    first = p.layer_shape(0).input_map
    input_shape = first.as_tuple() if first is not None else (p.n_inputs,)
    nodes = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    edges, previous = [], "input"
    current: MapShape | None = first
    for k, layer in enumerate(model.layers):
        shape = p.layer_shape(k)
        chain: list[tuple[str, object]] = []
        if shape.pool is not None:
            if shape.pool.kind is PoolKind.MAX:
                raise FirstSpikeError(f"layer {k} reads its input through max pooling, which NIR has no node "
                                      "for (NIR pools by sum or average)")
            size = np.array([shape.pool.size] * 2)
            chain.append((f"pool{k}", nir.SumPool2d(kernel_size=size, stride=size, padding=np.zeros(2, np.int64))))
        n_out = shape.n_outputs()
        if isinstance(shape, Conv2d):
            if shape.kernel[0] != shape.kernel[1]:
                raise FirstSpikeError(f"layer {k}'s kernel is {shape.kernel[0]}x{shape.kernel[1]}: NIR {nir.version} "
                                      "works out conv shapes for square kernels only")
            seen = shape.seen_map()
            per_neuron = shape.output_map.height * shape.output_map.width
            chain.append((f"conv{k}", nir.Conv2d(
                input_shape=(seen.height, seen.width), weight=layer.weights.transpose(3, 0, 1, 2).astype(np.float64),
                stride=shape.stride, padding=shape.padding, dilation=(1, 1), groups=1,
                bias=layer.initial_potentials.astype(np.float64))))
            thresholds = np.repeat(layer.thresholds, per_neuron).astype(np.float64)
            neurons: tuple[int, ...] = shape.output_map.as_tuple()
        else:
            if current is not None and k > 0:
                seen_map = shape.seen_map() or current
                chain.append((f"flatten{k}", nir.Flatten(input_type={"input": np.array(seen_map.as_tuple())},
                                                         start_dim=0, end_dim=-1)))
            chain.append((f"affine{k}", nir.Affine(weight=layer.weights.T.astype(np.float64),
                                                   bias=layer.initial_potentials.astype(np.float64))))
            thresholds = layer.thresholds.astype(np.float64)
            neurons = (n_out,)
        if p.kernel is Kernel.RAMP:
            chain.append((f"current{k}", nir.I(r=np.ones(neurons))))
        chain.append((f"if{k}", nir.IF(r=np.ones(neurons), v_threshold=thresholds.reshape(neurons),
                                       v_reset=np.zeros(neurons))))
        for name, node in chain:
            nodes[name] = node
            edges.append((previous, name))
            previous = name
        current = shape.output_map
    nodes["output"] = nir.Output(output_type={"output": np.array([p.n_outputs])})
    edges.append((previous, "output"))
    metadata = {_METADATA_KEY: json.dumps({
        "layer_sizes": list(p.layer_sizes), "time_steps": p.time_steps, "kernel": p.kernel.value,
        "weight_bits": p.weight_bits, "potential_bits": p.potential_bits, "decision": p.decision.value,
        "encoding_x_max": model.encoding.x_max, "provenance": model.provenance})}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(model: Model, path: str | os.PathLike) -> None:
    """Write :func:`export_nir`'s graph to ``path`` (HDF5), atomically.

    The HDF5 image is made in memory first: HDF5 itself then never meets a full disk
    (where it crashes), and the file appears whole or not at all."""
    nir = _nir()
    image = io.BytesIO()
    nir.write(image, export_nir(model))
    write_atomically(path, lambda handle: handle.write(image.getvalue()))
