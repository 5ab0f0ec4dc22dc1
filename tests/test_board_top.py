"""The board top level: the core behind its UART on a real board's pins and clock."""

from __future__ import annotations

import pytest
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from firstspike.hw.board import BoardTop
from firstspike.sw.errors import FirstSpikeError
from firstspike.sw.model import load_model
from firstspike.sw.models import shipped_model_path


@pytest.fixture(scope="module")
def digits():
    return load_model(shipped_model_path("digits"))


def test_icebreaker_plan_puts_the_uart_and_clock_on_the_board_pins(digits):
    plan = ICEBreakerPlatform().build(BoardTop(digits, 4), do_build=False)
    pcf = plan.files["top.pcf"]
    assert "uart_0__rx__io 6" in pcf and "uart_0__tx__io 9" in pcf and "set_frequency clk12_0__io 12.0" in pcf


def test_ulx3s_plan_constrains_the_uart_pins(digits):
    plan = ULX3S_85F_Platform().build(BoardTop(digits, 16), do_build=False)
    lpf = plan.files["top.lpf"]
    assert "uart_0__rx__io" in lpf and "uart_0__tx__io" in lpf


def test_a_clock_too_slow_for_the_baud_rate_is_refused(digits):
    with pytest.raises(FirstSpikeError, match="too slow for 4,000,000 baud"):
        ICEBreakerPlatform().build(BoardTop(digits, 4, baud=4_000_000), do_build=False)
