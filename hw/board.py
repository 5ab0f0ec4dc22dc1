"""The accelerator on a board: the core behind its UART on the board's serial pins, run
from the board's oscillator, with the busy flag on an LED.

The pins are placed by the board's file in constraints/ (made from amaranth-boards' pin
data); :mod:`.build` synthesizes this top level for every board.
"""

from __future__ import annotations

from amaranth import ClockDomain, ClockSignal, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.errors import FirstSpikeError
from firstspike.sw.model import Model

from .link.top import UARTAccelerator
from .refusal import refuse

__all__ = ["PinTop", "DEFAULT_BAUD", "PIN_PORTS"]

#: The ports of :class:`PinTop`, which every file in constraints/ places.
PIN_PORTS = ("clk", "rx", "tx", "led")

DEFAULT_BAUD = 115_200


class PinTop(wiring.Component):
    """The accelerator with plain pins for a board's own constraint file
    (``constraints/``): ``clk`` (the board oscillator), ``rx``, ``tx`` and ``led`` (busy).

    There is no reset pin: a power-on counter holds the design in reset for the first
    16 cycles after configuration.
    """

    def __init__(self, model: Model, lanes: int, *, clock_hz: int, baud: int = DEFAULT_BAUD):
        if clock_hz < 4 * baud:
            refuse(self, FirstSpikeError(f"the board's clock ({clock_hz:,} Hz) is too slow for {baud:,} baud: "
                                         f"it needs at least 4 clock cycles per bit"))
        self.accelerator = UARTAccelerator(model, lanes, clock_hz=clock_hz, baud=baud)
        super().__init__({"clk": In(1), "rx": In(1), "tx": Out(1), "led": Out(1)})
        assert tuple(self.signature.members) == PIN_PORTS

    def elaborate(self, platform):
        m = Module()
        m.domains.por = ClockDomain(reset_less=True)
        m.domains.sync = ClockDomain()
        waited = Signal(5)
        with m.If(~waited[4]):
            m.d.por += waited.eq(waited + 1)
        m.d.comb += [ClockSignal("por").eq(self.clk), ClockSignal("sync").eq(self.clk),
                     ResetSignal("sync").eq(~waited[4])]
        m.submodules.accelerator = accelerator = self.accelerator
        m.d.comb += [accelerator.rx.eq(self.rx), self.tx.eq(accelerator.tx), self.led.eq(accelerator.busy)]
        return m
