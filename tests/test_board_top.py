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


def test_the_design_is_held_in_reset_until_the_pll_locks_and_sixteen_cycles_more():
    """Random lock patterns (a PLL losing lock too) against the rule: reset is high unless
    ``locked`` has been high for the last 16 cycles."""
    import random

    from amaranth_harness import Bench

    from firstspike.hw.board import PowerOnReset

    dut = PowerOnReset()
    rng = random.Random(3)
    pattern = [0] * 5 + [1] * 30 + [0] * 3 + [1] * 10 + [0] + [1] * 40
    pattern += [int(rng.random() < 0.9) for _ in range(300)]
    seen = []

    async def bench(ctx):
        for level in pattern:
            ctx.set(dut.locked, level)
            await ctx.tick()
            seen.append(ctx.get(dut.reset))

    Bench(dut, period=1e-6).run([bench])
    run, expected = 0, []
    for level in pattern:
        run = run + 1 if level else 0
        expected.append(int(min(run, PowerOnReset.HOLD) != PowerOnReset.HOLD))
    assert seen == expected
    assert seen.count(0) > 100 and seen.count(1) > 30
