"""Payload bytes cross the link's framing unchanged, once, in their place.

* Every payload byte handed to the frame transmitter comes out once, in its place: no
  byte lost, duplicated or changed across stalls on either side.
* Every payload byte of a frame the frame receiver hands on is the byte the line carried
  in that place since the frame's ``FLAG``, whatever came before.

Each property tracks one byte: the ``k``-th payload byte of a frame, for a ``k`` the
solver chooses freely (held constant), so proving it proves it for every position. A
frame on the line is unstuffed as sw/link/framing.py writes it (a ``FLAG`` starts a frame,
an ``ESCAPE`` makes the next byte ``byte ^ 0x20``); its ``HEADER_BYTES + k``-th byte after
the ``FLAG`` is payload byte ``k``.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, Mux, ResetSignal, Signal
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import stream

from firstspike.hw.link.framer import BANK_READ_LATENCY, FrameReceiver, FrameTransmitter
from firstspike.sw.link.framing import ESCAPE, FLAG, HEADER_BYTES

from .properties import stream_rules_of

__all__ = ["TransmitterDelivery", "ReceiverDelivery"]


def _held_constant(m: Module, k: Signal) -> None:
    """``k`` keeps the value the solver chose for it in the first cycle."""
    started, held = Signal(), Signal.like(k)
    m.d.sync += [started.eq(1), held.eq(k)]
    with m.If(started):
        m.d.comb += Assume(k == held)


def _unstuffed(m: Module, port, k: Signal, most: int, name: str) -> tuple[Signal, Signal, Signal]:
    """Follow the frames of a byte stream: ``(position, value, at_k)``: the data bytes
    since the last ``FLAG`` (counted up to the first past a ``most``-byte payload, where
    it stays: no later byte is a payload byte, and a counter that cannot wrap keeps the
    solver's state small), the value of the byte transferred now, and whether it is the
    frame's payload byte ``k`` (transferred now)."""
    beyond = HEADER_BYTES + most
    position = Signal(range(beyond + 1), name=f"{name}_position")
    escaped = Signal(name=f"{name}_escaped")
    value = Signal(8, name=f"{name}_value")
    at_k = Signal(name=f"{name}_at_k")
    m.d.comb += value.eq(Mux(escaped, port.payload ^ 0x20, port.payload))
    with m.If(port.valid & port.ready):
        with m.If(port.payload == FLAG):
            m.d.sync += [position.eq(0), escaped.eq(0)]
        with m.Elif((port.payload == ESCAPE) & ~escaped):
            m.d.sync += escaped.eq(1)
        with m.Else():
            m.d.sync += [escaped.eq(0), position.eq(Mux(position == beyond, beyond, position + 1))]
            m.d.comb += at_k.eq(position == HEADER_BYTES + k)
    return position, value, at_k


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
        _held_constant(m, k)

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
        _, value, at_k = _unstuffed(m, dut.bytes_out, k, most, "out")
        with m.If(at_k & (k < length)):
            m.d.comb += [Assert(have & (value == tracked)), Cover(value == FLAG)]
        return m


class ReceiverDelivery(Elaboratable):
    """:class:`FrameReceiver` fed any bytes and line errors, its frames taken as soon as they
    are offered (as the link's command handler takes them), faults taken and banks released
    at will; when it offers a frame, payload byte ``k`` read from the frame's bank is the
    byte the line carried in that place since the frame's ``FLAG``."""

    def __init__(self, receiver: FrameReceiver):
        self.dut = receiver
        self.k = Signal(range(receiver.max_payload), name="k")
        self.bytes_valid, self.byte = Signal(), Signal(8)
        self.line_error, self.faults_ready = Signal(), Signal()
        self.release, self.release_bank = Signal(), Signal()
        self.ports = [self.k, self.bytes_valid, self.byte, self.line_error, self.faults_ready,
                      self.release, self.release_bank]

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = rx = self.dut
        k = self.k
        m.d.comb += Assume(~ResetSignal())
        _held_constant(m, k)
        m.d.comb += [rx.bytes_in.valid.eq(self.bytes_valid), rx.bytes_in.payload.eq(self.byte),
                     rx.line_error.eq(self.line_error), rx.frames.ready.eq(1),
                     rx.faults.ready.eq(self.faults_ready), rx.release.eq(self.release),
                     rx.release_bank.eq(self.release_bank)]
        # The line watched a cycle late, through a register as the receiver's first stage
        # is: no byte arrives in the cycle a frame is offered, so at the check it has seen
        # the same bytes, and the solver relates fewer cycles in flight.
        line = stream.Signature(8).create()
        m.d.sync += [line.valid.eq(self.bytes_valid), line.payload.eq(self.byte)]
        m.d.comb += line.ready.eq(1)
        _, value, at_k = _unstuffed(m, line, k, rx.max_payload, "line")
        tracked = Signal(8)
        with m.If(at_k):
            m.d.sync += tracked.eq(value)
        # A frame offered: read its payload byte k; the data follows BANK_READ_LATENCY
        # cycles later. The block is read at the end of the offer's cycle, in which no byte
        # arrives and no bank is released, so the bank holds what the tracked byte was the
        # cycle after (the value compared, held through the cycles the byte is on its way).
        checking = Signal(BANK_READ_LATENCY)
        m.d.sync += checking.eq(checking << 1)
        header = rx.frames.payload.header
        with m.If(rx.frames.valid & (k < header.length)):
            m.d.comb += [rx.read_bank.eq(rx.frames.payload.bank), rx.read_address.eq(k),
                         Assume(~self.bytes_valid & ~self.release)]
            m.d.sync += checking[0].eq(1)
        expected = [tracked] + [Signal(8, name=f"tracked_{n}_ago") for n in range(1, BANK_READ_LATENCY)]
        m.d.sync += [later.eq(earlier) for earlier, later in zip(expected, expected[1:])]
        with m.If(checking[-1]):
            m.d.comb += [Assert(rx.read_data == expected[-1]), Cover(expected[-1] == FLAG)]
        return m
