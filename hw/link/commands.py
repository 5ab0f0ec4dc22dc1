"""The command handler: carries out received frames on the core and answers them
(docs/protocol.md). The protocol emulator (``sw/emulator.py``) is its reference: for the
same bytes in, the tests expect the same bytes out.

One command at a time. An INFER's spike code is checked in full before its first spike
goes to the core, so a refused input never starts an inference; the answer is sent when
the core's result arrives. Meanwhile the receiver takes the next frame into its other bank.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.layout import MemoryLayout, Target
from firstspike.sw.link.fields import REGION, result_reply
from firstspike.sw.link.messages import (
    COMMITTED,
    NACK,
    NO_TIME,
    REGION_BYTES,
    REPLY,
    RESULT_FIRED,
    RESULT_INPUT_ERROR,
    Command,
    Info,
    Nack,
)
from firstspike.sw.link.spikecode import NEXT_STEP, SKIP
from firstspike.sw.model import Model
from firstspike.sw.params import CoreParams

from ..core import event_layout, read_layout, result_layout, write_layout
from .framer import fault_layout, header_layout
from .wire import struct_layout

__all__ = ["CommandHandler", "result_bytes"]


def result_bytes(params: CoreParams) -> int:
    return result_reply(params.n_layers, params.n_outputs).size


class CommandHandler(wiring.Component):
    """Ports: the receiver's side (``frames``, ``faults``, bank read and release), the
    transmitter's side (``reply``, ``reply_payload``) and the core's side (``events``,
    ``results``, ``write``, ``read``, ``read_data``)."""

    def __init__(self, params: CoreParams, *, max_payload: int, clock_hz: int, baud: int,
                 model: Model | None = None):
        self.params, self.max_payload = params, max_payload
        self.layout = MemoryLayout(params)
        self.info_bytes = Info(params, clock_hz, baud, max_payload, bytes(32), 0).pack()
        self.model_sha256 = bytes.fromhex(model.digest()) if model is not None else bytes(32)
        self.committed = model is not None
        header = header_layout(max_payload)
        super().__init__({
            "frames": In(stream.Signature(data.StructLayout({"header": header, "bank": 1}))),
            "faults": In(stream.Signature(fault_layout())),
            "release": Out(1),
            "release_bank": Out(1),
            "read_bank": Out(1),
            "read_address": Out(range(max(2, max_payload))),
            "read_byte": In(8),
            "reply": Out(stream.Signature(header)),
            "reply_payload": Out(stream.Signature(8)),
            "events": Out(stream.Signature(event_layout(params))),
            "results": In(stream.Signature(result_layout(params))),
            "write": Out(stream.Signature(write_layout(params))),
            "read": Out(stream.Signature(read_layout(params))),
            "read_data": In(stream.Signature(max(self.layout.weight_width, self.layout.neuron_width))),
        })

    def elaborate(self, platform):
        m = Module()
        params, layout = self.params, self.layout
        row_bytes = [(layout.weight_width + 7) // 8, (layout.neuron_width + 7) // 8, (layout.neuron_width + 7) // 8]
        rows = [layout.weight_rows, layout.neuron_rows, layout.neuron_rows]
        widest_row = max(row_bytes)
        n_res = result_bytes(params)
        vector_bytes = max(len(self.info_bytes), n_res + 1, REGION_BYTES, 2)

        header = Signal(header_layout(self.max_payload))
        bank = Signal()
        from_frame = Signal()         # the reply answers a frame whose bank must be released
        reply_type = Signal(8)
        reply_length = Signal(range(self.max_payload + 1))
        vector = Signal(8 * vector_bytes)  # a reply's bytes, byte k at bits 8k ...
        source = Signal(2)            # 0: vector, 1: the frame's bank (ECHO), 2: memory rows (READ)
        position = Signal(range(self.max_payload + 1))
        sha = Signal(256, init=int.from_bytes(self.model_sha256, "little"))
        flags = Signal(8, init=COMMITTED if self.committed else 0)
        last_result = Signal(8 * (n_res + 1))  # the INFER's sequence, then the result
        have_result = Signal()
        region = Signal(struct_layout(REGION))
        target, address, count = region.target, region.address, region.count
        row = Signal(8 * widest_row)
        row_index = Signal(8)
        byte_in_row = Signal(range(widest_row + 1))
        step = Signal(range(params.time_steps + 2))
        base = Signal(range(params.n_inputs + 256))
        bad_code = Signal(8)
        bad_target, bad_address = Signal(), Signal()
        region_bytes = Signal(range(256 * widest_row + 1))

        m.d.comb += [self.read_bank.eq(bank), self.read_address.eq(position),
                     self.release_bank.eq(bank)]

        info_prefix = Const(int.from_bytes(self.info_bytes[:-33], "little"), 8 * (len(self.info_bytes) - 33))
        token = self.read_byte
        index = base + token
        target_rows = Mux(target == Target.WEIGHTS, rows[0], rows[1])
        target_row_bytes = Mux(target == Target.WEIGHTS, row_bytes[0], row_bytes[1])

        result = self.results.payload
        reply_result = Signal(struct_layout(result_reply(params.n_layers, params.n_outputs)))
        m.d.comb += [
            reply_result.flags.eq(Mux(result.fired, RESULT_FIRED, 0) | Mux(result.error, RESULT_INPUT_ERROR, 0)),
            reply_result.decision.eq(result.decision),
            reply_result.cycles.eq(result.cycles),
            reply_result.input_spikes.eq(result.input_spikes),
            *(reply_result.layer_spikes[k].eq(result.layer_spikes[k]) for k in range(params.n_layers)),
            *(reply_result.output_times[j].eq(Mux(result.output_fired[j], result.output_times[j], NO_TIME))
              for j in range(params.n_outputs)),
        ]

        def start_reply(kind: int, length, payload_source: int = 0):
            m.d.sync += [reply_type.eq(kind), reply_length.eq(length), source.eq(payload_source)]
            m.next = "SEND"

        def refuse(code):
            m.d.sync += vector.eq(Cat(code if isinstance(code, Signal) else Const(code, 8), header.type))
            start_reply(NACK, 2)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.faults.ready.eq(1)
                with m.If(self.faults.valid):
                    fault = self.faults.payload
                    m.d.sync += [header.sequence.eq(fault.sequence), from_frame.eq(0),
                                 vector.eq(Cat(fault.code, fault.type))]
                    start_reply(NACK, 2)
                with m.Else():
                    m.d.comb += self.frames.ready.eq(1)
                    with m.If(self.frames.valid):
                        m.d.sync += [header.eq(self.frames.payload.header), bank.eq(self.frames.payload.bank),
                                     from_frame.eq(1), position.eq(0)]
                        m.next = "DISPATCH"

            with m.State("DISPATCH"):
                kind = header.type | REPLY
                with m.Switch(header.type):
                    with m.Case(Command.INFO):
                        with m.If(header.length != 0):
                            refuse(Nack.BAD_LENGTH)
                        with m.Else():
                            m.d.sync += vector.eq(Cat(info_prefix, sha, flags))
                            start_reply(kind, len(self.info_bytes))
                    with m.Case(Command.ECHO):
                        start_reply(kind, header.length, 1)
                    with m.Case(Command.RESET):
                        start_reply(kind, 0)
                    with m.Case(Command.READ_RESULT):
                        with m.If(header.length != 0):
                            refuse(Nack.BAD_LENGTH)
                        with m.Elif(~have_result):
                            refuse(Nack.NO_RESULT)
                        with m.Else():
                            m.d.sync += vector.eq(last_result)
                            start_reply(kind, n_res + 1)
                    with m.Case(Command.COMMIT):
                        with m.If(header.length != 32):
                            refuse(Nack.BAD_LENGTH)
                        with m.Else():
                            m.next = "COMMIT"
                    with m.Case(Command.LOAD):
                        with m.If(header.length < REGION_BYTES):
                            refuse(Nack.BAD_LENGTH)
                        with m.Else():
                            m.next = "REGION"
                    with m.Case(Command.READ):
                        with m.If(header.length != REGION_BYTES):
                            refuse(Nack.BAD_LENGTH)
                        with m.Else():
                            m.next = "REGION"
                    with m.Case(Command.INFER):
                        m.d.sync += [step.eq(0), base.eq(0), bad_code.eq(0)]
                        m.next = "SCAN"
                    with m.Default():
                        refuse(Nack.UNKNOWN_TYPE)

            # Bank bytes come one cycle after their address (``position``); each loop
            # below spends a cycle on the address and uses the byte in the next.
            with m.State("COMMIT"):
                m.next = "COMMIT_BYTE"
            with m.State("COMMIT_BYTE"):
                m.d.sync += [sha.word_select(position[:5], 8).eq(self.read_byte), position.eq(position + 1)]
                with m.If(position == 31):
                    m.d.sync += flags.eq(flags | COMMITTED)
                    start_reply(Command.COMMIT | REPLY, 0)
                with m.Else():
                    m.next = "COMMIT"

            with m.State("REGION"):
                m.next = "REGION_BYTE"
            with m.State("REGION_BYTE"):
                m.d.sync += [region.as_value().word_select(position[:3], 8).eq(self.read_byte),
                             position.eq(position + 1)]
                with m.If(position == REGION_BYTES - 1):
                    m.next = "CHECK_REGION"
                with m.Else():
                    m.next = "REGION"

            # The region's checks take two cycles: the comparisons and the length
            # multiply in one, the decision and the reply set-up in the next.
            with m.State("CHECK_REGION"):
                m.d.sync += [
                    bad_target.eq(target > Target.INITIAL_POTENTIALS),
                    bad_address.eq((count == 0) | (address + count > target_rows)),
                    region_bytes.eq(count * target_row_bytes),
                ]
                m.next = "DECIDE_REGION"
            with m.State("DECIDE_REGION"):
                with m.If(bad_target):
                    refuse(Nack.BAD_TARGET)
                with m.Elif(bad_address):
                    refuse(Nack.BAD_ADDRESS)
                with m.Elif(header.type == Command.READ):
                    with m.If(region_bytes > self.max_payload):
                        refuse(Nack.BAD_LENGTH)
                    with m.Else():
                        m.d.sync += row_index.eq(0)
                        start_reply(Command.READ | REPLY, region_bytes, 2)
                with m.Elif(header.length != REGION_BYTES + region_bytes):
                    refuse(Nack.BAD_LENGTH)
                with m.Else():
                    m.d.sync += [row_index.eq(0), byte_in_row.eq(0), row.eq(0)]
                    m.next = "LOAD"

            with m.State("LOAD"):
                m.next = "LOAD_BYTE"
            with m.State("LOAD_BYTE"):
                m.d.sync += [row.word_select(byte_in_row, 8).eq(self.read_byte), position.eq(position + 1),
                             byte_in_row.eq(byte_in_row + 1)]
                with m.If(byte_in_row == target_row_bytes - 1):
                    m.next = "LOAD_WRITE"
                with m.Else():
                    m.next = "LOAD"
            with m.State("LOAD_WRITE"):
                m.d.comb += [self.write.valid.eq(1), self.write.payload.target.eq(target),
                             self.write.payload.address.eq(address + row_index),
                             self.write.payload.data.eq(row)]
                with m.If(self.write.ready):
                    m.d.sync += [row_index.eq(row_index + 1), byte_in_row.eq(0), row.eq(0),
                                 flags.eq(flags & ~COMMITTED), sha.eq(0)]
                    with m.If(row_index == count - 1):
                        m.d.sync += vector.eq(region)
                        start_reply(Command.LOAD | REPLY, REGION_BYTES)
                    with m.Else():
                        m.next = "LOAD"

            # INFER: first check every token, then send the spikes.
            with m.State("SCAN"):
                with m.If(position == header.length):
                    with m.If(bad_code != 0):
                        refuse(bad_code)
                    with m.Else():
                        m.d.sync += [position.eq(0), step.eq(0), base.eq(0)]
                        m.next = "EMIT"
                with m.Else():
                    m.next = "SCAN_BYTE"
            with m.State("SCAN_BYTE"):
                m.d.sync += position.eq(position + 1)
                m.next = "SCAN"
                with m.If(token == NEXT_STEP):
                    m.d.sync += [step.eq(Mux(step > params.time_steps, step, step + 1)), base.eq(0)]
                with m.Elif(token == SKIP):
                    m.d.sync += base.eq(Mux(base >= params.n_inputs, base, base + 254))
                with m.Else():
                    m.d.sync += base.eq(Mux(index >= params.n_inputs, base, index + 1))
                    with m.If(bad_code == 0):
                        with m.If(index >= params.n_inputs):
                            m.d.sync += bad_code.eq(Nack.INDEX_RANGE)
                        with m.Elif(step >= params.time_steps):
                            m.d.sync += bad_code.eq(Nack.TIME_RANGE)
            with m.State("EMIT"):
                with m.If(position == header.length):
                    m.next = "END"
                with m.Else():
                    m.next = "EMIT_BYTE"
            with m.State("EMIT_BYTE"):
                with m.If(token == NEXT_STEP):
                    m.d.sync += [step.eq(step + 1), base.eq(0), position.eq(position + 1)]
                    m.next = "EMIT"
                with m.Elif(token == SKIP):
                    m.d.sync += [base.eq(base + 254), position.eq(position + 1)]
                    m.next = "EMIT"
                with m.Else():
                    m.d.comb += [self.events.valid.eq(1), self.events.payload.index.eq(index),
                                 self.events.payload.step.eq(step)]
                    with m.If(self.events.ready):
                        m.d.sync += [base.eq(index + 1), position.eq(position + 1)]
                        m.next = "EMIT"
            with m.State("END"):
                m.d.comb += [self.events.valid.eq(1), self.events.payload.end.eq(1)]
                with m.If(self.events.ready):
                    m.next = "RESULT"
            with m.State("RESULT"):
                m.d.comb += self.results.ready.eq(1)
                with m.If(self.results.valid):
                    packed = Cat(header.sequence, reply_result)
                    m.d.sync += [last_result.eq(packed), have_result.eq(1), vector.eq(reply_result)]
                    start_reply(Command.INFER | REPLY, n_res)

            with m.State("SEND"):
                m.d.comb += [self.reply.valid.eq(1), self.reply.payload.type.eq(reply_type),
                             self.reply.payload.sequence.eq(header.sequence),
                             self.reply.payload.length.eq(reply_length)]
                with m.If(self.reply.ready):
                    m.d.sync += [position.eq(0), row_index.eq(0), byte_in_row.eq(0)]
                    with m.Switch(source):
                        with m.Case(1):
                            m.next = "ECHO"
                        with m.Case(2):
                            m.next = "READ_ROW"
                        with m.Default():
                            m.next = "SEND_VECTOR"
            with m.State("SEND_VECTOR"):
                with m.If(position == reply_length):
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += [self.reply_payload.valid.eq(1),
                                 self.reply_payload.payload.eq(vector.word_select(position, 8))]
                    with m.If(self.reply_payload.ready):
                        m.d.sync += position.eq(position + 1)
            with m.State("ECHO"):
                with m.If(position == reply_length):
                    m.next = "DONE"
                with m.Else():
                    m.next = "ECHO_BYTE"
            with m.State("ECHO_BYTE"):
                m.d.comb += [self.reply_payload.valid.eq(1), self.reply_payload.payload.eq(self.read_byte)]
                with m.If(self.reply_payload.ready):
                    m.d.sync += position.eq(position + 1)
                    m.next = "ECHO"
            with m.State("READ_ROW"):
                with m.If(row_index == count):
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += [self.read.valid.eq(1), self.read.payload.target.eq(target),
                                 self.read.payload.address.eq(address + row_index)]
                    with m.If(self.read.ready):
                        m.next = "READ_WAIT"
            with m.State("READ_WAIT"):
                m.d.comb += self.read_data.ready.eq(1)
                with m.If(self.read_data.valid):
                    m.d.sync += [row.eq(self.read_data.payload), byte_in_row.eq(0)]
                    m.next = "READ_SEND"
            with m.State("READ_SEND"):
                with m.If(byte_in_row == target_row_bytes):
                    m.d.sync += row_index.eq(row_index + 1)
                    m.next = "READ_ROW"
                with m.Else():
                    m.d.comb += [self.reply_payload.valid.eq(1),
                                 self.reply_payload.payload.eq(row.word_select(byte_in_row, 8))]
                    with m.If(self.reply_payload.ready):
                        m.d.sync += byte_in_row.eq(byte_in_row + 1)
            with m.State("DONE"):
                m.d.comb += self.release.eq(from_frame)
                m.next = "IDLE"
        return m
