"""The link's recovery, as a property: after any bytes, an idle gap and a well-formed frame,
the frame receiver hands on that frame within a bounded number of cycles.

The environment: any bytes (and line errors) for as long as the solver likes, then
``idle`` cycles without a byte, then the frame's bytes one a cycle, then nothing. Frames
are taken as soon as they are offered and their bank released the cycle after (as the
command handler does), faults taken whenever the solver likes.
"""

from __future__ import annotations

from amaranth import Array, Const, Elaboratable, Module, ResetSignal, Signal
from amaranth.hdl import Assert, Assume, Cover

from firstspike.hw.link.framer import FrameReceiver
from firstspike.sw.link.framing import Frame, encode_frame

__all__ = ["Recovery"]


class Recovery(Elaboratable):
    def __init__(self, receiver: FrameReceiver, frame: Frame, *, idle: int, within: int):
        self.receiver, self.frame, self.idle, self.within = receiver, frame, idle, within
        self.garbage_valid, self.garbage_byte, self.garbage_more = Signal(), Signal(8), Signal()
        self.line_error, self.faults_ready = Signal(), Signal()

    def ports(self) -> list:
        return [self.garbage_valid, self.garbage_byte, self.garbage_more, self.line_error, self.faults_ready]

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = rx = self.receiver
        m.d.comb += Assume(~ResetSignal())
        wire = list(encode_frame(self.frame))
        frame_bytes = Array(Const(byte, 8) for byte in wire)
        index = Signal(range(len(wire) + 1))
        count = Signal(range(max(self.idle, self.within) + 2))
        seen = Signal()
        with m.FSM():
            with m.State("GARBAGE"):
                m.d.comb += [rx.bytes_in.valid.eq(self.garbage_valid), rx.bytes_in.payload.eq(self.garbage_byte),
                             rx.line_error.eq(self.line_error)]
                with m.If(~self.garbage_more):
                    m.next = "IDLE"
            with m.State("IDLE"):
                m.d.sync += count.eq(count + 1)
                with m.If(count == self.idle - 1):
                    m.d.sync += count.eq(0)
                    m.next = "FRAME"
            with m.State("FRAME"):
                m.d.comb += [rx.bytes_in.valid.eq(1), rx.bytes_in.payload.eq(frame_bytes[index])]
                m.d.sync += index.eq(index + 1)
                with m.If(index == len(wire) - 1):
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.sync += count.eq(count + 1)
                with m.If(count == self.within):
                    m.d.comb += Assert(seen)
                    m.d.comb += Cover(seen)
        # Frames taken at once, banks released the cycle after; faults taken at will.
        m.d.comb += [rx.frames.ready.eq(1), rx.faults.ready.eq(self.faults_ready)]
        taken, bank = Signal(), Signal()
        m.d.sync += [taken.eq(rx.frames.valid), bank.eq(rx.frames.payload.bank)]
        m.d.comb += [rx.release.eq(taken), rx.release_bank.eq(bank)]
        header = rx.frames.payload.header
        ours = (rx.frames.valid & (header.type == self.frame.type) & (header.sequence == self.frame.sequence)
                & (header.length == len(self.frame.payload)))
        with m.If((index != 0) & ours):  # a frame offered once the real one has begun
            m.d.sync += seen.eq(1)
        return m
