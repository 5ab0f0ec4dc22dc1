"""The contract under which a conv layer's list of touched positions keeps the stream rules.

:class:`~firstspike.hw.touched.TouchedPositions` shares its marks' one write port between
marks, takes and clears: the schedule never takes or clears in the two cycles a mark needs
(a step's adds end before its checks begin), takes the whole list before the next step
marks again, and names positions of the layer only.
``restart`` withdraws the list on purpose (the
full sweep at step 0 replaces it, clearing the marks with ``clear`` as it passes), so the
rules are stated between restarts, where nothing is cleared but by a take.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, Signal
from amaranth.hdl import Assume

from firstspike.hw.touched import TouchedPositions

from .properties import stream_rules_of

__all__ = ["TouchedContract"]


class TouchedContract(Elaboratable):
    def __init__(self, dut: TouchedPositions):
        self.dut = dut
        self.rules, self.ports = stream_rules_of(dut)

    def elaborate(self, platform):
        m = Module()
        m.submodules.rules = self.rules
        dut = self.dut
        marked, marked_before = Signal(), Signal()
        m.d.sync += [marked.eq(dut.mark), marked_before.eq(marked)]
        taking = dut.positions.valid & dut.positions.ready
        m.d.comb += [Assume(~dut.restart & ~dut.clear), Assume(dut.mark_position < dut.size)]
        with m.If(dut.mark | marked | marked_before):
            m.d.comb += Assume(~taking)
        # A step's checks take the whole list before the next step's adds mark again.
        draining = Signal()
        with m.If(taking):
            m.d.sync += draining.eq(1)
        with m.Elif(~dut.positions.valid):
            m.d.sync += draining.eq(0)
        m.d.comb += Assume(~(dut.mark & (draining | taking)))
        return m
