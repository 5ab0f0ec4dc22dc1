"""An 8N1 UART: one start bit, eight data bits (least significant first), one stop bit.

``divisor`` is the number of clock cycles per bit (clock / baud); the receiver samples each
bit in its middle, so ``divisor`` must be at least 4. Both sides are streams of bytes.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import cdc, stream, wiring
from amaranth.lib.wiring import In, Out

from ..refusal import refuse

__all__ = ["UARTTx", "UARTRx", "MIN_DIVISOR"]

MIN_DIVISOR = 4


def _check_divisor(component, divisor: int) -> None:
    if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        refuse(component, ValueError(f"divisor (clock cycles per bit) must be an integer of at least "
                                     f"{MIN_DIVISOR}, not {divisor!r}"))


class UARTTx(wiring.Component):
    """Sends each byte taken from ``data`` on ``tx`` (idle high)."""

    def __init__(self, divisor: int):
        _check_divisor(self, divisor)
        self.divisor = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shift = Signal(9)             # the data bits, then the stop bit, sent from bit 0 up
        bits_left = Signal(range(11))  # bits still on or to go on the line; 0 = idle
        m.d.comb += self.data.ready.eq(bits_left == 0)
        with m.If(bits_left == 0):
            with m.If(self.data.valid):
                m.d.sync += [self.tx.eq(0), shift.eq(self.data.payload | (1 << 8)), bits_left.eq(10),
                             timer.eq(self.divisor - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(bits_left == 1):
            m.d.sync += bits_left.eq(0)  # the stop bit has had its full time
        with m.Else():
            m.d.sync += [self.tx.eq(shift[0]), shift.eq(shift >> 1), bits_left.eq(bits_left - 1),
                         timer.eq(self.divisor - 1)]
        return m


class UARTRx(wiring.Component):
    """Receives bytes from ``rx``; ``data`` cannot be held back: a byte not taken by the next
    byte's end is lost and ``overrun`` pulses. ``framing_error`` pulses for a missing stop bit."""

    def __init__(self, divisor: int):
        _check_divisor(self, divisor)
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "overrun": Out(1),
            "framing_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = cdc.FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self.divisor))
        shift = Signal(8)
        bit = Signal(range(8))
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        m.d.sync += [self.overrun.eq(0), self.framing_error.eq(0)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):  # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(self.divisor - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1),
                                 self.overrun.eq(self.data.valid & ~self.data.ready)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += self.framing_error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):  # wait for the line to go idle before the next start bit
                with m.If(line):
                    m.next = "IDLE"
        return m
