"""The event source: the next input event of the layer being run, held in a register.

Layer 0 reads the core's input stream, later layers the spike queue (or table) the
previous layer filled. The register also works out the event's first weight row, so
neither the queue's lane search nor the row multiply sits in front of the memory address;
a second register behind it takes the next event while the first is used, so the
upstream's take does not wait on the sequencer's decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Const, Module, Mux, Signal, Value

from firstspike.sw.layout import MemoryLayout
from firstspike.sw.params import CoreParams

__all__ = ["EventSource", "Source", "event_source"]


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


@dataclass(frozen=True)
class EventSource(Source):
    """:class:`Source` plus the held event's step against the pending step, in registers
    (see :func:`step_relations`), for the layered sequencer."""

    same: Signal     # step == pending step
    behind: Signal   # step < pending step
    next_up: Signal  # step == pending step + 1
    # Driven by the sequencer, the only changes of the pending step:
    step_zero: Signal      # it becomes 0
    step_to_event: Signal  # it becomes the held event's step
    step_up: Signal        # it becomes one more


def event_source(m: Module, params: CoreParams, layout: MemoryLayout, *, layer: Signal, events, queue,
                 pending_step: Signal) -> EventSource:
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
    source = EventSource(valid=Signal(name="source_valid"), end=Signal(name="source_end"),
                         index=Signal.like(in_index, name="source_index"),
                         step=Signal.like(in_step, name="source_step"), row=Signal.like(in_row, name="source_row"),
                         bad=Signal(name="source_bad"), held=held, take=Signal(name="source_take"),
                         end_take=Signal(name="source_end_take"), capture=Signal(name="source_capture"),
                         same=Signal(init=1, name="source_same"), behind=Signal(name="source_behind"),
                         next_up=Signal(name="source_next_up"), step_zero=Signal(name="source_step_zero"),
                         step_to_event=Signal(name="source_step_to_event"), step_up=Signal(name="source_step_up"))
    m.d.comb += [
        source.valid.eq(held & ~held_end),
        source.end.eq(Mux(layer == 0, held & held_end, ~held & queue.exhausted)),
        # Not past an end marker: what follows belongs to the next inference.
        in_take.eq(source.capture & in_valid & ~next_held & ~(held & held_end)),
    ]
    ends = in_end & (layer == 0)
    frees = ~held | source.take | source.end_take
    loads_next, loads_in = Signal(), Signal()
    m.d.comb += [loads_next.eq(frees & next_held), loads_in.eq(frees & ~next_held & in_take)]
    step_relations(m, source, pending_step, next_step=next_step, in_step=in_step,
                   loads_next=loads_next, loads_in=loads_in)
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
    m.d.comb += source.bad.eq(_bad_event(params, events, source.index, source.step, source.behind))
    return source


def step_relations(m: Module, source: EventSource, step: Signal, *, next_step: Value, in_step: Value,
                   loads_next: Value, loads_in: Value) -> None:
    """``same``, ``behind`` and ``next_up`` kept in registers: the sequencer's every decision
    turns on them, and a comparison of the held event's step with the pending step (a carry
    chain) in front of it was the iCE40's longest path. Each relation the registers may hold
    next is compared from registers in parallel, and the cycle's choices of the held event
    (kept, the second register's, the upstream's) and of the pending step (kept, 0, the held
    event's, one more) only select one."""
    held = source.step
    plus_one, plus_two = step + 1, step + 2

    def relations(a: Value) -> dict[str, tuple[Value, Value, Value]]:
        """(same, behind, next_up) of step ``a`` against each next pending step."""
        return {
            "kept": (a == step, a < step, a == plus_one),
            "zero": (a == 0, Const(0), a == 1),
            "event": (a == held, a < held, a == held + 1),
            "up": (a == plus_one, a < plus_one, a == plus_two),
        }

    held_kept = {"kept": (source.same, source.behind, source.next_up),
            "zero": (held == 0, Const(0), held == 1),
            "event": (Const(1), Const(0), Const(0)),
            "up": (source.next_up, source.behind | source.same, held == plus_two)}
    choices = {}
    for name, flags in (("next", relations(next_step)), ("in", relations(in_step)), ("kept", held_kept)):
        for change, values in flags.items():
            chosen = Signal(3, name=f"relation_{name}_{change}")
            m.d.comb += chosen.eq(Cat(*values))
            choices[name, change] = chosen

    def by_change(name: str) -> Value:
        return Mux(source.step_zero, choices[name, "zero"],
                   Mux(source.step_to_event, choices[name, "event"],
                       Mux(source.step_up, choices[name, "up"], choices[name, "kept"])))

    relation = Mux(loads_next, by_change("next"), Mux(loads_in, by_change("in"), by_change("kept")))
    m.d.sync += Cat(source.same, source.behind, source.next_up).eq(relation)


def _bad_event(params: CoreParams, events, index, event_step, behind: Value) -> Value:
    """An input event the core must not process: out of range or out of time order
    (``behind``: its step is before the pending one). (Range checks that the field width
    already guarantees are left out.)"""
    bad = behind
    if params.n_inputs < 1 << len(events.payload.index):
        bad |= index >= params.n_inputs
    if params.time_steps < 1 << len(events.payload.step):
        bad |= event_step > params.time_steps - 1
    return bad
