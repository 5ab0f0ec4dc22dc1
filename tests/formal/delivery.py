"""Every payload byte handed to the frame transmitter comes out once, in its place: no byte
lost, duplicated or changed across stalls on either side.

The property tracks one byte: the ``k``-th payload byte of a frame, for a ``k`` the solver
chooses freely (held constant), so proving it proves it for every position. The output is
unstuffed as a receiver would (sw/link/framing.py: a ``FLAG`` starts a frame, an
``ESCAPE`` makes the next byte ``byte ^ 0x20``), and the frame's ``HEADER_BYTES + k``-th
byte after its ``FLAG`` must be the tracked byte.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, Mux, ResetSignal, Signal
from amaranth.hdl import Assert, Assume, Cover

from firstspike.hw.link.framer import FrameTransmitter
from firstspike.sw.link.framing import ESCAPE, FLAG, HEADER_BYTES

from .properties import stream_rules_of

__all__ = ["TransmitterDelivery"]


class TransmitterDelivery(Elaboratable):
    """:class:`FrameTransmitter` under the stream rules, given exactly ``length`` payload
    bytes per frame (its contract), with the tracked byte asserted in its place."""

    def __init__(self, transmitter: FrameTransmitter):
        self.dut = transmitter
        self.rules, ports = stream_rules_of(transmitter)
        self.k = Signal(range(transmitter.max_payload), name="k")
        self.ports = [*ports, self.k]

    def elaborate(self, platform):
        m = Module()
        m.submodules.rules = self.rules
        dut, k, most = self.dut, self.k, self.dut.max_payload
        m.d.comb += Assume(~ResetSignal())
        started = Signal()
        m.d.sync += started.eq(1)
        held_k = Signal.like(k)
        m.d.sync += held_k.eq(k)
        with m.If(started):
            m.d.comb += Assume(k == held_k)

        # The input side: the frame's length, its payload bytes so far, the tracked byte.
        length = Signal(range(most + 1))
        given = Signal(range(most + 1))
        tracked, have = Signal(8), Signal()
        in_frame = Signal()
        with m.If(dut.frames.valid & dut.frames.ready):
            m.d.sync += [length.eq(dut.frames.payload.length), given.eq(0), have.eq(0), in_frame.eq(1)]
        with m.If(dut.payload.valid):
            m.d.comb += Assume(in_frame & (given < length))  # exactly `length` bytes a frame
        with m.If(dut.payload.valid & dut.payload.ready):
            m.d.sync += given.eq(given + 1)
            with m.If(given == k):
                m.d.sync += [tracked.eq(dut.payload.payload), have.eq(1)]
            with m.If(given + 1 == length):
                m.d.sync += in_frame.eq(0)

        # The output side, unstuffed.
        out = dut.bytes_out
        position = Signal(range(most + 8))
        escaped = Signal()
        value = Signal(8)
        m.d.comb += value.eq(Mux(escaped, out.payload ^ 0x20, out.payload))
        with m.If(out.valid & out.ready):
            with m.If(out.payload == FLAG):
                m.d.sync += [position.eq(0), escaped.eq(0)]
            with m.Elif((out.payload == ESCAPE) & ~escaped):
                m.d.sync += escaped.eq(1)
            with m.Else():
                m.d.sync += [escaped.eq(0), position.eq(position + 1)]
                with m.If((position == HEADER_BYTES + k) & (k < length)):
                    m.d.comb += [Assert(have & (value == tracked)), Cover(escaped)]
        return m
