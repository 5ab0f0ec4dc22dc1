"""A reply to the host: its header, then its payload from where the command put it."""

from __future__ import annotations

from enum import IntEnum

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .framer import BANK_READ_LATENCY, header_layout

__all__ = ["ReplySender", "Source", "reply_layout"]


class Source(IntEnum):
    """Where a reply's payload comes from."""

    VECTOR = 0  # the ``vector`` input: a few bytes the command handler made (results, NACKs)
    BANK = 1    # ``read_byte``, BANK_READ_LATENCY cycles after ``read_address``: the request frame's
    #             own payload (ECHO)
    ROWS = 2    # the ``rows`` stream (READ: memory rows from the row mover)
    TABLE = 3   # ``read_byte`` as for BANK, from the handler's INFO table


def reply_layout(max_payload: int) -> data.StructLayout:
    return data.StructLayout({"header": header_layout(max_payload), "source": 2})


class ReplySender(wiring.Component):
    """Sends one reply per ``request``: the header on ``reply``, then exactly ``length``
    payload bytes on ``reply_payload`` from its :class:`Source`; ``done`` is high for one
    cycle after the last byte.

    A :data:`Source.VECTOR` reply sends ``vector``'s lowest byte each time: its owner shifts
    it down a byte in every cycle ``vector_shift`` is high (one byte taken) and otherwise
    holds it until ``done``. (A shift register, not a choice by position: the choice of one
    of ~20 bytes was on the iCEBreaker build's longest paths.)"""

    def __init__(self, max_payload: int, vector_bytes: int):
        self.max_payload, self.vector_bytes = max_payload, vector_bytes
        super().__init__({
            "request": In(stream.Signature(reply_layout(max_payload))),
            "done": Out(1),
            "vector": In(8 * vector_bytes),
            "vector_shift": Out(1),
            "read_address": Out(range(max(2, max_payload))),
            "read_byte": In(8),
            "rows": In(stream.Signature(8)),
            "reply": Out(stream.Signature(header_layout(max_payload))),
            "reply_payload": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        request = Signal(reply_layout(self.max_payload))
        length = request.header.length
        position = Signal(range(self.max_payload + 1))
        # The bank's cycles since ``position`` was addressed, a bit each (its byte is there
        # when the last is set; the handler's table answers as the bank does).
        addressed = Signal(BANK_READ_LATENCY)
        at_end = Signal()     # position == length, a register beside them
        m.d.comb += self.read_address.eq(position)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.request.ready.eq(1)
                with m.If(self.request.valid):
                    m.d.sync += [request.eq(self.request.payload), position.eq(0),
                                 at_end.eq(self.request.payload.header.length == 0)]
                    m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += [self.reply.valid.eq(1), self.reply.payload.eq(request.header)]
                with m.If(self.reply.ready):
                    m.d.sync += addressed.eq(0)
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                source = request.source
                byte_valid = Signal()
                m.d.comb += [
                    byte_valid.eq(Mux(source == Source.ROWS, self.rows.valid,
                                      (source == Source.VECTOR) | addressed[-1])),
                    self.reply_payload.payload.eq(Mux(source == Source.ROWS, self.rows.payload,
                                                      Mux(source == Source.VECTOR, self.vector[:8],
                                                          self.read_byte))),
                ]
                with m.If(at_end):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    # A bank byte comes BANK_READ_LATENCY cycles after its address.
                    m.d.sync += addressed.eq(Cat(1, addressed[:-1]))
                    m.d.comb += [self.reply_payload.valid.eq(byte_valid),
                                 self.rows.ready.eq((source == Source.ROWS) & self.reply_payload.ready)]
                    with m.If(byte_valid & self.reply_payload.ready):
                        m.d.sync += [position.eq(position + 1), addressed.eq(0), at_end.eq(position + 1 == length)]
                        m.d.comb += self.vector_shift.eq(source == Source.VECTOR)
        return m
