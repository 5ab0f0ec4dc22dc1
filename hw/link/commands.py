"""The command handler: carries out received frames on the core and answers them
(docs/protocol.md). The protocol emulator (``sw/emulator.py``) is its reference: for the
same bytes in, the tests expect the same bytes out.

One command at a time. The handler reads headers, checks lengths and regions, and keeps
the model hash and the last result; three parts do the rest: the
:class:`~.spikes.SpikeCodeDecoder` (an INFER's spikes, checked in full before the first
goes to the core, so a refused input never starts an inference), the
:class:`~.rows.RowMover` (LOAD and READ rows) and the :class:`~.replies.ReplySender`.
Meanwhile the receiver takes the next frame into its other bank.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, fifo, memory, stream, wiring
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
    SHAPED,
    STEPPED,
    Command,
    Info,
    Nack,
    info_shapes_bytes,
    row_bytes,
)
from firstspike.sw.model import Model
from firstspike.sw.params import CoreParams

from ..core import event_layout, read_layout, result_layout, write_layout
from .framer import BANK_READ_LATENCY, fault_layout, header_layout
from .replies import ReplySender, Source, reply_layout
from .rows import RowMover
from .spikes import SpikeCodeDecoder
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
        rows = [layout.weight_rows, layout.neuron_rows]
        widest_row = max(row_bytes(layout, Target.WEIGHTS), row_bytes(layout, Target.THRESHOLDS))
        n_res = result_bytes(params)
        vector_bytes = max(n_res + 1, REGION_BYTES, 2)

        m.submodules.decoder = decoder = SpikeCodeDecoder(params, self.max_payload)
        m.submodules.mover = mover = RowMover(params, self.max_payload)
        m.submodules.sender = sender = ReplySender(self.max_payload, vector_bytes)
        wiring.connect(m, decoder.events, wiring.flipped(self.events))
        wiring.connect(m, mover.write, wiring.flipped(self.write))
        wiring.connect(m, mover.read, wiring.flipped(self.read))
        wiring.connect(m, wiring.flipped(self.read_data), mover.read_data)
        # A READ's row bytes reach the sender through a FIFO, so the sender's ready is not in
        # front of the enable of the mover's row register (a row as wide as the lanes).
        m.submodules.row_bytes = row_bytes_fifo = fifo.SyncFIFOBuffered(width=8, depth=2)
        wiring.connect(m, mover.bytes_out, row_bytes_fifo.w_stream)
        wiring.connect(m, row_bytes_fifo.r_stream, sender.rows)
        wiring.connect(m, sender.reply, wiring.flipped(self.reply))
        wiring.connect(m, sender.reply_payload, wiring.flipped(self.reply_payload))

        header = Signal(header_layout(self.max_payload))
        bank = Signal()
        from_frame = Signal()         # the reply answers a frame whose bank must be released
        reply = Signal(reply_layout(self.max_payload))
        vector = Signal(8 * vector_bytes)  # a reply's bytes, byte k at bits 8k ...
        # What SEND loads into ``vector`` (one-hot: a NACK, the last result with or without
        # its sequence, the region): the states that decide a reply set only this and a
        # 16-bit NACK, so the wide register's enable and choice come from registers.
        from_nack, from_stored, from_result, from_region = (Signal(name=f"vector_from_{name}") for name in
                                                            ("nack", "stored", "result", "region"))
        nack = Signal(16)  # a NACK's code and type
        # The DISPATCH state's length checks, registered with the header.
        length_zero, length_hash, length_region, length_short = Signal(), Signal(), Signal(), Signal()
        position = Signal(range(self.max_payload + 1))
        # The bank's cycles since ``position`` was addressed, a bit each: its byte is there
        # when the last is set.
        addressed = Signal(BANK_READ_LATENCY)
        flags = Signal(8, init=(COMMITTED if self.committed else 0) | (STEPPED if params.stepped else 0)
                       | (SHAPED if not params.fully_connected else 0))
        last_result = Signal(8 * (n_res + 1))  # the INFER's sequence, then the result
        have_result = Signal()
        region = Signal(struct_layout(REGION))
        target, address, count = region.target, region.address, region.count
        bad_target, bad_address = Signal(), Signal()
        too_long, length_differs = Signal(), Signal()  # a READ's rows past the payload; a LOAD's length
        region_refused, region_code = Signal(), Signal(8)  # a region's fault and its NACK code
        region_bytes = Signal(range(256 * widest_row + 1))
        region_row_bytes = Signal(range(widest_row + 1))
        # A LOAD's payload after the region, worked out before the comparison (negative where
        # the frame is shorter than a region): no adder in front of ``length_differs``.
        rows_length = Signal(range(-REGION_BYTES, (1 << len(header.length)) - REGION_BYTES))
        region_end, region_limit = Signal(len(Value.cast(address)) + 1), Signal(range(max(rows) + 1))
        # Who reads the frame bank: the handler itself (COMMIT, region headers) or a part.
        reader = Signal(range(4))
        readers = [position, decoder.read_address, mover.read_address, sender.read_address]

        m.d.comb += [self.read_bank.eq(bank), self.release_bank.eq(bank),
                     self.read_address.eq(Mux(reader == 1, readers[1], Mux(reader == 2, readers[2],
                                                                         Mux(reader == 3, readers[3], readers[0])))),
                     decoder.read_byte.eq(self.read_byte), mover.read_byte.eq(self.read_byte),
                     sender.vector.eq(vector)]
        with m.If(sender.vector_shift):
            m.d.sync += vector.eq(vector >> 8)

        # INFO: constant bytes, the model hash and flags, then (conv networks) the layer shapes,
        # from a table the sender reads as it reads the frame bank (a byte a cycle after its
        # address; block RAM, not a register and a multiplexer as wide as the reply). COMMIT
        # writes the hash into it; after a LOAD it reads as zeros. The flags byte is a register.
        fixed = len(self.info_bytes) - info_shapes_bytes(params)
        sha_at, flags_at = fixed - 33, fixed - 1
        table = bytearray(self.info_bytes)
        table[sha_at:flags_at] = self.model_sha256
        m.submodules.info = info = memory.Memory(shape=8, depth=len(table), init=list(table))
        info_read, info_write = info.read_port(), info.write_port()
        # Where the byte ``info_read`` gives stands, registered with its address; the byte
        # then goes into a register, so the sender sees the table as it sees the bank.
        at_flags, in_sha = Signal(), Signal()
        info_byte = Signal(8)
        assert BANK_READ_LATENCY == 2
        m.d.sync += info_byte.eq(Mux(at_flags, flags, Mux(in_sha & ~(flags & COMMITTED).any(), 0, info_read.data)))
        m.d.comb += [info_read.addr.eq(sender.read_address),
                     sender.read_byte.eq(Mux(reply.source == Source.TABLE, info_byte, self.read_byte))]
        m.d.sync += [at_flags.eq(info_read.addr == flags_at),
                     in_sha.eq((info_read.addr >= sha_at) & (info_read.addr < flags_at))]
        target_rows = Mux(target == Target.WEIGHTS, rows[0], rows[1])
        target_row_bytes = Mux(target == Target.WEIGHTS, row_bytes(layout, Target.WEIGHTS),
                               row_bytes(layout, Target.THRESHOLDS))

        result = self.results.payload
        reply_result = Signal(struct_layout(result_reply(params.n_layers, params.n_outputs)))
        m.d.comb += [
            reply_result.flags.eq(Mux(result.fired, RESULT_FIRED, 0) | Mux(result.error, RESULT_INPUT_ERROR, 0)),
            reply_result.decision.eq(result.decision),
            reply_result.decision_step.eq(result.decision_step),
            reply_result.cycles.eq(result.cycles),
            reply_result.input_spikes.eq(result.input_spikes),
            *(reply_result.layer_spikes[k].eq(result.layer_spikes[k]) for k in range(params.n_layers)),
            *(reply_result.output_times[j].eq(Mux(result.output_fired[j], result.output_times[j], NO_TIME))
              for j in range(params.n_outputs)),
        ]

        # A LOAD's rows change the memories: the device no longer holds a committed model.
        with m.If(self.write.valid & self.write.ready):
            m.d.sync += flags.eq(flags & ~COMMITTED)

        # A state that may decide a reply proposes it (combinationally, where it decides) and
        # takes the proposal into the reply's registers in every cycle it is in: their enable
        # is the state alone, not the decision's conditions (the reply registers are read
        # only from SEND on, so what a cycle without a decision leaves there is never used).
        proposal = Signal(reply_layout(self.max_payload))
        froms = (from_nack, from_stored, from_result, from_region)
        proposed_from = Signal(len(froms))
        proposed_nack = Signal.like(nack)

        def deciding():
            m.d.sync += [reply.eq(proposal), Cat(*froms).eq(proposed_from), nack.eq(proposed_nack)]

        def propose(kind: int, length, source: Source = Source.VECTOR, vector_from: Signal | None = None):
            m.d.comb += [proposal.header.type.eq(kind), proposal.header.length.eq(length),
                         proposal.source.eq(source), proposed_from.eq(Cat(flag is vector_from for flag in froms))]

        def propose_nack(code, of=header.type):
            m.d.comb += proposed_nack.eq(Cat(Const(code, 8) if isinstance(code, int) else code, of))
            propose(NACK, 2, vector_from=from_nack)

        def start_reply(kind: int, length, source: Source = Source.VECTOR, vector_from: Signal | None = None):
            propose(kind, length, source, vector_from)
            m.next = "SEND"

        def refuse(code, of=header.type):
            propose_nack(code, of)
            m.next = "SEND"

        # (A state with one reply it may give proposes it in every cycle, and only the move
        # to SEND waits on its condition.)

        with m.FSM():
            with m.State("IDLE"):
                deciding()
                fault = self.faults.payload
                propose_nack(fault.code, of=fault.type)
                m.d.sync += reader.eq(0)
                m.d.comb += self.faults.ready.eq(1)
                with m.If(self.faults.valid):
                    m.d.sync += [header.sequence.eq(fault.sequence), from_frame.eq(0)]
                    m.next = "SEND"
                with m.Else():
                    m.d.comb += self.frames.ready.eq(1)
                    with m.If(self.frames.valid):
                        length = self.frames.payload.header.length
                        m.d.sync += [header.eq(self.frames.payload.header), bank.eq(self.frames.payload.bank),
                                     from_frame.eq(1), position.eq(0),
                                     length_zero.eq(length == 0), length_hash.eq(length == 32),
                                     length_region.eq(length == REGION_BYTES), length_short.eq(length < REGION_BYTES)]
                        m.next = "DISPATCH"

            with m.State("DISPATCH"):
                deciding()
                kind = header.type | REPLY
                with m.Switch(header.type):
                    with m.Case(Command.INFO):
                        with m.If(~length_zero):
                            refuse(Nack.BAD_LENGTH)
                        with m.Else():
                            start_reply(kind, len(self.info_bytes), Source.TABLE)
                    with m.Case(Command.ECHO):
                        m.d.sync += reader.eq(3)
                        start_reply(kind, header.length, Source.BANK)
                    with m.Case(Command.RESET):
                        start_reply(kind, 0)
                    with m.Case(Command.READ_RESULT):
                        with m.If(~length_zero):
                            refuse(Nack.BAD_LENGTH)
                        with m.Elif(~have_result):
                            refuse(Nack.NO_RESULT)
                        with m.Else():
                            start_reply(kind, n_res + 1, vector_from=from_stored)
                    with m.Case(Command.COMMIT):
                        with m.If(~length_hash):
                            refuse(Nack.BAD_LENGTH)
                        with m.Else():
                            m.next = "COMMIT"
                    with m.Case(Command.LOAD):
                        with m.If(length_short):
                            refuse(Nack.BAD_LENGTH)
                        with m.Else():
                            m.next = "REGION"
                    with m.Case(Command.READ):
                        with m.If(~length_region):
                            refuse(Nack.BAD_LENGTH)
                        with m.Else():
                            m.next = "REGION"
                    with m.Case(Command.INFER):
                        m.d.sync += reader.eq(1)
                        m.next = "INFER"
                    with m.Default():
                        refuse(Nack.UNKNOWN_TYPE)

            # Bank bytes come BANK_READ_LATENCY cycles after their address (``position``):
            # each byte takes those cycles to address (``addressed`` filling) and one to use.
            with m.State("COMMIT"):
                deciding()
                propose(Command.COMMIT | REPLY, 0)
                m.d.sync += addressed.eq(Cat(1, addressed[:-1]))
                m.d.comb += [info_write.addr.eq(sha_at + position[:5]), info_write.data.eq(self.read_byte),
                             info_write.en.eq(addressed[-1])]
                with m.If(addressed[-1]):
                    m.d.sync += [position.eq(position + 1), addressed.eq(0)]
                    with m.If(position == 31):
                        m.d.sync += flags.eq(flags | COMMITTED)
                        m.next = "SEND"

            with m.State("REGION"):
                m.d.sync += addressed.eq(Cat(1, addressed[:-1]))
                with m.If(addressed[-1]):
                    m.d.sync += [region.as_value().word_select(position[:3], 8).eq(self.read_byte),
                                 position.eq(position + 1), addressed.eq(0)]
                    with m.If(position == REGION_BYTES - 1):
                        m.next = "ROW_BYTES"

            # The region's checks take four cycles: the target's row size; the region's end
            # and the length multiply; the comparisons; the decision (each from registers: no
            # carry chain in front of the reply's enables, no choice in front of the multiply).
            with m.State("ROW_BYTES"):
                m.d.sync += [region_row_bytes.eq(target_row_bytes), rows_length.eq(header.length - REGION_BYTES)]
                m.next = "CHECK_REGION"
            with m.State("CHECK_REGION"):
                m.d.sync += [
                    bad_target.eq(target > Target.INITIAL_POTENTIALS),
                    region_end.eq(address + count), region_limit.eq(target_rows),
                    region_bytes.eq(count * region_row_bytes),
                ]
                m.next = "CHECK_LENGTH"
            with m.State("CHECK_LENGTH"):
                m.d.sync += [too_long.eq(region_bytes > self.max_payload),
                             bad_address.eq((count == 0) | (region_end > region_limit)),
                             length_differs.eq(rows_length != region_bytes)]
                m.next = "DECIDE_REGION"
            # The first fault's code, then (from registers) the reply or the move.
            with m.State("DECIDE_REGION"):
                m.d.sync += region_refused.eq(1)
                with m.If(bad_target):
                    m.d.sync += region_code.eq(Nack.BAD_TARGET)
                with m.Elif(bad_address):
                    m.d.sync += region_code.eq(Nack.BAD_ADDRESS)
                with m.Elif(Mux(header.type == Command.READ, too_long, length_differs)):
                    m.d.sync += region_code.eq(Nack.BAD_LENGTH)
                with m.Else():
                    m.d.sync += region_refused.eq(0)
                m.next = "REGION_VERDICT"
            with m.State("REGION_VERDICT"):
                deciding()
                propose_nack(region_code)
                with m.If(region_refused):
                    m.next = "SEND"
                with m.Else():
                    m.d.sync += reader.eq(Mux(header.type == Command.READ, 0, 2))
                    m.next = "MOVE"

            with m.State("MOVE"):
                deciding()
                load = header.type == Command.LOAD
                m.d.comb += [mover.request.valid.eq(1), mover.request.payload.load.eq(load),
                             mover.request.payload.target.eq(target), mover.request.payload.address.eq(address),
                             mover.request.payload.count.eq(count)]
                with m.If(mover.request.ready):
                    with m.If(load):
                        m.next = "LOADING"
                    with m.Else():
                        start_reply(Command.READ | REPLY, region_bytes, Source.ROWS)
            with m.State("LOADING"):
                deciding()
                propose(Command.LOAD | REPLY, REGION_BYTES, vector_from=from_region)
                with m.If(mover.done):
                    m.next = "SEND"

            # INFER: the decoder checks the whole payload, then sends the spikes.
            with m.State("INFER"):
                m.d.comb += [decoder.start.valid.eq(1), decoder.start.payload.eq(header.length)]
                with m.If(decoder.start.ready):
                    m.next = "VERDICT"
            with m.State("VERDICT"):
                deciding()
                propose_nack(decoder.verdict.payload)
                m.d.comb += decoder.verdict.ready.eq(1)
                with m.If(decoder.verdict.valid):
                    with m.If(decoder.verdict.payload != 0):
                        m.next = "SEND"
                    with m.Else():
                        m.next = "RESULT"
            with m.State("RESULT"):
                deciding()
                propose(Command.INFER | REPLY, n_res, vector_from=from_result)
                m.d.comb += self.results.ready.eq(1)
                with m.If(self.results.valid):
                    packed = Cat(header.sequence, reply_result)
                    m.d.sync += [last_result.eq(packed), have_result.eq(1)]
                    m.next = "SEND"

            with m.State("SEND"):
                # (the sender reads ``vector`` from its PAYLOAD state on, cycles after this,
                # and has it shifted down a byte as each is taken)
                m.d.sync += vector.eq(Mux(from_nack, nack, 0) | Mux(from_stored, last_result, 0)
                                      | Mux(from_result, last_result[8:], 0) | Mux(from_region, region.as_value(), 0))
                m.d.comb += [sender.request.valid.eq(1), sender.request.payload.eq(reply),
                             sender.request.payload.header.sequence.eq(header.sequence)]
                with m.If(sender.request.ready):
                    m.next = "SENDING"
            with m.State("SENDING"):
                with m.If(sender.done):
                    m.next = "DONE"
            with m.State("DONE"):
                # A core on the stepped schedule answers an INFER at its decision, while the
                # decoder may still be handing it the rest of the spikes (which it drops): the
                # bank they are read from is released once the decoder is through.
                with m.If(decoder.start.ready):
                    m.d.comb += self.release.eq(from_frame)
                    m.next = "IDLE"
        return m
