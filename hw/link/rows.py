"""Memory rows between the link and the core: LOAD writes a frame's rows, READ reads rows out."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.layout import MemoryLayout, Target
from firstspike.sw.link.messages import REGION_BYTES, row_bytes
from firstspike.sw.params import CoreParams

from ..core import read_layout, write_layout
from .framer import BANK_READ_LATENCY

__all__ = ["RowMover", "move_layout"]


def move_layout() -> data.StructLayout:
    """One request: ``load`` (1: frame bank → memory, 0: memory → ``bytes_out``) of ``count``
    rows of ``target`` from row ``address`` on."""
    return data.StructLayout({"load": 1, "target": 8, "address": 32, "count": 8})


class RowMover(wiring.Component):
    """Carries a checked LOAD or READ region (the command handler checks it).

    A row is ``row_bytes`` little-endian bytes on the wire (sw/link/messages.py). LOAD takes
    the rows from the frame bank, after the region header, and writes each on ``write``;
    READ asks the core for each row on ``read`` and hands its bytes out on ``bytes_out``.
    ``done`` is high for one cycle, the cycle after the last row is written or its last byte
    taken (a register: the handler's reply registers load on it).

    The row is a shift register both ways: a LOAD's bytes come in at its top and move down,
    a READ's leave from its bottom. No byte is chosen by its place in the row, so a received
    byte goes to eight flip-flops, not to every byte of a row as wide as the lanes (1,024 bits
    at P = 128, where that fan-out was the ULX3S build's longest path).
    """

    def __init__(self, params: CoreParams, max_payload: int):
        self.params, self.max_payload = params, max_payload
        self.layout = MemoryLayout(params)
        super().__init__({
            "request": In(stream.Signature(move_layout())),
            "done": Out(1),
            "read_address": Out(range(max(2, max_payload))),
            "read_byte": In(8),
            "write": Out(stream.Signature(write_layout(params))),
            "read": Out(stream.Signature(read_layout(params))),
            "read_data": In(stream.Signature(max(self.layout.weight_width, self.layout.neuron_width))),
            "bytes_out": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        weight_bytes, neuron_bytes = row_bytes(self.layout, Target.WEIGHTS), row_bytes(self.layout, Target.THRESHOLDS)
        widest = max(weight_bytes, neuron_bytes)
        request = Signal(move_layout())
        position = Signal(range(self.max_payload + 1))
        row = Signal(8 * widest)
        row_index = Signal(8)
        byte_in_row = Signal(range(widest + 1))
        # The request's row length, and whether a row read has bytes left, kept in registers:
        # the bytes' ``valid`` goes on through the reply sender into the reply FIFO.
        target_row_bytes = Signal(range(widest + 1))
        more = Signal()
        m.d.comb += self.read_address.eq(position)
        m.d.sync += self.done.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.request.ready.eq(1)
                with m.If(self.request.valid):
                    m.d.sync += [request.eq(self.request.payload), position.eq(REGION_BYTES), row_index.eq(0),
                                 byte_in_row.eq(0), row.eq(0),
                                 target_row_bytes.eq(Mux(self.request.payload.target == Target.WEIGHTS,
                                                         weight_bytes, neuron_bytes))]
                    with m.If(self.request.payload.load):
                        m.next = "LOAD"
                    with m.Else():
                        m.next = "READ_ROW"

            # LOAD: a bank byte comes BANK_READ_LATENCY cycles after its address.
            assert BANK_READ_LATENCY == 2
            with m.State("LOAD"):
                m.next = "LOAD_WAIT"
            with m.State("LOAD_WAIT"):
                m.next = "LOAD_BYTE"
            with m.State("LOAD_BYTE"):
                m.d.sync += [row.eq(Cat(row[8:], self.read_byte)), position.eq(position + 1),
                             byte_in_row.eq(byte_in_row + 1)]
                with m.If(byte_in_row == target_row_bytes - 1):
                    m.next = "LOAD_WRITE"
                with m.Else():
                    m.next = "LOAD"
            with m.State("LOAD_WRITE"):
                m.d.comb += [self.write.valid.eq(1), self.write.payload.target.eq(request.target),
                             self.write.payload.address.eq(request.address + row_index),
                             self.write.payload.data.eq(Mux(request.target == Target.WEIGHTS,
                                                            row[8 * (widest - weight_bytes):],
                                                            row[8 * (widest - neuron_bytes):]))]
                with m.If(self.write.ready):
                    m.d.sync += [row_index.eq(row_index + 1), byte_in_row.eq(0)]
                    with m.If(row_index == request.count - 1):
                        m.d.sync += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "LOAD"

            with m.State("READ_ROW"):
                with m.If(row_index == request.count):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += [self.read.valid.eq(1), self.read.payload.target.eq(request.target),
                                 self.read.payload.address.eq(request.address + row_index)]
                    with m.If(self.read.ready):
                        m.next = "READ_WAIT"
            # The row is taken a cycle after its valid is seen (valid holds until ready): the
            # row register's enable, fanned out over a row as wide as the lanes, is then the
            # state's flip-flop, not the core's valid behind this state's logic (a longest
            # path of the ULX3S build, 10.7 ns).
            with m.State("READ_WAIT"):
                with m.If(self.read_data.valid):
                    m.next = "READ_TAKE"
            with m.State("READ_TAKE"):
                m.d.comb += self.read_data.ready.eq(1)
                m.d.sync += [row.eq(self.read_data.payload), byte_in_row.eq(0), more.eq(1)]
                m.next = "READ_SEND"
            with m.State("READ_SEND"):
                with m.If(~more):
                    m.d.sync += row_index.eq(row_index + 1)
                    m.next = "READ_ROW"
                with m.Else():
                    m.d.comb += [self.bytes_out.valid.eq(1), self.bytes_out.payload.eq(row[:8])]
                    with m.If(self.bytes_out.ready):
                        m.d.sync += [row.eq(row >> 8), byte_in_row.eq(byte_in_row + 1),
                                     more.eq(byte_in_row + 1 != target_row_bytes)]
        return m
