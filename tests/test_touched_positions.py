"""The touched-positions list: every position marked at a step comes back once, in the
order first marked, and the marks are clear again for the next step."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth_harness import Bench

from firstspike.hw.touched import TouchedPositions


async def mark_all(ctx, dut, marks: list[int], gaps: np.ndarray) -> None:
    for position, gap in zip(marks, gaps):
        ctx.set(dut.mark, 1)
        ctx.set(dut.mark_position, position)
        await ctx.tick()
        ctx.set(dut.mark, 0)
        for _ in range(int(gap)):
            await ctx.tick()
    await ctx.tick().repeat(2)  # the last mark's second stage


async def drain(ctx, dut) -> list[int]:
    out = []
    ctx.set(dut.positions.ready, 1)
    while True:
        await ctx.delay(1e-9)  # combinational settle before sampling valid
        if not ctx.get(dut.positions.valid):
            break
        out.append(ctx.get(dut.positions.payload))
        await ctx.tick()
    ctx.set(dut.positions.ready, 0)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_each_marked_position_is_listed_once_in_first_mark_order_step_after_step(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 40))
    dut = TouchedPositions(size)
    steps = [[int(p) for p in rng.integers(0, size, int(rng.integers(0, 3 * size)))] for _ in range(4)]
    # Back-to-back marks of one position, too.
    steps.append([0, 0, 0, size - 1, size - 1])
    results: list[list[int]] = []

    async def bench(ctx):
        for marks in steps:
            await mark_all(ctx, dut, marks, rng.integers(0, 2, len(marks)) * rng.integers(0, 3, len(marks)))
            results.append(await drain(ctx, dut))

    Bench(dut).run([bench])
    for marks, got in zip(steps, results):
        assert got == list(dict.fromkeys(int(p) for p in marks))


def test_restart_empties_the_list_and_clear_resets_a_mark() -> None:
    dut = TouchedPositions(8)
    results: list[list[int]] = []

    async def bench(ctx):
        await mark_all(ctx, dut, [3, 5], np.zeros(2))
        ctx.set(dut.restart, 1)
        await ctx.tick()
        ctx.set(dut.restart, 0)
        results.append(await drain(ctx, dut))  # empty
        await mark_all(ctx, dut, [3, 6], np.zeros(2))
        results.append(await drain(ctx, dut))  # 3 is still marked: only 6
        ctx.set(dut.clear, 1)
        ctx.set(dut.clear_position, 5)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        await mark_all(ctx, dut, [5, 3], np.zeros(2))
        results.append(await drain(ctx, dut))

    Bench(dut).run([bench])
    assert results == [[], [6], [5]]  # 3 stays marked: restart left its mark, nothing cleared it


def test_a_list_of_no_positions_is_refused() -> None:
    with pytest.raises(ValueError, match="positions must be at least 1, not 0"):
        TouchedPositions(0)
