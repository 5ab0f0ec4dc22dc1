"""The core's parameters: one frozen dataclass read by the golden model, the gateware
and the host driver alike.

Every size the hardware has follows from :class:`CoreParams`; every check of a size
lives here, so the message a user sees is the same wherever the value came from.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from .errors import NotOnTheCore
from .topology import Conv2d, Dense, LayerShape, PoolKind

__all__ = ["Kernel", "DecisionRule", "Schedule", "CoreParams", "LIMITS"]


class Kernel(enum.Enum):
    """Synaptic kernel: how an input spike moves a neuron's potential over time.

    ``STEP``: a spike adds its weight to the potential once (``V(t) = b + sum w``).
    ``RAMP``: a spike adds its weight to a current that is integrated every step.
    """

    STEP = "step"
    RAMP = "ramp"


class DecisionRule(enum.Enum):
    """How the output layer's spikes become a class (see docs/arithmetic.md)."""

    FIRST_SPIKE = "first-spike"


class Schedule(enum.Enum):
    """The order in which the core does an inference's work (docs/cycles.md).

    ``LAYERED``: each layer over all ``T`` steps, then the next; the result after the
    last. ``STEPPED``: all layers advance together step by step, and the core stops at
    the end of the first step at which an output fires (the decision is final then):
    hidden spikes after that step are never computed and the remaining input events are
    dropped. Both give the same class, fired flag and output spikes at the decision step.
    """

    LAYERED = "layered"
    STEPPED = "stepped"


# Allowed ranges, inclusive. The hardware issue may widen them; the messages follow.
LIMITS = {
    "layer size": (1, 65535),
    "time_steps": (1, 4096),
    "weight_bits": (2, 16),
    "potential_bits": (3, 32),
    "lanes": (1, 256),
}


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer between {low} and {high}, not {value!r}")


