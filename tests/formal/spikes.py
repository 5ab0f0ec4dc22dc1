"""The spike-code decoder sends only what a valid input could: whatever the frame bank
holds (even bytes that change between its two walks), each event names an input below
``N`` at a step below ``T``, and nothing at all is sent unless the verdict was 0.

(That steps never go back and no input comes twice the simulations check, comparing every
event with the host's decoder on random and damaged payloads: tests/test_link_parts.py.)
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, ResetSignal, Signal
from amaranth.hdl import Assert, Assume

from firstspike.hw.link.framer import BANK_READ_LATENCY
from firstspike.hw.link.spikes import SpikeCodeDecoder

from .properties import stream_rules_of

__all__ = ["DecoderBounds"]


class DecoderBounds(Elaboratable):
    def __init__(self, dut: SpikeCodeDecoder):
        self.dut = dut
        self.rules, self.ports = stream_rules_of(dut,
                                                 memories=[(dut.read_address, dut.read_byte, BANK_READ_LATENCY)])

    def elaborate(self, platform):
        m = Module()
        m.submodules.rules = self.rules
        dut, params = self.dut, self.dut.params
        beat = dut.events.payload
        m.d.comb += Assume(~ResetSignal())

        accepted = Signal()  # the last verdict was 0, and its end beat is still to come
        with m.If(dut.verdict.valid & dut.verdict.ready):
            m.d.sync += accepted.eq(dut.verdict.payload == 0)
        with m.If(dut.events.valid & dut.events.ready & beat.end):
            m.d.sync += accepted.eq(0)
        with m.If(dut.events.valid):
            m.d.comb += Assert(accepted)
            with m.If(~beat.end):
                m.d.comb += [Assert(beat.index < params.n_inputs), Assert(beat.step < params.time_steps)]
        return m
