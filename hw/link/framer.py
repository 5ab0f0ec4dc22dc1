"""Frames on the byte stream in gateware: the receiver and the transmitter of
docs/protocol.md (start byte, stuffing, header, payload, CRC-16/IBM-3740 little-endian).

The receiver keeps payloads in two banks of ``max_payload`` bytes, so a frame can arrive
while the previous one is still being carried out; a frame that finds both banks taken is
answered with BUSY. Faults carry what a NACK needs.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import crc, data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.link.crc import CATALOG_NAME
from firstspike.sw.link.fields import HEADER
from firstspike.sw.link.framing import ESCAPE, FLAG, HEADER_BYTES
from firstspike.sw.link.messages import Nack

from ..blockram import DP16KD_ROWS, RegisteredBlockRAM, fabric_family

__all__ = ["FrameReceiver", "FrameTransmitter", "header_layout", "fault_layout", "BANK_READ_LATENCY"]

#: Cycles from a bank address to its byte on ``read_data``: the block RAM's read, then a
#: register of the fabric (the ECP5's block gives its data 6 ns after the clock: the reader's
#: logic behind it would not fit a 10 ns cycle).
BANK_READ_LATENCY = 2

CRC = getattr(crc.catalog, CATALOG_NAME)(8)


def header_layout(max_payload: int) -> data.StructLayout:
    """A frame's header (sw/link/fields.py's ``HEADER``) inside the gateware: the length
    only as wide as ``max_payload`` needs (the receiver refuses longer frames)."""
    return data.StructLayout({f.name: range(max_payload + 1) if f.name == "length" else 8 * f.size
                              for f in HEADER.fields})


def fault_layout() -> data.StructLayout:
    return data.StructLayout({"code": 8, "type": 8, "sequence": 8})


class FrameReceiver(wiring.Component):
    """Bytes in; whole frames out (``frames``: header and payload bank) or ``faults``.

    Ports
    -----
    bytes_in:
        Received bytes (always taken).
    frames:
        A frame whose CRC matched; its payload is in bank ``bank`` until ``release`` is
        pulsed with that bank.
    read_bank, read_address, read_data:
        A read port on the payload banks: the byte :data:`BANK_READ_LATENCY` cycles after
        its address.
    faults:
        ``code`` (:class:`Nack`), and the type and sequence as far as they were received.
        One is held; another that comes before it is taken is dropped (the host times out).
    line_error:
        A byte was lost on the line (the UART saw no stop bit, or could not hand a byte
        on): the frame in progress, if any, ends with a ``FRAMING`` fault, as a bad escape
        does; outside a frame nothing happens. Taken in the first cycle without a byte.
    """

    def __init__(self, max_payload: int, idle_timeout: int):
        self.max_payload, self.idle_timeout = max_payload, idle_timeout
        header = header_layout(max_payload)
        super().__init__({
            "bytes_in": In(stream.Signature(8)),
            "frames": Out(stream.Signature(data.StructLayout({"header": header, "bank": 1}))),
            "release": In(1),
            "release_bank": In(1),
            "read_bank": In(1),
            "read_address": In(range(max(2, max_payload))),
            "read_data": Out(8),
            "faults": Out(stream.Signature(fault_layout())),
            "line_error": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        depth = max(2, self.max_payload)
        # Each bank a power of two long, so a bank's address is its number above the byte's
        # (no adder in front of the block RAM; the same blocks: 2 x 1,402 bytes take two
        # 2,048-byte DP16KD as 2 x 2,048 do).
        bank_bits = (depth - 1).bit_length()
        m.submodules.crc = checker = CRC.create()
        write = SimpleNamespace(addr=Signal(bank_bits + 1, name="bank_write_addr"),
                                data=Signal(8, name="bank_write_data"), en=Signal(name="bank_write_en"))
        if fabric_family(platform) == "ecp5" and (1 << bank_bits) <= DP16KD_ROWS:
            # A block RAM a bank, read through the block's own output register (its data
            # then leaves early in the cycle), the bank chosen behind it.
            rams = [RegisteredBlockRAM(8, 1 << bank_bits) for _ in range(2)]
            chosen = Signal(BANK_READ_LATENCY)  # read_bank, on its way with the read
            m.d.sync += chosen.eq(Cat(self.read_bank, chosen[:-1]))
            for number, ram in enumerate(rams):
                m.submodules[f"bank{number}"] = ram
                m.d.comb += [ram.read_addr.eq(self.read_address[:bank_bits]),
                             ram.write_addr.eq(write.addr[:bank_bits]), ram.write_data.eq(write.data),
                             ram.write_en.eq(write.en & (write.addr[bank_bits] == number))]
            m.d.comb += self.read_data.eq(Mux(chosen[-1], rams[1].read_data, rams[0].read_data))
        else:
            m.submodules.banks = banks = memory.Memory(shape=unsigned(8), depth=2 << bank_bits, init=[])
            read, port = banks.read_port(), banks.write_port()
            m.d.comb += [read.addr.eq(Cat(self.read_address[:bank_bits], self.read_bank)),
                         port.addr.eq(write.addr), port.data.eq(write.data), port.en.eq(write.en)]
            m.d.sync += self.read_data.eq(read.data)

        busy = Signal(2)  # banks holding a frame not yet released
        with m.If(self.release):
            m.d.sync += busy.bit_select(self.release_bank, 1).eq(0)

        byte = Signal(8)  # the destuffed byte, with ``have``
        escaped = Signal()
        in_frame = Signal()
        position = Signal(range(depth + 7))  # bytes of this frame so far, destuffed
        header = Signal(header_layout(self.max_payload))
        crc_low_ok, crc_high_ok = Signal(), Signal()  # each CRC byte as received equals the checker's
        length_low = Signal(8)
        bank = Signal()
        bank_free = Signal()
        silence = Signal(range(self.idle_timeout + 1))
        ending = Signal()  # the frame's last byte came last cycle: its checks are due

        # A fault is noted in registers, one flag a kind, and offered the cycle after: what
        # decides a fault (the byte, the position, the CRC) then ends in a register, not in
        # a priority chain into the enables of the held fault. The checks below exclude each
        # other (at most one fault a cycle), so the code is the OR of the noted ones.
        kinds = (Nack.FRAMING, Nack.BAD_LENGTH, Nack.BAD_CRC, Nack.BUSY)
        raised = {kind: Signal(name=f"raised_{kind.name.lower()}") for kind in kinds}
        noted = {kind: Signal(name=f"noted_{kind.name.lower()}") for kind in kinds}
        noted_type, noted_sequence = Signal(8), Signal(8)
        m.d.sync += [*(noted[kind].eq(raised[kind]) for kind in kinds),
                     noted_type.eq(Mux(position > 0, header.type, 0)),
                     noted_sequence.eq(Mux(position > 1, header.sequence, 0))]
        any_noted = Cat(*noted.values()).any()
        noted_code = 0
        for kind in kinds:
            noted_code = noted_code | Mux(noted[kind], int(kind), 0)
        with m.If(self.faults.ready):
            m.d.sync += self.faults.valid.eq(0)
        with m.If(any_noted & ~(self.faults.valid & ~self.faults.ready)):
            m.d.sync += [self.faults.valid.eq(1), self.faults.payload.code.eq(noted_code),
                         self.faults.payload.type.eq(noted_type), self.faults.payload.sequence.eq(noted_sequence)]
        # Every frame waiting here holds a bank, so with two banks two places are enough.
        frame_layout = data.StructLayout({"header": header_layout(self.max_payload), "bank": 1})
        m.submodules.waiting = waiting = fifo.SyncFIFOBuffered(width=frame_layout.size, depth=2)
        m.d.comb += [self.frames.valid.eq(waiting.r_rdy), self.frames.payload.eq(waiting.r_data),
                     waiting.r_en.eq(self.frames.ready)]

        # Every byte is taken into a register first, with what kind of byte it is (a flag,
        # an escape, an escaped flag or escape): the receiver's decisions then start from
        # flip-flops beside them, not from the UART across the die.
        m.d.comb += self.bytes_in.ready.eq(1)
        incoming, value = Signal(), Signal(8)
        is_flag, is_escape, escapes_ok = Signal(), Signal(), Signal()
        arriving = self.bytes_in.payload
        m.d.sync += [incoming.eq(self.bytes_in.valid), value.eq(arriving),
                     is_flag.eq(arriving == FLAG), is_escape.eq(arriving == ESCAPE),
                     escapes_ok.eq(((arriving ^ 0x20) == FLAG) | ((arriving ^ 0x20) == ESCAPE))]
        with m.If(incoming):
            m.d.sync += silence.eq(0)
        with m.Elif(in_frame & (silence == self.idle_timeout)):
            m.d.sync += in_frame.eq(0)  # dropped without a reply
        with m.Elif(in_frame):
            m.d.sync += silence.eq(silence + 1)

        # The bytes destuffed into registers: the frame logic below starts from one event a
        # cycle (a FLAG, a frame byte, a bad escape, a lost byte), never from the escape
        # decoding. ``escaped`` is kept outside frames too: every frame starts with a FLAG,
        # which clears it.
        start, have, bad_escape, loss = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [start.eq(0), have.eq(0), bad_escape.eq(0), loss.eq(0)]
        with m.If(incoming & is_flag):
            m.d.sync += [start.eq(1), escaped.eq(0)]
        with m.Elif(incoming & escaped):
            m.d.sync += escaped.eq(0)
            with m.If(escapes_ok):
                m.d.sync += [byte.eq(value ^ 0x20), have.eq(1)]
            with m.Else():
                m.d.sync += bad_escape.eq(1)
        with m.Elif(incoming & is_escape):
            m.d.sync += escaped.eq(1)
        with m.Elif(incoming):
            m.d.sync += [byte.eq(value), have.eq(1)]
        lost = Signal()  # a line error not yet handed on as ``loss``
        with m.If(self.line_error):
            m.d.sync += lost.eq(1)
        with m.Elif(lost & ~incoming):  # after the bytes before it, before those after it
            m.d.sync += [lost.eq(0), loss.eq(1)]

        with m.If(start):
            with m.If(in_frame & (position != 0)):
                m.d.comb += raised[Nack.FRAMING].eq(1)
            m.d.sync += [in_frame.eq(1), position.eq(0)]
        with m.Elif(in_frame & (bad_escape | loss)):
            m.d.comb += raised[Nack.FRAMING].eq(1)
            m.d.sync += in_frame.eq(0)
        accepted = Signal()  # a frame byte of the frame in progress
        m.d.comb += accepted.eq(have & in_frame)

        # Where ``position`` stands, in registers that move with it (as the transmitter's
        # do): a byte's place in the frame is then a flip-flop beside it, not a comparison
        # of ``position`` behind the escape decoding. One of them is set while in a frame.
        at_header = Signal(HEADER_BYTES, init=1)  # one-hot: the header byte at ``position``
        in_payload, at_crc_low, at_crc_high = Signal(), Signal(), Signal()
        payload_end = Signal(range(HEADER_BYTES + self.max_payload + 1))  # HEADER_BYTES + length, once known
        # ``position`` is the payload's last byte: a register set as the byte before it (or the
        # header's last) is taken, so no adder and comparison stand in front of the byte's
        # enables.
        last_payload = Signal()
        m.d.comb += [
            checker.data.eq(byte),
            checker.start.eq(start),
            checker.valid.eq(accepted & (at_header.any() | in_payload)),
            write.addr.eq(Cat((position - HEADER_BYTES)[:bank_bits], bank)),
            write.data.eq(byte),
            write.en.eq(accepted & bank_free & in_payload),
        ]
        with m.If(start):
            m.d.sync += [at_header.eq(1), in_payload.eq(0), at_crc_low.eq(0), at_crc_high.eq(0)]
        with m.Elif(accepted):
            m.d.sync += [position.eq(position + 1), at_header.eq(at_header << 1)]
            fields = {HEADER.offset("type"): header.type, HEADER.offset("sequence"): header.sequence,
                      HEADER.offset("length"): length_low}
            for offset, field in fields.items():
                with m.If(at_header[offset]):
                    m.d.sync += field.eq(byte)
            assert HEADER.offset("length") + 1 == HEADER_BYTES - 1  # the length ends the header
            with m.If(at_header[HEADER_BYTES - 1]):
                length = Cat(length_low, byte)
                with m.If(length > self.max_payload):
                    m.d.comb += raised[Nack.BAD_LENGTH].eq(1)
                    m.d.sync += in_frame.eq(0)
                with m.Else():
                    m.d.sync += [header.length.eq(length), payload_end.eq(HEADER_BYTES + length),
                                 last_payload.eq(length == 1),
                                 bank.eq(Mux(busy[0], 1, 0)), bank_free.eq(~busy.all()),
                                 in_payload.eq(length != 0), at_crc_low.eq(length == 0)]
            with m.If(in_payload):
                m.d.sync += last_payload.eq(position + 2 == payload_end)
            with m.If(in_payload & last_payload):
                m.d.sync += [in_payload.eq(0), at_crc_low.eq(1)]
            with m.If(at_crc_low):
                m.d.sync += [crc_low_ok.eq(byte == checker.crc[:8]), at_crc_low.eq(0), at_crc_high.eq(1)]
            with m.If(at_crc_high):
                m.d.sync += [in_frame.eq(0), crc_high_ok.eq(byte == checker.crc[8:]), ending.eq(1), at_crc_high.eq(0)]
        # Each CRC byte is compared with the checker's (complete once the payload has passed)
        # as it arrives; the frame's end is decided the cycle after its last byte, from the
        # two flags and the bank's, so no 16-bit comparison stands in front of the hand-on.
        with m.If(ending):
            m.d.sync += ending.eq(0)
            with m.If(~(crc_low_ok & crc_high_ok)):
                m.d.comb += raised[Nack.BAD_CRC].eq(1)
            with m.Elif(~bank_free):
                m.d.comb += raised[Nack.BUSY].eq(1)
            with m.Else():
                m.d.comb += [waiting.w_data.eq(Cat(header, bank)), waiting.w_en.eq(1)]
                m.d.sync += busy.bit_select(bank, 1).eq(1)

        return m


def _stuffed(byte: Value) -> Value:
    """Whether ``byte`` goes out escaped (two bytes)."""
    return (byte == FLAG) | (byte == ESCAPE)


def _one_hot_choice(select: Value, choices: list[Value]) -> Value:
    """The choice whose bit of one-hot ``select`` is set (0 if none): an AND-OR, no decoder."""
    chosen = Const(0, 8)
    for i, choice in enumerate(choices):
        chosen = chosen | Mux(select[i], choice, 0)
    return chosen


class FrameTransmitter(wiring.Component):
    """Header in (``frames``), then exactly ``length`` bytes on ``payload``; stuffed
    frame bytes with the CRC out on ``bytes_out``."""

    def __init__(self, max_payload: int):
        self.max_payload = max_payload
        super().__init__({
            "frames": In(stream.Signature(header_layout(max_payload))),
            "payload": In(stream.Signature(8)),
            "bytes_out": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = generator = CRC.create()
        header = Signal(header_layout(self.max_payload))
        byte = Signal(8)          # the next frame byte, before stuffing
        byte_valid = Signal()
        take_byte = Signal()
        pending_escape = Signal()  # the escaped byte's second half is due
        second = Signal(8)
        crc_value = Signal(16)
        # Where the frame stands, in registers that move from one part to the next as bytes
        # go (the header byte one-hot, the payload with a count of its bytes left, the CRC's
        # two bytes, the end): the byte to send is an AND-OR of registered choices, and no
        # position is compared with the frame's length.
        in_payload, at_crc_low, at_crc_high, at_end = Signal(), Signal(), Signal(), Signal()
        at_header = Signal(HEADER_BYTES)  # one-hot: the header byte being sent; 0 after it
        has_payload = Signal()  # length != 0
        payload_left = Signal(range(self.max_payload + 1))  # payload bytes not yet taken
        payload_last = Signal()  # payload_left == 1
        header_bytes = [Value.cast(getattr(header, field.name))[8 * i:8 * i + 8]
                        for field in HEADER.fields for i in range(field.size)]

        stuff = Signal()  # ``byte`` goes out escaped: tested on each source, then chosen
        # The CRC takes each header and payload byte a cycle after it is sent, from registers
        # (not behind the choice of the byte); its low byte waits for the last one.
        crc_byte, crc_take = Signal(8), Signal()
        m.d.sync += [crc_byte.eq(byte), crc_take.eq(take_byte & in_payload)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.frames.ready.eq(~self.bytes_out.valid | self.bytes_out.ready)
                with m.If(self.frames.valid & self.frames.ready):
                    length = self.frames.payload.length
                    m.d.sync += [header.eq(self.frames.payload), has_payload.eq(length != 0),
                                 payload_left.eq(length), payload_last.eq(length == 1),
                                 in_payload.eq(1), at_crc_low.eq(0), at_crc_high.eq(0), at_end.eq(0), at_header.eq(1),
                                 self.bytes_out.valid.eq(1), self.bytes_out.payload.eq(FLAG)]
                    m.d.comb += generator.start.eq(1)
                    m.next = "BODY"
            with m.State("BODY"):
                with m.If(at_header.any()):
                    m.d.comb += [byte.eq(_one_hot_choice(at_header, header_bytes)), byte_valid.eq(1),
                                 stuff.eq(Cat(*(at_header[i] & _stuffed(b) for i, b in enumerate(header_bytes))).any())]
                with m.Elif(in_payload):
                    m.d.comb += [byte.eq(self.payload.payload), byte_valid.eq(self.payload.valid),
                                 stuff.eq(_stuffed(self.payload.payload))]
                with m.Elif(at_crc_low):
                    m.d.comb += [byte.eq(generator.crc[:8]), byte_valid.eq(~crc_take),
                                 stuff.eq(_stuffed(generator.crc[:8]))]
                with m.Else():
                    m.d.comb += [byte.eq(crc_value[8:]), byte_valid.eq(1), stuff.eq(_stuffed(crc_value[8:]))]
                out_free = ~self.bytes_out.valid | self.bytes_out.ready
                # Ready for a payload byte from registers alone, not from its valid: the
                # reply buffer's valid runs into the byte's choice, not back out to its read.
                m.d.comb += self.payload.ready.eq(out_free & ~pending_escape & ~at_header.any() & in_payload)
                with m.If(out_free & pending_escape):
                    m.d.sync += [self.bytes_out.valid.eq(1), self.bytes_out.payload.eq(second),
                                 pending_escape.eq(0)]
                    with m.If(at_end):
                        m.next = "DRAIN"
                with m.Elif(out_free & byte_valid):
                    m.d.comb += take_byte.eq(1)
                    m.d.sync += [self.bytes_out.valid.eq(1), self.bytes_out.payload.eq(Mux(stuff, ESCAPE, byte)),
                                 pending_escape.eq(stuff), second.eq(byte ^ 0x20), at_header.eq(at_header << 1)]
                    in_header, header_last = at_header.any(), at_header[-1]
                    m.d.sync += [
                        in_payload.eq(Mux(in_header, ~header_last | has_payload, in_payload & ~payload_last)),
                        at_crc_low.eq(Mux(in_header, header_last & ~has_payload, in_payload & payload_last)),
                        at_crc_high.eq(at_crc_low), at_end.eq(at_crc_high)]
                    with m.If(~in_header & in_payload):
                        m.d.sync += [payload_left.eq(payload_left - 1), payload_last.eq(payload_left == 2)]
                    with m.If(at_crc_low):
                        m.d.sync += crc_value.eq(generator.crc)
                    # At the CRC's high byte ``byte`` is ``crc_value[8:]``: its stuffing test
                    # from the register, so the state's enable does not wait for the choice.
                    with m.If(at_crc_high & ~_stuffed(crc_value[8:])):
                        m.next = "DRAIN"
                with m.Elif(self.bytes_out.ready):
                    m.d.sync += self.bytes_out.valid.eq(0)
            with m.State("DRAIN"):
                with m.If(self.bytes_out.ready):
                    m.d.sync += self.bytes_out.valid.eq(0)
                    m.next = "IDLE"
        m.d.comb += [
            generator.data.eq(crc_byte),
            generator.valid.eq(crc_take),
        ]
        return m
