"""The PLL settings (hw/pll.py): every setting inside the primitive's ranges, the nearest
frequency at or below the wanted one, and the primitive in the board top's Verilog."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from firstspike.hw.board import PinTop
from firstspike.hw.build import BOARDS, BuildError, core_clock
from firstspike.hw.generate import verilog_text
from firstspike.hw.pll import PLLError, pll_settings
from firstspike.sw.model import load_model
from firstspike.sw.models import shipped_model_path

MHZ = 1_000_000


def ice40_output(p: dict, input_hz: int) -> Fraction:
    return Fraction(input_hz * (p["DIVF"] + 1), (p["DIVR"] + 1) * 2 ** p["DIVQ"])


@pytest.mark.parametrize("wanted_mhz", [16.5, 19.875, 20, 24, 30, 36, 40, 48, 60, 100, 133])
def test_ice40_settings_stay_in_range_and_reach_the_nearest_frequency_not_above(wanted_mhz):
    wanted = Fraction(wanted_mhz) * MHZ
    s = pll_settings("ice40", 12 * MHZ, wanted)
    p = dict(s.parameters)
    assert s.output_hz == ice40_output(p, 12 * MHZ) <= wanted
    assert 10 * MHZ <= Fraction(12 * MHZ, p["DIVR"] + 1) <= 133 * MHZ
    assert 533 * MHZ <= s.vco_hz <= 1066 * MHZ and s.vco_hz == s.output_hz * 2 ** p["DIVQ"]
    # nothing reachable lies between it and the wanted frequency
    better = [ice40_output({"DIVR": 0, "DIVF": f, "DIVQ": q}, 12 * MHZ) for q in range(1, 7) for f in range(128)
              if 533 * MHZ <= 12 * MHZ * (f + 1) <= 1066 * MHZ]
    assert not [f for f in better if s.output_hz < f <= wanted]


@pytest.mark.parametrize("wanted_mhz", [12, 25, 30, 41, 50, 75, 100, 125, 150])
def test_ecp5_settings_stay_in_range_and_reach_the_nearest_frequency_not_above(wanted_mhz):
    wanted = wanted_mhz * MHZ
    s = pll_settings("ecp5", 25 * MHZ, wanted)
    p = dict(s.parameters)
    assert s.output_hz == Fraction(25 * MHZ * p["CLKFB_DIV"], p["CLKI_DIV"]) <= wanted
    assert Fraction(3125, 1000) * MHZ <= Fraction(25 * MHZ, p["CLKI_DIV"]) <= 400 * MHZ
    assert 400 * MHZ <= s.vco_hz == s.output_hz * p["CLKOP_DIV"] <= 800 * MHZ
    assert p["CLKOP_CPHASE"] == p["CLKOP_DIV"] // 2
    if wanted % (25 * MHZ) == 0:
        assert s.output_hz == wanted


def test_a_frequency_the_pll_cannot_make_is_refused_by_name():
    with pytest.raises(PLLError, match="the ice40 PLL cannot make 10 MHz or less from 12 MHz"):
        pll_settings("ice40", 12 * MHZ, 10 * MHZ)
    with pytest.raises(BuildError, match=r"--clock 10: the ice40 PLL cannot make"):
        core_clock("icebreaker", 10 * MHZ)
    with pytest.raises(BuildError, match="the arty build runs at its 100 MHz oscillator"):
        core_clock("arty", 50 * MHZ)


@pytest.mark.parametrize("board, primitive, parameter", [("icebreaker", "SB_PLL40_PAD", "DIVF"),
                                                          ("ulx3s", "EHXPLLL", "CLKFB_DIV")])
def test_the_board_top_runs_the_core_from_the_pll_at_the_reported_clock(board, primitive, parameter):
    clock_hz, settings = core_clock(board)
    assert settings is not None and clock_hz == round(settings.output_hz) <= BOARDS[board].default_clock_hz
    model = load_model(shipped_model_path("digits"))
    text = verilog_text(PinTop(model, 1, clock_hz=clock_hz, pll=settings), "firstspike_board")
    instance = re.search(rf"{primitive} #\((.*?)\) \S+\s+\(", text, re.S)
    assert instance, f"no {primitive} in the board top"
    assert re.search(rf"\.{parameter}\(32'd{dict(settings.parameters)[parameter]}\)", instance.group(1))
    with pytest.raises(ValueError, match="is not the PLL's output"):
        PinTop(model, 1, clock_hz=clock_hz + 1, pll=settings)