@dataclass(frozen=True)
class CoreParams:
    """Sizes and number formats of a TTFS network and the core that runs it.

    Parameters
    ----------
    layer_sizes:
        ``(n_in, n_1, ..., n_out)``: input neurons, then each layer's neurons.
    time_steps:
        ``T``: the discrete steps ``t = 0 ... T-1`` of one inference.
    kernel:
        The synaptic kernel, :class:`Kernel`.
    weight_bits:
        Width of a signed two's-complement weight.
    potential_bits:
        Width of a signed potential (and, for ``RAMP``, current); also the width of
        thresholds and initial potentials. Saturates, see :func:`firstspike.sw.arith.saturate`.
    lanes:
        ``P``: neurons the hardware updates in parallel. Does not change what is
        computed, only how many cycles it takes.
    decision:
        The output rule, :class:`DecisionRule`.
    schedule:
        How the core orders the work, :class:`Schedule`. Like ``lanes``, a property of
        the core, not of the network: it changes cycles and what is reported after the
        decision, never the decision.
    shapes:
        Per layer, :class:`~firstspike.sw.topology.Dense` or
        :class:`~firstspike.sw.topology.Conv2d` (with any pooling of its input);
        empty means every layer is dense. Their sizes must be ``layer_sizes``.
    """

    layer_sizes: tuple[int, ...]
    time_steps: int
    kernel: Kernel = Kernel.STEP
    weight_bits: int = 8
    potential_bits: int = 16
    lanes: int = 1
    decision: DecisionRule = DecisionRule.FIRST_SPIKE
    schedule: Schedule = Schedule.LAYERED
    shapes: tuple[LayerShape, ...] = ()

    def __post_init__(self) -> None:
        sizes = self.layer_sizes
        if not isinstance(sizes, tuple) or len(sizes) < 2:
            raise ValueError(
                "layer_sizes must be a tuple of at least two sizes (inputs, outputs), "
                f"not {sizes!r}"
            )
        for position, size in enumerate(sizes):
            _check_int(f"layer_sizes[{position}]", size, *LIMITS["layer size"])
        _check_int("time_steps", self.time_steps, *LIMITS["time_steps"])
        if not isinstance(self.kernel, Kernel):
            raise ValueError(f"kernel must be one of {[k.value for k in Kernel]}, not {self.kernel!r}")
        if not isinstance(self.decision, DecisionRule):
            raise ValueError(
                f"decision must be one of {[d.value for d in DecisionRule]}, not {self.decision!r}"
            )
        if not isinstance(self.schedule, Schedule):
            raise ValueError(f"schedule must be one of {[s.value for s in Schedule]}, not {self.schedule!r}")
        _check_int("weight_bits", self.weight_bits, *LIMITS["weight_bits"])
        low, high = LIMITS["potential_bits"]
        _check_int("potential_bits", self.potential_bits, max(low, self.weight_bits + 1), high)
        _check_int("lanes", self.lanes, *LIMITS["lanes"])
        self._check_shapes()

    def _check_shapes(self) -> None:
        shapes = self.shapes
        if not isinstance(shapes, tuple) or not all(isinstance(s, (Dense, Conv2d)) for s in shapes):
            raise ValueError(f"shapes must be a tuple of Dense and Conv2d layer shapes, not {shapes!r}")
        if all(isinstance(s, Dense) and s.input_map is None and s.pool is None for s in shapes):
            object.__setattr__(self, "shapes", ())  # the plain form: one value per network
            return
        if len(shapes) != self.n_layers:
            raise ValueError(f"shapes has {len(shapes)} layers but layer_sizes {list(self.layer_sizes)} "
                             f"has {self.n_layers}")
        before = None
        for k, shape in enumerate(shapes):
            if shape.input_map is not None:
                if shape.input_map.size != self.layer_sizes[k]:
                    raise ValueError(f"layer {k}'s input map {list(shape.input_map.as_tuple())} holds "
                                     f"{shape.input_map.size} neurons, but layer_sizes[{k}] is {self.layer_sizes[k]}")
                if before is not None and shape.input_map != before:
                    raise ValueError(f"layer {k}'s input map {list(shape.input_map.as_tuple())} is not the map "
                                     f"layer {k - 1} makes, {list(before.as_tuple())}")
            if shape.n_outputs() != self.layer_sizes[k + 1]:
                raise ValueError(f"layer {k} ({shape.kind}) makes {shape.n_outputs()} neurons, but "
                                 f"layer_sizes[{k + 1}] is {self.layer_sizes[k + 1]}")
            before = shape.output_map

    # -- derived sizes -------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        """Number of weight layers (the input neurons are not a layer)."""
        return len(self.layer_sizes) - 1

    @property
    def n_inputs(self) -> int:
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.layer_sizes[-1]

    @property
    def weight_range(self) -> tuple[int, int]:
        """Smallest and largest weight, inclusive."""
        return -(1 << (self.weight_bits - 1)), (1 << (self.weight_bits - 1)) - 1

    @property
    def potential_range(self) -> tuple[int, int]:
        """Smallest and largest potential (and current, threshold, initial potential)."""
        return -(1 << (self.potential_bits - 1)), (1 << (self.potential_bits - 1)) - 1

    @property
    def time_bits(self) -> int:
        """Bits that hold a spike time ``0 ... T-1``."""
        return max(1, math.ceil(math.log2(self.time_steps)))

    def positions(self, layer: int) -> int:
        """Output positions of ``layer``: ``Ho·Wo`` for conv2d, 1 for dense."""
        shape = self.layer_shape(layer)
        return shape.output_map.height * shape.output_map.width if isinstance(shape, Conv2d) else 1

    def channels(self, layer: int) -> int:
        """Neurons of ``layer`` at one position: its output channels (conv2d) or all of them."""
        shape = self.layer_shape(layer)
        return shape.channels if isinstance(shape, Conv2d) else self.layer_sizes[layer + 1]

    def folds(self, layer: int, lanes: int | None = None) -> int:
        """Folds of ``P`` lanes over one position's neurons of ``layer`` (0-based): the
        cycles of one pass (a dense layer's every neuron, a convolution's channels)."""
        p = self.lanes if lanes is None else lanes
        _check_int("lanes", p, *LIMITS["lanes"])
        return -(-self.channels(layer) // p)

    def layer_shape(self, layer: int) -> LayerShape:
        """The shape of ``layer`` (0-based): a plain :class:`~firstspike.sw.topology.Dense` where none is given."""
        return self.shapes[layer] if self.shapes else Dense(self.layer_sizes[layer + 1])

    @property
    def fully_connected(self) -> bool:
        """Every layer dense, without pooling: the networks the gateware runs so far."""
        return all(isinstance(s, Dense) and s.pool is None for s in self.shapes)

    def require_fully_connected(self, what: str) -> None:
        """Raise :class:`~firstspike.sw.errors.NotOnTheCore` unless :attr:`fully_connected`."""
        if not self.fully_connected:
            kinds = sorted({s.kind if s.pool is None else f"{s.pool.kind.value}-pooled {s.kind}" for s in self.shapes
                            if not (isinstance(s, Dense) and s.pool is None)})
            raise NotOnTheCore(f"{what} runs dense layers only so far, and this network has {', '.join(kinds)} "
                               "layers; the golden model runs it (--backend golden)")

    def require_on_the_core(self, what: str) -> None:
        """Raise :class:`~firstspike.sw.errors.NotOnTheCore` unless the gateware runs this
        network: dense layers, and conv layers (with sum pooling of a conv layer's map before
        a conv or dense layer) on the stepped schedule, a dense output layer."""
        if self.fully_connected:
            return
        problems = []
        if not self.stepped:
            problems.append("the layered schedule runs dense layers only (use the stepped schedule)")
        for k, shape in enumerate(self.shapes):
            after_conv = k > 0 and isinstance(self.shapes[k - 1], Conv2d)
            if shape.pool is not None and shape.pool.kind is PoolKind.MAX:
                problems.append(f"layer {k + 1} reads its input through max pooling, which only the golden model runs")
            elif shape.pool is not None and not after_conv:
                problems.append(f"layer {k + 1} pools {'the input map' if k == 0 else 'a dense layer'}; "
                                "the core pools conv layers' maps only")
            if isinstance(shape, Conv2d) and k > 0 and not after_conv:
                problems.append(f"layer {k + 1} is a convolution after a dense layer")
        if isinstance(self.shapes[-1], Conv2d):
            problems.append("the output layer is a convolution; the core decides on a dense output layer")
        if problems:
            raise NotOnTheCore(f"{what} cannot run this network: {'; '.join(problems)}; "
                               "the golden model runs it (--backend golden)")

    def with_lanes(self, lanes: int) -> CoreParams:
        return replace(self, lanes=lanes)

    def with_schedule(self, schedule: Schedule) -> CoreParams:
        return replace(self, schedule=schedule)

    @property
    def stepped(self) -> bool:
        return self.schedule is Schedule.STEPPED
