"""An INFER's spike code (sw/link/spikecode.py) from a received frame to the core's events."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from firstspike.sw.link.messages import Nack
from firstspike.sw.link.spikecode import K_BITS, steps_bits
from firstspike.sw.params import CoreParams

from ..blockram import RegisteredBlockRAM, fabric_family
from ..core import event_layout
from .framer import BANK_READ_LATENCY

__all__ = ["SpikeCodeDecoder"]


class SpikeCodeDecoder(wiring.Component):
    """Checks a payload of spike code in full, then sends its spikes to the core.

    A refused input never starts an inference: the first walk over the payload only checks
    it (the step count, every input below ``n_inputs`` and not spiking twice, the bits
    ending where the code does); the ``verdict`` is 0 or the NACK code of the first fault.
    After a 0 the second walk sends the spikes in order on ``events``, then the ``end``
    beat. Bit-serial: a bit of code a cycle, 8 × clock/baud times the line's rate.

    A bit per input remembers which spiked in the check walk; the second walk clears the
    bits it set (a refused payload's walk stops at the last one), and a reset clears them
    all before the first ``start`` is taken.

    Ports
    -----
    start:
        The payload's length in bytes; taken when idle.
    verdict:
        0, or the code of the first fault.
    read_address, read_byte:
        The frame bank that holds the payload: a byte BANK_READ_LATENCY cycles after its
        address.
    events:
        The core's input events.
    """

    def __init__(self, params: CoreParams, max_payload: int):
        self.params, self.max_payload = params, max_payload
        super().__init__({
            "start": In(stream.Signature(range(max_payload + 1))),
            "verdict": Out(stream.Signature(8)),
            "read_address": Out(range(max(2, max_payload + 1))),
            "read_byte": In(8),
            "events": Out(stream.Signature(event_layout(params))),
        })

    def elaborate(self, platform):
        m = Module()
        params = self.params
        n, t = params.n_inputs, params.time_steps
        cap = n + 1  # a count or a run of ones this long is out of range already
        widest = max(K_BITS, steps_bits(t), (1 << K_BITS) - 1)  # the low bits of any field

        # A bit per input; a read's bit comes two cycles after its address, through a
        # register (on the ECP5 the block RAM's own: its output is 5.8 ns late).
        seen_r, seen_w = SimpleNamespace(addr=Signal(range(n))), SimpleNamespace(
            addr=Signal(range(n)), data=Signal(), en=Signal())
        repeat = Signal()  # the seen bit of the spike GAP_READ addressed, in MARKED
        if fabric_family(platform) == "ecp5":
            m.submodules.seen = seen = RegisteredBlockRAM(1, n)
            m.d.comb += [seen.read_addr.eq(seen_r.addr), seen.write_addr.eq(seen_w.addr),
                         seen.write_data.eq(seen_w.data), seen.write_en.eq(seen_w.en), repeat.eq(seen.read_data)]
        else:
            m.submodules.seen = seen = Memory(shape=1, depth=n, init=[])
            read, write = seen.read_port(), seen.write_port()
            m.d.comb += [read.addr.eq(seen_r.addr), write.addr.eq(seen_w.addr), write.data.eq(seen_w.data),
                         write.en.eq(seen_w.en)]
            m.d.sync += repeat.eq(read.data)

        # The bits: ``byte`` holds the unread bits of the byte being read, shifted down as
        # they are read (the next bit is a flip-flop, not a choice by ``at``), ``at`` counts
        # them; the bank is addressed with the byte after it, which stays put for the eight
        # bits before use.
        length = Signal(range(self.max_payload + 1))
        next_byte = Signal(range(self.max_payload + 1))
        last_byte = Signal()  # next_byte == length: no byte after ``byte``
        byte = Signal(8)
        at = Signal(3)
        have = Signal()
        bit = byte[0]
        m.d.comb += self.read_address.eq(next_byte)

        # A value: a run of ones (Rice codes only), a zero, then ``width`` low bits. It is
        # summed as the bits come, ``unit`` = 2 ** width a one and ``low_unit`` the next low
        # bit's weight, so no shift by ``width`` stands between the last bit and what uses
        # the value. What decides the next bit's move is in registers: whether the run is at
        # its cap, whether there are low bits, how many are left.
        ones = Signal(range(cap + 1))
        ones_full = Signal()  # ones == cap
        in_low = Signal()
        no_low = Signal()     # width == 0
        left = Signal(range(widest + 1))  # low bits after the next one
        unit = Signal(1 << widest)
        low_unit = Signal(widest)
        k_count, k_gap = Signal(K_BITS), Signal(K_BITS)
        value = Signal(range((cap << ((1 << K_BITS) - 1)) + (1 << widest)))
        low = value[:widest]

        steps = Signal(range(1 << steps_bits(t)))
        step = Signal.like(steps)
        count = Signal(range(cap + 1))
        base = Signal(range(n + 1))
        spike = Signal(range(n + (1 << len(value))))
        # The seen bits are read at ``spike`` in every cycle (MARKED uses what GAP_READ read):
        # the read address is then a register, not a choice behind the state decoding.
        m.d.comb += seen_r.addr.eq(spike)
        # SEND clears the sent input's bit the cycle after (from registers: not behind the
        # events' ready); no MARK or CLEAR comes that close behind a SEND.
        unmark = Signal()
        m.d.sync += unmark.eq(0)
        index = Signal(range(n))
        bad_code = Signal(8)
        refused = Signal()  # bad_code != 0, a register of its own
        checking = Signal()
        marked = Signal(range(n + 1))  # inputs marked by the check walk
        # Marks the second walk has yet to clear, and whether that is one (a register: a
        # refused payload's walk stops at its last mark, a decision in SEND).
        uncleared = Signal(range(n + 1))
        one_uncleared = Signal()
        sweep = Signal(range(n + 1))

        def consume():
            with m.If(at == 7):
                m.d.sync += [at.eq(0), byte.eq(self.read_byte), next_byte.eq(next_byte + 1),
                             last_byte.eq(next_byte + 1 == length)]
                with m.If(last_byte):
                    m.d.sync += have.eq(0)
            with m.Else():
                m.d.sync += [at.eq(at + 1), byte.eq(byte >> 1)]

        def start_value(bits, *, rice: bool):
            m.d.sync += [ones.eq(0), ones_full.eq(0), value.eq(0), in_low.eq(~rice), no_low.eq(bits == 0),
                         left.eq(bits - 1), unit.eq(1 << bits), low_unit.eq(1)]

        def read_value(then: str):
            """A bit of the value being read; ``then`` once it is whole (in ``value``)."""
            with m.If(~have):
                m.d.sync += [bad_code.eq(Nack.BAD_CODE), refused.eq(1)]
                m.next = "WALKED"
            with m.Else():
                consume()
                with m.If(~in_low):
                    with m.If(bit):
                        with m.If(~ones_full):
                            m.d.sync += [ones.eq(ones + 1), ones_full.eq(ones == cap - 1), value.eq(value + unit)]
                    with m.Elif(no_low):
                        m.next = then
                    with m.Else():
                        m.d.sync += in_low.eq(1)
                with m.Else():
                    m.d.sync += [value.eq(value | Mux(bit, low_unit, 0)), low_unit.eq(low_unit << 1),
                                 left.eq(left - 1)]
                    with m.If(left == 0):
                        m.next = then

        def fail(code):
            m.d.sync += [bad_code.eq(code), refused.eq(1)]
            m.next = "WALKED"

        with m.FSM(init="CLEAR"):
            with m.State("CLEAR"):
                m.d.comb += [seen_w.addr.eq(sweep), seen_w.data.eq(0), seen_w.en.eq(1)]
                m.d.sync += sweep.eq(sweep + 1)
                with m.If(sweep == n - 1):
                    m.next = "IDLE"
            with m.State("IDLE"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    m.d.sync += [length.eq(self.start.payload), bad_code.eq(0), refused.eq(0), checking.eq(1),
                                 marked.eq(0), next_byte.eq(0), last_byte.eq(self.start.payload == 0)]
                    m.next = "BEGIN"
            # Each walk: ``next_byte = 0`` is addressed in BEGIN, the bank answers it in
            # ADDRESSED (BANK_READ_LATENCY cycles on), the first byte is taken in FIRST.
            assert BANK_READ_LATENCY == 2
            with m.State("BEGIN"):
                m.d.sync += [uncleared.eq(marked), one_uncleared.eq(marked == 1), step.eq(0)]
                m.next = "ADDRESSED"
            with m.State("ADDRESSED"):
                m.next = "FIRST"
            with m.State("FIRST"):
                m.d.sync += [byte.eq(self.read_byte), at.eq(0), have.eq(length != 0), next_byte.eq(1),
                             last_byte.eq(length == 1)]
                start_value(K_BITS, rice=False)
                m.next = "K_COUNT"
            with m.State("K_COUNT"):
                read_value("K_COUNT_READ")
            with m.State("K_COUNT_READ"):
                m.d.sync += k_count.eq(low)
                start_value(K_BITS, rice=False)
                m.next = "K_GAP"
            with m.State("K_GAP"):
                read_value("K_GAP_READ")
            with m.State("K_GAP_READ"):
                m.d.sync += k_gap.eq(low)
                start_value(steps_bits(t), rice=False)
                m.next = "STEPS"
            with m.State("STEPS"):
                read_value("STEPS_READ")
            with m.State("STEPS_READ"):
                m.d.sync += steps.eq(low)
                with m.If(low > t):
                    fail(Nack.TIME_RANGE)
                with m.Else():
                    m.next = "STEP"
            with m.State("STEP"):
                m.d.sync += base.eq(0)
                start_value(k_count, rice=True)
                with m.If(step == steps):
                    m.next = "WALKED"
                with m.Else():
                    m.next = "COUNT"
            with m.State("COUNT"):
                read_value("COUNT_READ")
            with m.State("COUNT_READ"):
                m.d.sync += count.eq(Mux(value > cap, cap, value))
                m.next = "SPIKE"
            with m.State("SPIKE"):
                start_value(k_gap, rice=True)
                with m.If(count == 0):
                    m.d.sync += step.eq(step + 1)
                    m.next = "STEP"
                with m.Else():
                    m.d.sync += count.eq(count - 1)
                    m.next = "GAP"
            with m.State("GAP"):
                read_value("GAP_SUM")
            with m.State("GAP_SUM"):  # (its own cycle: the sum's carry, then the range's)
                m.d.sync += spike.eq(base + value)
                m.next = "GAP_READ"
            with m.State("GAP_READ"):
                m.d.sync += [index.eq(spike), base.eq(spike + 1)]
                with m.If(spike >= n):
                    fail(Nack.INDEX_RANGE)
                with m.Elif(checking):
                    m.next = "MARK"
                with m.Else():
                    m.next = "SEND"
            with m.State("MARK"):
                # The bit is set whether or not it was (a repeat's is already); what GAP_READ
                # read comes through its register and decides in the next cycle.
                m.d.comb += [seen_w.addr.eq(index), seen_w.data.eq(1), seen_w.en.eq(1)]
                m.next = "MARKED"
            with m.State("MARKED"):
                with m.If(repeat):
                    fail(Nack.SPIKE_REPEAT)
                with m.Else():
                    m.d.sync += marked.eq(marked + 1)
                    m.next = "SPIKE"
            # The second walk clears each bit the first set; it sends only after a verdict of 0.
            with m.State("SEND"):
                m.d.comb += [self.events.valid.eq(~refused), self.events.payload.index.eq(index),
                             self.events.payload.step.eq(step)]
                with m.If(refused | self.events.ready):
                    m.d.sync += [unmark.eq(1), uncleared.eq(uncleared - 1), one_uncleared.eq(uncleared == 2)]
                    m.next = "SPIKE"
                    with m.If(refused & one_uncleared):
                        m.next = "IDLE"
            with m.State("WALKED"):
                # Bits left: the rest of ``byte`` (none if ``at`` is 0: all eight), then the bank's.
                spare = (at == 0) | ~last_byte | (byte != 0)
                with m.If(checking & ~refused & have & spare):
                    m.d.sync += [bad_code.eq(Nack.BAD_CODE), refused.eq(1)]
                m.next = "VERDICT"
                with m.If(~checking & ~refused):
                    m.next = "END"
                with m.Elif(~checking):  # (a refused payload's walk ends at its last mark, this only
                    m.next = "IDLE"      # if the bank changed under it)
            with m.State("VERDICT"):
                m.d.comb += [self.verdict.valid.eq(1), self.verdict.payload.eq(bad_code)]
                with m.If(self.verdict.ready):
                    m.d.sync += [checking.eq(0), next_byte.eq(0), last_byte.eq(length == 0)]
                    m.next = "BEGIN"
                    with m.If(refused & (marked == 0)):
                        m.next = "IDLE"
            with m.State("END"):
                m.d.comb += [self.events.valid.eq(1), self.events.payload.end.eq(1)]
                with m.If(self.events.ready):
                    m.next = "IDLE"
        with m.If(unmark):  # (``index`` holds the sent input until GAP_READ, states later)
            m.d.comb += [seen_w.addr.eq(index), seen_w.data.eq(0), seen_w.en.eq(1)]
        return m
