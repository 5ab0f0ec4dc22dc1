"""An 8N1 UART: one start bit, eight data bits (least significant first), one stop bit.

``divisor`` is the number of clock cycles per bit, clock / baud, a whole number or a
:class:`~fractions.Fraction`: a fractional bit time is met on average, each bit lasting its
whole part or one cycle more as an error accumulator says, so the line is never more than
one cycle from the ideal bit edges (a 25 MHz clock sends 3,000,000 baud exactly, 8 or 9
cycles a bit). The receiver samples each bit in its middle, so ``divisor`` must be at least 4.
Both sides are streams of bytes.
"""

from __future__ import annotations

from fractions import Fraction

from amaranth import Cat, Module, Signal
from amaranth.lib import cdc, stream, wiring
from amaranth.lib.wiring import In, Out

from ..refusal import refuse

__all__ = ["UARTTx", "UARTRx", "MIN_DIVISOR", "BitTimer"]

MIN_DIVISOR = 4


def _check_divisor(component, divisor: int | Fraction) -> Fraction:
    if isinstance(divisor, bool) or not isinstance(divisor, (int, Fraction)) or divisor < MIN_DIVISOR:
        refuse(component, ValueError(f"divisor (clock cycles per bit) must be a whole number or a Fraction of "
                                     f"at least {MIN_DIVISOR}, not {divisor!r}"))
    return Fraction(divisor)


class BitTimer:
    """Counts bit times of ``divisor`` cycles (a Fraction) in ``m``: ``start(cycles)`` loads
    a first interval of a whole number of cycles, ``next()`` the next bit's whole part plus
    the cycle the accumulated fraction owes; ``running`` is high until the interval ends."""

    def __init__(self, m: Module, divisor: Fraction):
        self.m, self.divisor = m, divisor
        self.whole = divisor.numerator // divisor.denominator
        self.owed = divisor.numerator % divisor.denominator   # per bit, in 1/denominator cycles
        self.count = Signal(range(self.whole + 1))
        self.error = Signal(range(max(2, divisor.denominator)))
        self.running = self.count != 0

    def tick(self) -> None:
        self.m.d.sync += self.count.eq(self.count - 1)

    def start(self, cycles: int) -> None:
        self.m.d.sync += [self.count.eq(cycles - 1), self.error.eq(0)]

    def next(self) -> None:
        if not self.owed:
            self.m.d.sync += self.count.eq(self.whole - 1)
            return
        denominator = self.divisor.denominator
        with self.m.If(self.error + self.owed >= denominator):
            self.m.d.sync += [self.count.eq(self.whole), self.error.eq(self.error + self.owed - denominator)]
        with self.m.Else():
            self.m.d.sync += [self.count.eq(self.whole - 1), self.error.eq(self.error + self.owed)]


class UARTTx(wiring.Component):
    """Sends each byte taken from ``data`` on ``tx`` (idle high)."""

    def __init__(self, divisor: int | Fraction):
        self.divisor = _check_divisor(self, divisor)
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = BitTimer(m, self.divisor)
        shift = Signal(9)             # the data bits, then the stop bit, sent from bit 0 up
        bits_left = Signal(range(11))  # bits still on or to go on the line; 0 = idle
        m.d.comb += self.data.ready.eq(bits_left == 0)
        with m.If(bits_left == 0):
            with m.If(self.data.valid):
                m.d.sync += [self.tx.eq(0), shift.eq(self.data.payload | (1 << 8)), bits_left.eq(10)]
                timer.next()
        with m.Elif(timer.running):
            timer.tick()
        with m.Elif(bits_left == 1):
            m.d.sync += bits_left.eq(0)  # the stop bit has had its full time
        with m.Else():
            m.d.sync += [self.tx.eq(shift[0]), shift.eq(shift >> 1), bits_left.eq(bits_left - 1)]
            timer.next()
        return m


class UARTRx(wiring.Component):
    """Receives bytes from ``rx``; ``data`` cannot be held back: a byte not taken by the next
    byte's end is lost and ``overrun`` pulses. ``framing_error`` pulses for a missing stop bit."""

    def __init__(self, divisor: int | Fraction):
        self.divisor = _check_divisor(self, divisor)
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
        timer = BitTimer(m, self.divisor)
        shift = Signal(8)
        bit = Signal(range(8))
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        m.d.sync += [self.overrun.eq(0), self.framing_error.eq(0)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    timer.start(int(self.divisor // 2))
                    m.next = "START"
            with m.State("START"):
                with m.If(timer.running):
                    timer.tick()
                with m.Elif(line):  # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    timer.next()
                    m.d.sync += bit.eq(0)
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer.running):
                    timer.tick()
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), bit.eq(bit + 1)]
                    timer.next()
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer.running):
                    timer.tick()
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
