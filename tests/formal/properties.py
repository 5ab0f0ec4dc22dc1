"""Wrappers that state properties of a design's ports (the stream rules of amaranth.lib.stream)."""

from __future__ import annotations

from amaranth import Elaboratable, Module, Signal, Value
from amaranth.hdl import Assert, Assume, Cover

__all__ = ["StreamRules"]


class StreamRules(Elaboratable):
    """``dut`` with its input streams assumed to obey the stream rules and its output
    streams asserted to: once ``valid`` is up, ``valid`` and ``payload`` hold until ``ready``.
    A cover asks for an output stalled while valid, so the assertion is not vacuous."""

    def __init__(self, dut, inputs: list, outputs: list):
        self.dut, self.inputs, self.outputs = dut, inputs, outputs

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        started = Signal()
        m.d.sync += started.eq(1)
        for port, rule in [(p, Assume) for p in self.inputs] + [(p, Assert) for p in self.outputs]:
            held, payload = Signal(), Signal.like(port.payload)
            m.d.sync += [held.eq(port.valid & ~port.ready), payload.eq(port.payload)]
            with m.If(started & held):
                m.d.comb += rule(port.valid & (Value.cast(port.payload) == Value.cast(payload)))
        for port in self.outputs:
            stalled = Signal()
            m.d.sync += stalled.eq(port.valid & ~port.ready)
            m.d.comb += Cover(started & stalled & port.valid)
        return m
