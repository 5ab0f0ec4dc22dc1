"""What a conv layer's run at a step needs besides the sequencer's states (docs/cycles.md):
a kernel-offset unit per conv layer, which turns the held event into passes (a row of
weights added at one position, ``F`` folds over the output channels), and the one list of
the positions those adds touched, which the end of the step then checks.

The adds of one step reach a position in any order, so the list holds each position once;
the checks take it back. One list serves every conv layer: a layer's run leaves it empty
and its marks clear (the sweep of every position at ``t = 0`` clears them as it goes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from amaranth import Module, Signal

from firstspike.sw.layout import MemoryLayout
from firstspike.sw.params import CoreParams
from firstspike.sw.topology import Conv2d

from ..offsets import KernelOffsets
from ..touched import TouchedPositions
from ..unravel import times

if TYPE_CHECKING:  # (stepped.py builds these)
    from .stepped import SteppedSource

__all__ = ["ConvPasses", "conv_passes", "check_row"]


@dataclass(frozen=True)
class ConvPasses:
    """The conv layers' units and the pass on offer for the layer being run."""

    feed: Signal        # in: offer the held event to the layer's kernel-offset unit
    fed: Signal         # out: the unit takes it this cycle
    offered: Signal     # out: a pass is on offer
    done: Signal        # in: its last fold is issued
    weight_row: Signal  # out: the offered pass's first weight row
    state_row: Signal   # out: its first row of neuron state
    position: Signal    # out: its position
    positions: Signal   # out: the layer's positions
    touched: TouchedPositions


def conv_passes(m: Module, params: CoreParams, layout: MemoryLayout, *, layer: Signal,
                source: SteppedSource) -> ConvPasses:
    convs = [k for k in range(params.n_layers) if isinstance(params.layer_shape(k), Conv2d)]
    most = max(params.positions(k) for k in convs)
    m.submodules.touched = touched = TouchedPositions(most)
    out = ConvPasses(feed=Signal(), fed=Signal(), offered=Signal(), done=Signal(),
                     weight_row=Signal(range(max(2, layout.weight_rows))),
                     state_row=Signal(range(max(2, layout.state_rows))),
                     position=Signal(range(max(2, most))), positions=Signal(range(most + 1)), touched=touched)
    with m.Switch(layer):
        for k in convs:
            shape = params.layer_shape(k)
            assert isinstance(shape, Conv2d)
            m.submodules[f"offsets_{k}"] = unit = KernelOffsets(shape)
            folds = layout.folds[k]
            event, offer = unit.events.payload, unit.passes.payload
            m.d.comb += [event.channel.eq(source.channel), event.y.eq(source.y), event.x.eq(source.x)]
            with m.Case(k):
                m.d.comb += [
                    unit.events.valid.eq(out.feed),
                    out.fed.eq(unit.events.valid & unit.events.ready),
                    out.offered.eq(unit.passes.valid),
                    unit.passes.ready.eq(out.done),
                    out.weight_row.eq(layout.weight_base[k] + times(offer.slot, folds)),
                    out.state_row.eq(layout.state_base[k] + times(offer.position, folds)),
                    out.position.eq(offer.position),
                    out.positions.eq(params.positions(k)),
                ]
    return out


def check_row(m: Module, params: CoreParams, layout: MemoryLayout, layer: Signal, position) -> Signal:
    """The first row of neuron state of ``position`` of the conv layer being run."""
    row = Signal(range(max(2, layout.state_rows)))
    with m.Switch(layer):
        for k in range(params.n_layers):
            if isinstance(params.layer_shape(k), Conv2d):
                with m.Case(k):
                    m.d.comb += row.eq(layout.state_base[k] + times(position, layout.folds[k]))
    return row
