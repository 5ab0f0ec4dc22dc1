"""The core stays in bounds: its spike queue (or table) never takes a record it has no room
for nor gives one it does not hold, the queue hands on every queued spike exactly once
(no event offered from a record with no spike left: with the count, the record's
last-spike register is right), and every memory row it reads or writes lies in the region
of the layer it runs (sw/layout.py; a weight row only where the lanes add it), for any
input that obeys the stream rules. The sequencer's last-fold register agrees with its
fold count throughout.
"""

from __future__ import annotations

from amaranth import Elaboratable, Fragment, Module, Mux, ResetSignal, Signal, Value
from amaranth.hdl import Assert, Assume, Cover

from firstspike.hw.core import TTFSCore
from firstspike.hw.queue import queue_depth
from firstspike.sw.params import CoreParams

from .properties import stream_rules_of

__all__ = ["CoreBounds"]


def _within(m: Module, value, layer, bases: tuple[int, ...], name: str) -> Value:
    """``bases[layer] <= value < bases[layer + 1]``."""
    low, high = Signal.like(value, name=f"{name}_low"), Signal(len(value) + 1, name=f"{name}_high")
    with m.Switch(layer):
        for k in range(len(bases) - 1):
            with m.Case(k):
                m.d.comb += [low.eq(bases[k]), high.eq(bases[k + 1])]
    return (value >= low) & (value < high)


class CoreBounds(Elaboratable):
    """:class:`TTFSCore` under the stream rules (its own outputs' rules asserted too), with
    the queue's and the memories' bounds asserted, and a cover that a record takes the
    queue's last free place (with a record read in the same cycle, the level itself stays
    below the depth, and a queue one record shorter overflows: tests/test_formal.py)."""

    def __init__(self, params: CoreParams):
        self.params = params
        self.core = TTFSCore(params)
        self.rules, self.ports = stream_rules_of(self.core)

    def elaborate(self, platform):
        m = Module()
        m.submodules.rules = self.rules
        self.rules.dut = Fragment.get(self.core, platform)  # elaborated now, so its internals exist
        inner, layout, params = self.core.internals, self.core.layout, self.params
        started = Signal()
        m.d.sync += started.eq(1)
        m.d.comb += Assume(~ResetSignal())

        weights_used = _within(m, inner.weight_row, inner.layer, (*layout.weight_base, layout.weight_rows), "weight")
        with m.If(inner.issue):
            m.d.comb += Assert(weights_used | ~inner.op.add)  # (a row read and not added is not used)
        with m.If(inner.rows_read):
            m.d.comb += [
                Assert(_within(m, inner.neuron_row, inner.rows_layer, (*layout.neuron_base, layout.neuron_rows),
                               "neuron")),
                Assert(_within(m, inner.state_row, inner.rows_layer, (*layout.state_base, layout.state_rows),
                               "state")),
            ]
        issued_layer = Signal.like(inner.layer)  # the layer of the fold in the lane stage
        m.d.sync += issued_layer.eq(inner.layer)
        with m.If(started & inner.state_write.en):
            m.d.comb += Assert(_within(m, inner.state_write.addr, issued_layer,
                                       (*layout.state_base, layout.state_rows), "written"))

        m.d.comb += Assert(inner.last_fold == (inner.fold == inner.folds - 1))

        queue = inner.queue
        if hasattr(queue, "buffer"):  # a SpikeQueue (or a copy broken on purpose)
            fifo, depth = queue.buffer, queue.buffer.depth
            m.d.comb += [Assert(queue.pushed <= depth), Assert(queue.remaining <= depth),
                         Assert(queue.drained == (queue.remaining == 0)),
                         Assert(queue.none_pushed == (queue.pushed == 0)),
                         Assert(queue.one_pushed == (queue.pushed == 1))]
            # No spike lost or duplicated: at every switch, the layer just run took exactly one
            # event for each spike that the layer before it queued (the set bits of its records).
            bits = Signal(range(params.lanes + 1))
            m.d.comb += bits.eq(sum(queue.record.fire[lane] for lane in range(params.lanes)))
            most = queue_depth(params) * params.lanes
            queued, handed, taken = (Signal(range(most + 1), name=name) for name in ("queued", "handed", "taken"))
            took = queue.take & queue.valid
            with m.If(queue.switch):
                m.d.comb += Assert(taken + took == handed)
                m.d.sync += [handed.eq(queued + Mux(queue.push, bits, 0)), queued.eq(0), taken.eq(0)]
            with m.Else():
                m.d.sync += [queued.eq(queued + Mux(queue.push, bits, 0)), taken.eq(taken + took)]
            # No event is offered from a record with no spike left (a last-spike register that
            # said "not last" wrongly; one that said "last" wrongly loses spikes: the count).
            with m.If(queue.valid):
                m.d.comb += Assert(queue.current.fire != 0)
        else:
            fifo, depth = queue.ahead, queue.ahead.depth
            with m.If(queue.push):
                m.d.comb += Assert(queue.fold < queue.folds)
        m.d.comb += [Assert(~(fifo.w_en & ~fifo.w_rdy)),   # no overflow
                     Assert(~(fifo.r_en & ~fifo.r_rdy)),   # no underflow
                     Cover(fifo.w_en & (fifo.level == depth - 1))]  # a record takes the last free place
        return m
