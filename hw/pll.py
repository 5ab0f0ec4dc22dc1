"""The FPGA's PLL between the board oscillator and the core: its divider settings worked
out from the wanted frequency (within the primitive's documented ranges, as Lattice's
icepll and Project Trellis' ecppll do), and the primitive itself.

iCE40: ``SB_PLL40_PAD`` in SIMPLE feedback, f_out = f_in·(DIVF+1) / ((DIVR+1)·2^DIVQ),
f_in/(DIVR+1) in 10-133 MHz, the VCO f_out·2^DIVQ in 533-1066 MHz, f_out in 16-275 MHz.
ECP5: ``EHXPLLL`` fed back from CLKOP, f_out = f_in·CLKFB_DIV / CLKI_DIV, the phase
detector f_in/CLKI_DIV in 3.125-400 MHz, the VCO f_out·CLKOP_DIV in 400-800 MHz.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from amaranth import Instance, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.errors import FirstSpikeError

__all__ = ["PLLSettings", "pll_settings", "PLL", "PLLError", "PLL_FAMILIES"]

MHZ = 1_000_000


class PLLError(FirstSpikeError):
    """No setting of the PLL reaches the wanted frequency."""


@dataclass(frozen=True)
class PLLSettings:
    """One PLL setting: the primitive, its parameters, and the frequencies it makes."""

    primitive: str
    input_hz: int
    output_hz: Fraction
    vco_hz: Fraction
    parameters: tuple[tuple[str, int | str], ...]

    @property
    def output_mhz(self) -> float:
        return float(self.output_hz) / MHZ

    def as_dict(self) -> dict:
        return {"primitive": self.primitive, "input_mhz": self.input_hz / MHZ, "output_mhz": self.output_mhz,
                "vco_mhz": float(self.vco_hz) / MHZ, "parameters": dict(self.parameters)}


def _ice40_filter_range(pfd_hz: Fraction) -> int:
    """The loop filter setting for a phase detector frequency (iCE40 sysCLOCK PLL guide)."""
    for bound, setting in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
        if pfd_hz < bound * MHZ:
            return setting
    return 6


def _ice40(input_hz: int, wanted_hz: Fraction) -> list[PLLSettings]:
    found = []
    for divr in range(16):
        pfd = Fraction(input_hz, divr + 1)
        if not 10 * MHZ <= pfd <= 133 * MHZ:
            continue
        for divq in range(1, 7):
            for divf in range(128):
                vco = pfd * (divf + 1)
                out = vco / 2 ** divq
                if 533 * MHZ <= vco <= 1066 * MHZ and 16 * MHZ <= out <= 275 * MHZ:
                    found.append(PLLSettings("SB_PLL40_PAD", input_hz, out, vco, (
                        ("FEEDBACK_PATH", "SIMPLE"), ("DIVR", divr), ("DIVF", divf), ("DIVQ", divq),
                        ("FILTER_RANGE", _ice40_filter_range(pfd)))))
    return found


def _ecp5(input_hz: int, wanted_hz: Fraction) -> list[PLLSettings]:
    found = []
    for clki in range(1, 129):
        pfd = Fraction(input_hz, clki)
        if not Fraction(3125, 1000) * MHZ <= pfd <= 400 * MHZ:
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            if not 10 * MHZ <= out <= min(Fraction(400 * MHZ), wanted_hz):
                continue
            # CLKOP_DIV: the VCO (out · CLKOP_DIV, 400-800 MHz) nearest 600 MHz, as ecppll picks.
            dividers = [d for d in range(1, 129) if 400 * MHZ <= out * d <= 800 * MHZ]
            if not dividers:
                continue
            clkop = min(dividers, key=lambda d: abs(out * d - 600 * MHZ))
            # CLKOP_CPHASE: the half-period shift ecppll and Lattice's tools set.
            found.append(PLLSettings("EHXPLLL", input_hz, out, out * clkop, (
                ("CLKI_DIV", clki), ("CLKFB_DIV", clkfb), ("CLKOP_DIV", clkop),
                ("CLKOP_CPHASE", clkop // 2), ("CLKOP_FPHASE", 0), ("FEEDBK_PATH", "CLKOP"))))
    return found


PLL_FAMILIES = {"ice40": _ice40, "ecp5": _ecp5}


def pll_settings(family: str, input_hz: int, wanted_hz: int | Fraction) -> PLLSettings:
    """The setting whose output is nearest ``wanted_hz`` without going above it (a clock
    chosen to close timing must not be overshot); among equals, the VCO nearest the middle
    of its range."""
    if family not in PLL_FAMILIES:
        raise PLLError(f"no PLL for the {family} family (there is one for {', '.join(PLL_FAMILIES)})")
    candidates = [s for s in PLL_FAMILIES[family](input_hz, Fraction(wanted_hz)) if s.output_hz <= wanted_hz]
    if not candidates:
        raise PLLError(f"the {family} PLL cannot make {float(wanted_hz) / MHZ:g} MHz or less from "
                       f"{input_hz / MHZ:g} MHz (lowest: {'16' if family == 'ice40' else 'about 3.2'} MHz)")
    middle = 800 * MHZ if family == "ice40" else 600 * MHZ
    return max(candidates, key=lambda s: (s.output_hz, -abs(s.vco_hz - middle)))


class PLL(wiring.Component):
    """``clk_in`` (the oscillator pin) through the PLL to ``clk_out``; ``locked`` rises once
    the output is stable. Elaborates to the vendor primitive (for synthesis only)."""

    def __init__(self, settings: PLLSettings):
        self.settings = settings
        super().__init__({"clk_in": In(1), "clk_out": Out(1), "locked": Out(1)})

    def elaborate(self, platform):
        m = Module()
        parameters = {f"p_{name}": value for name, value in self.settings.parameters}
        if self.settings.primitive == "SB_PLL40_PAD":
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", **parameters, i_PACKAGEPIN=self.clk_in, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=self.clk_out, o_LOCK=self.locked)
        else:
            mhz = {"FREQUENCY_PIN_CLKI": f"{self.settings.input_hz / MHZ:g}",
                   "FREQUENCY_PIN_CLKOP": f"{self.settings.output_mhz:.6g}",
                   # the loop filter settings Trellis' ecppll and Lattice's tools write
                   "ICP_CURRENT": "12", "LPF_RESISTOR": "8", "MFG_ENABLE_FILTEROPAMP": "1", "MFG_GMCREF_SEL": "2"}
            m.submodules.pll = Instance(
                "EHXPLLL", **parameters, a_keep=1, **{f"a_{k}": v for k, v in mhz.items()},
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                i_CLKI=self.clk_in, i_CLKFB=self.clk_out, i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0,
                i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_CLKOP=self.clk_out, o_LOCK=self.locked)
        return m
