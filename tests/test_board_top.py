"""The board top level: the core behind its UART on plain pins, held in reset at power-on."""

from __future__ import annotations

import pytest

from firstspike.hw.board import PinTop
from firstspike.sw.errors import FirstSpikeError
from firstspike.sw.model import load_model
from firstspike.sw.models import shipped_model_path


@pytest.fixture(scope="module")
def digits():
    return load_model(shipped_model_path("digits"))


@pytest.mark.filterwarnings("error")  # refused, so never elaborated: no "unused elaboratable" warning
def test_a_clock_too_slow_for_the_baud_rate_is_refused(digits):
    with pytest.raises(FirstSpikeError, match=r"the board's clock \(12,000,000 Hz\) is too slow for 4,000,000 baud"):
        PinTop(digits, 4, clock_hz=12_000_000, baud=4_000_000)
