"""The positions a conv layer's adds touched at this step: each listed once, for the checks.

Saturation and the threshold check come once per step, after all of the step's spikes are
added (docs/arithmetic.md), so a convolution checks, at the end of each step, every
position an add reached, once. Adds mark positions as they happen; a mark bit per position
lets only a position's first mark at a step into the list. The end of the step takes the
list back one position after the other, clearing each one's mark as it goes, so at the
start of every step no mark is set and the list is empty. ``restart`` empties the list
without reading it; the marks of what it held must then be cleared with ``clear`` (the
full sweep of every position at step 0 does so as it passes).
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .refusal import refuse

__all__ = ["TouchedPositions"]


class TouchedPositions(wiring.Component):
    """Ports
    -----
    mark, mark_position:
        An add reached this position (one a cycle at most; always accepted).
    positions:
        The list, each marked position once, in the order first marked; taking one clears
        its mark.
    last:
        The position on offer is the list's last (valid once no mark is in flight).
    restart:
        Empty the list (marks are not cleared: see ``clear``).
    clear, clear_position:
        Clear one position's mark.

    Marks, takes and clears share the marks' one write port: the schedule never has a
    take or a clear in the two cycles a mark needs (the adds of a step end before its
    checks begin).
    """

    def __init__(self, positions: int):
        if positions < 1:
            refuse(self, ValueError(f"positions must be at least 1, not {positions!r}"))
        self.size = positions
        super().__init__({
            "mark": In(1),
            "mark_position": In(range(positions)),
            "positions": Out(stream.Signature(range(positions))),
            "last": Out(1),
            "restart": In(1),
            "clear": In(1),
            "clear_position": In(range(positions)),
        })

    def elaborate(self, platform):
        m = Module()
        size = self.size
        m.submodules.marks = marks = memory.Memory(shape=1, depth=size, init=[])
        m.submodules.listed = listed = memory.Memory(shape=range(size), depth=size, init=[])
        mark_w = marks.write_port()
        mark_r = marks.read_port(transparent_for=(mark_w,))
        list_w = listed.write_port()
        list_r = listed.read_port(transparent_for=(list_w,))

        count = Signal(range(size + 1))
        head = Signal(range(size + 1))
        # Stage 1 reads the mark of the position just marked; stage 2 lists it if unset.
        pending, pending_position = Signal(), Signal(range(size))
        m.d.comb += mark_r.addr.eq(self.mark_position)
        m.d.sync += [pending.eq(self.mark), pending_position.eq(self.mark_position)]
        first = pending & ~mark_r.data
        taken = self.positions.valid & self.positions.ready

        # The list's head: read one cycle ahead (the next head when one is taken).
        next_head = Signal.like(head)
        m.d.comb += [next_head.eq(head + taken), list_r.addr.eq(next_head)]
        # An entry written this cycle at the next head is read through (transparent port).
        m.d.comb += [
            list_w.addr.eq(count), list_w.data.eq(pending_position), list_w.en.eq(first),
            self.positions.payload.eq(list_r.data),
            self.positions.valid.eq(head < count),
            self.last.eq(head + 1 == count),
        ]
        # Mark writes: a first mark sets; taking an entry, or `clear`, clears.
        with m.If(first):
            m.d.comb += [mark_w.addr.eq(pending_position), mark_w.data.eq(1), mark_w.en.eq(1)]
        with m.Elif(taken):
            m.d.comb += [mark_w.addr.eq(list_r.data), mark_w.data.eq(0), mark_w.en.eq(1)]
        with m.Elif(self.clear):
            m.d.comb += [mark_w.addr.eq(self.clear_position), mark_w.data.eq(0), mark_w.en.eq(1)]

        # Emptied by `restart`, or by taking the last entry: the next step lists from the top.
        with m.If(self.restart | (taken & (next_head == count) & ~first)):
            m.d.sync += [count.eq(0), head.eq(0)]
        with m.Else():
            m.d.sync += [count.eq(count + first), head.eq(next_head)]
        return m
