"""The spike queue's lane trees, on every bit pattern of small widths: the lowest set lane
(the next event), whether at most one lane is set (the record's last event) and at most
two (its last after the next take)."""

from __future__ import annotations

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from firstspike.hw.queue import at_most_one_set, at_most_two_set, lowest_set


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 9])
def test_the_trees_find_the_lowest_set_lane_and_whether_at_most_one_or_two_are_set(width):
    m = Module()
    bits = Signal(width)
    any_set, lowest = Signal(), Signal(range(max(2, width)))
    also_any, at_most_one, at_most_two = Signal(), Signal(), Signal()
    found_any, found_lowest = lowest_set(bits, width)
    one_any, one = at_most_one_set(bits, width)
    m.d.comb += [any_set.eq(found_any), lowest.eq(found_lowest), also_any.eq(one_any), at_most_one.eq(one),
                 at_most_two.eq(at_most_two_set(bits, width))]
    checked = []

    async def bench(ctx):
        for value in range(1 << width):
            ctx.set(bits, value)
            ones = bin(value).count("1")
            assert ctx.get(any_set) == ctx.get(also_any) == (ones > 0), value
            assert ctx.get(at_most_one) == (ones <= 1), value
            assert ctx.get(at_most_two) == (ones <= 2), value
            if value:
                assert ctx.get(lowest) == (value & -value).bit_length() - 1, value
            checked.append(value)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert len(checked) == 1 << width
