"""An INFER's spike code (sw/link/spikecode.py) from a received frame to the core's events."""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.link.messages import Nack
from firstspike.sw.link.spikecode import NEXT_STEP, SKIP
from firstspike.sw.params import CoreParams

from ..core import event_layout

__all__ = ["SpikeCodeDecoder"]


class SpikeCodeDecoder(wiring.Component):
    """Checks a payload of spike code in full, then sends its spikes to the core.

    A refused input never starts an inference: the first pass only checks every token
    (each spike's index below ``n_inputs``, its step below ``T``); the ``verdict`` is 0 or
    the NACK code of the first bad token. After a 0 the second pass sends the spikes in
    order on ``events``, then the ``end`` beat.

    Ports
    -----
    start:
        The payload's length in bytes; taken when idle.
    verdict:
        0, or the code of the first bad token.
    read_address, read_byte:
        The frame bank that holds the payload: a byte one cycle after its address.
    events:
        The core's input events.
    """

    def __init__(self, params: CoreParams, max_payload: int):
        self.params, self.max_payload = params, max_payload
        super().__init__({
            "start": In(stream.Signature(range(max_payload + 1))),
            "verdict": Out(stream.Signature(8)),
            "read_address": Out(range(max(2, max_payload))),
            "read_byte": In(8),
            "events": Out(stream.Signature(event_layout(params))),
        })

    def elaborate(self, platform):
        m = Module()
        params = self.params
        length = Signal(range(self.max_payload + 1))
        position = Signal(range(self.max_payload + 1))
        step = Signal(range(params.time_steps + 2))
        base = Signal(range(params.n_inputs + 256))
        bad_code = Signal(8)
        checking = Signal()
        token = self.read_byte
        index = base + token
        m.d.comb += self.read_address.eq(position)

        # Bank bytes come one cycle after their address: each loop spends a cycle on the
        # address and uses the byte in the next.
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    m.d.sync += [length.eq(self.start.payload), position.eq(0), step.eq(0), base.eq(0),
                                 bad_code.eq(0), checking.eq(1)]
                    m.next = "WALK"
            # Two walks over the same bytes: ``checking`` (only the verdict), then sending.
            with m.State("WALK"):
                with m.If(position == length):
                    m.next = "WALKED"
                with m.Else():
                    m.next = "WALK_BYTE"
            with m.State("WALKED"):
                with m.If(checking):
                    m.d.comb += [self.verdict.valid.eq(1), self.verdict.payload.eq(bad_code)]
                    with m.If(self.verdict.ready):
                        m.d.sync += [position.eq(0), step.eq(0), base.eq(0), checking.eq(0)]
                        m.next = "WALK"
                        with m.If(bad_code != 0):
                            m.next = "IDLE"
                with m.Else():
                    m.next = "END"
            with m.State("WALK_BYTE"):
                spike = (token != NEXT_STEP) & (token != SKIP)
                taken = checking | ~spike | self.events.ready
                m.d.comb += [self.events.valid.eq(~checking & spike), self.events.payload.index.eq(index),
                             self.events.payload.step.eq(step)]
                with m.If(taken):
                    m.d.sync += position.eq(position + 1)
                    m.next = "WALK"
                    with m.If(token == NEXT_STEP):
                        m.d.sync += [step.eq(Mux(step > params.time_steps, step, step + 1)), base.eq(0)]
                    with m.Elif(token == SKIP):
                        m.d.sync += base.eq(Mux(base >= params.n_inputs, base, base + 254))
                    with m.Else():
                        m.d.sync += base.eq(Mux(index >= params.n_inputs, base, index + 1))
                        with m.If(checking & (bad_code == 0)):
                            with m.If(index >= params.n_inputs):
                                m.d.sync += bad_code.eq(Nack.INDEX_RANGE)
                            with m.Elif(step >= params.time_steps):
                                m.d.sync += bad_code.eq(Nack.TIME_RANGE)
            with m.State("END"):
                m.d.comb += [self.events.valid.eq(1), self.events.payload.end.eq(1)]
                with m.If(self.events.ready):
                    m.next = "IDLE"
        return m
