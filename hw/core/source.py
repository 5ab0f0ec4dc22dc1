"""The event source: the next input event of the layer being run, held in a register.

Layer 0 reads the core's input stream, later layers the spike queue (or table) the
previous layer filled. The register also works out the event's first weight row, so
neither the queue's lane search nor the row multiply sits in front of the memory address;
a second register behind it takes the next event while the first is used, so the
upstream's take does not wait on the sequencer's decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, Mux, Signal, Value

from firstspike.sw.layout import MemoryLayout
from firstspike.sw.params import CoreParams

__all__ = ["Source", "event_source"]


@dataclass(frozen=True)
class Source:
    """What the sequencer sees of the held event, and what it drives back."""

    valid: Signal    # a spike event is held
    end: Signal      # the end of this layer's events: layer 0's end marker, or the queue ran dry
    index: Signal
    step: Signal
    row: Signal      # the event's first weight row
    bad: Signal      # (layer 0) out of range or out of time order: to be dropped
    held: Signal
    # Driven by the sequencer:
    take: Signal     # the held event is used (or dropped)
    end_take: Signal  # the held end marker is used
    capture: Signal  # the register may fill


def event_source(m: Module, params: CoreParams, layout: MemoryLayout, *, layer: Signal, events, queue,
                 pending_step: Signal) -> Source:
    """Build the source for ``layer``; ``events`` is the core's input stream, ``queue`` the
    spike queue, ``pending_step`` the step whose end is pending (to check time order)."""
    p, n_layers = params.lanes, params.n_layers
    in_valid, in_end = Signal(), Signal()
    in_index = Signal(range(max(max(params.layer_sizes[:-1]), max(layout.folds) * p) + 1))
    in_step = Signal(params.time_bits)
    in_row = Signal(range(max(2, layout.weight_rows)))
    in_take = Signal()
    with m.If(layer == 0):
        event = events.payload
        m.d.comb += [
            in_valid.eq(events.valid), in_end.eq(event.end),
            in_index.eq(event.index), in_step.eq(event.step),
            events.ready.eq(in_take),
        ]
    with m.Else():
        m.d.comb += [
            in_valid.eq(queue.valid), in_index.eq(queue.index), in_step.eq(queue.step),
            queue.take.eq(in_take),
        ]
    with m.Switch(layer):
        for k in range(n_layers):
            with m.Case(k):
                m.d.comb += in_row.eq(layout.weight_base[k] + in_index * layout.folds[k])

    # Two registers: the held event (A, what the sequencer sees) and the next one (B), so
    # the upstream's take depends on registers only, not on the sequencer's decision
    # (that chain, through the queue's lane search, was the iCE40's longest path).
    held, held_end = Signal(), Signal()
    next_held, next_end = Signal(), Signal()
    next_index, next_step, next_row = Signal.like(in_index), Signal.like(in_step), Signal.like(in_row)
    source = Source(valid=Signal(), end=Signal(), index=Signal.like(in_index), step=Signal.like(in_step),
                    row=Signal.like(in_row), bad=Signal(), held=held, take=Signal(), end_take=Signal(),
                    capture=Signal())
    m.d.comb += [
        source.valid.eq(held & ~held_end),
        source.end.eq(Mux(layer == 0, held & held_end, ~held & queue.exhausted)),
        # Not past an end marker: what follows belongs to the next inference.
        in_take.eq(source.capture & in_valid & ~next_held & ~(held & held_end)),
    ]
    ends = in_end & (layer == 0)
    frees = ~held | source.take | source.end_take
    with m.If(frees):
        with m.If(next_held):
            m.d.sync += [held.eq(1), held_end.eq(next_end), source.index.eq(next_index),
                         source.step.eq(next_step), source.row.eq(next_row), next_held.eq(0)]
        with m.Elif(in_take):
            m.d.sync += [held.eq(1), held_end.eq(ends), source.index.eq(in_index),
                         source.step.eq(in_step), source.row.eq(in_row)]
        with m.Else():
            m.d.sync += held.eq(0)
    with m.Elif(in_take):
        m.d.sync += [next_held.eq(1), next_end.eq(ends), next_index.eq(in_index), next_step.eq(in_step),
                     next_row.eq(in_row)]
    m.d.comb += source.bad.eq(_bad_event(params, events, source.index, source.step, pending_step))
    return source


def _bad_event(params: CoreParams, events, index, event_step, step) -> Value:
    """An input event the core must not process: out of range or out of time order.
    (Range checks that the field width already guarantees are left out.)"""
    bad = event_step < step
    if params.n_inputs < 1 << len(events.payload.index):
        bad |= index >= params.n_inputs
    if params.time_steps < 1 << len(events.payload.step):
        bad |= event_step > params.time_steps - 1
    return bad
