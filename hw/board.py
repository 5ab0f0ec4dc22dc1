"""The accelerator on a board: the core behind its UART on the board's serial pins, run
from the board's oscillator through the FPGA's PLL (:mod:`.pll`), with the busy flag on an LED.

The pins are placed by the board's file in constraints/ (made from amaranth-boards' pin
data); :mod:`.build` synthesizes this top level for every board.
"""

from __future__ import annotations

from amaranth import ClockDomain, ClockSignal, Module, ResetSignal, Signal
from amaranth.hdl import DomainRenamer
from amaranth.lib import cdc, wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.errors import FirstSpikeError
from firstspike.sw.model import Model

from .link.top import UARTAccelerator
from .pll import PLL, PLLSettings
from .refusal import refuse

__all__ = ["PinTop", "PowerOnReset", "DEFAULT_BAUD", "PIN_PORTS"]

#: The ports of :class:`PinTop`, which every file in constraints/ places.
PIN_PORTS = ("clk", "rx", "tx", "led")

#: The USB bridges' fastest rate (FT2232H on the iCEBreaker, FT231X on the ULX3S).
DEFAULT_BAUD = 3_000_000


class PinTop(wiring.Component):
    """The accelerator with plain pins for a board's own constraint file
    (``constraints/``): ``clk`` (the board oscillator), ``rx``, ``tx`` and ``led`` (busy).

    With ``pll`` the core runs on the PLL's output (``clock_hz`` is then its frequency);
    without, on ``clk`` itself. There is no reset pin: a power-on counter holds the design in
    reset until the PLL has locked and for 16 cycles more.
    """

    def __init__(self, model: Model, lanes: int, *, clock_hz: int, baud: int = DEFAULT_BAUD,
                 pll: PLLSettings | None = None):
        self.pll = pll
        if pll is not None and clock_hz != round(pll.output_hz):
            refuse(self, ValueError(f"clock_hz ({clock_hz}) is not the PLL's output ({float(pll.output_hz):.0f} Hz)"))
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
        m.submodules.power_on = power_on = DomainRenamer("por")(PowerOnReset())
        if self.pll is None:
            clock = self.clk
            m.d.comb += power_on.locked.eq(1)
        else:
            m.submodules.pll = pll = PLL(self.pll)
            clock = pll.clk_out
            m.d.comb += pll.clk_in.eq(self.clk)
            m.submodules.lock_sync = cdc.FFSynchronizer(pll.locked, power_on.locked, o_domain="por")
        m.d.comb += [ClockSignal("por").eq(clock), ClockSignal("sync").eq(clock),
                     ResetSignal("sync").eq(power_on.reset)]
        m.submodules.accelerator = accelerator = self.accelerator
        m.d.comb += [accelerator.rx.eq(self.rx), self.tx.eq(accelerator.tx), self.led.eq(accelerator.busy)]
        return m


class PowerOnReset(wiring.Component):
    """``reset`` high while ``locked`` is low and for ``HOLD`` cycles after it rises (the
    PLL's output settles; without a PLL, the first cycles after configuration). Runs on a
    reset-less domain: nothing resets it but ``locked``."""

    HOLD = 16

    def __init__(self):
        super().__init__({"locked": In(1), "reset": Out(1)})

    def elaborate(self, platform):
        m = Module()
        waited = Signal(range(self.HOLD + 1))
        with m.If(~self.locked):
            m.d.sync += waited.eq(0)
        with m.Elif(waited != self.HOLD):
            m.d.sync += waited.eq(waited + 1)
        # From a register (set as ``waited`` reaches HOLD, not a comparison after it): the
        # reset fans out to every register's enable logic, and a LUT in front of that net
        # was on the iCEBreaker build's longest paths.
        held = Signal(init=1)
        m.d.sync += held.eq(~(self.locked & (waited >= self.HOLD - 1)))
        m.d.comb += self.reset.eq(held)
        return m
