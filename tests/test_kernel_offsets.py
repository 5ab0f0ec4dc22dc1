"""The kernel-offset unit: for every input of a conv layer, exactly the passes its fan-out
(sw/topology.py) says, one a cycle, without a gap between events."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth_harness import Bench

from firstspike.hw.offsets import KernelOffsets
from firstspike.sw.topology import NO_TARGET, Conv2d, MapShape, Pooling


def expected_passes(shape: Conv2d, channel: int, y: int, x: int) -> list[tuple[int, int]]:
    """(slot, position) per kernel offset in range, from the golden model's fan-out table."""
    c, h, w = shape.input_map.as_tuple()
    index = (channel * h + y) * w + x
    if shape.pool is not None:
        index = int(shape.pool.window_of(shape.input_map)[index])
        if index == NO_TARGET:
            return []
    targets, weights = shape.fanout()
    k, positions = shape.channels, shape.output_map.height * shape.output_map.width
    reached = targets[index] != NO_TARGET
    pairs = {(int(wi) // k, int(t) % positions) for t, wi in zip(targets[index][reached], weights[index][reached])}
    return sorted(pairs)


SHAPES = [
    Conv2d(MapShape(2, 7, 6), 3, (3, 3), 1, 1),
    Conv2d(MapShape(1, 9, 9), 4, (5, 5), 2, 2),
    Conv2d(MapShape(3, 8, 7), 2, (2, 3), (2, 1), (0, 1)),
    Conv2d(MapShape(2, 9, 8), 3, (3, 3), 1, 1, Pooling(2)),
    Conv2d(MapShape(1, 5, 5), 2, (1, 1), 1, 0),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s.input_map.as_tuple()}k{s.kernel}s{s.stride}p{s.padding}"
                         + ("pool" if s.pool else ""))
def test_each_input_gives_the_passes_of_its_fan_out_one_a_cycle(shape: Conv2d) -> None:
    dut = KernelOffsets(shape)
    c, h, w = shape.input_map.as_tuple()
    rng = np.random.default_rng(0)
    events = [(int(rng.integers(c)), y, x) for y in range(h) for x in range(w)]
    expected = [expected_passes(shape, *event) for event in events]
    got: list[list[tuple[int, int]]] = [[] for _ in events]
    timing: dict[str, int] = {}

    async def feed(ctx):
        ctx.set(dut.events.valid, 1)
        for channel, y, x in events:
            ctx.set(dut.events.payload, {"channel": channel, "y": y, "x": x})
            await ctx.tick().until(dut.events.ready)
        ctx.set(dut.events.valid, 0)

    async def collect(ctx):
        ctx.set(dut.passes.ready, 1)
        event, cycles = 0, 0
        while event < len(events):
            while not expected[event] and event < len(events) - 1:
                event += 1  # no pass for this one
            if not expected[event]:
                break
            await ctx.tick()
            cycles += 1
            if ctx.get(dut.passes.valid):
                payload = ctx.get(dut.passes.payload)
                got[event].append((payload.slot, payload.position))
                if payload.last:
                    event += 1
        timing["cycles"] = cycles

    Bench(dut).run([feed, collect], cycles=20000)
    for event, (want, have) in enumerate(zip(expected, got)):
        assert sorted(have) == want, f"event {events[event]}"
    passes = sum(len(e) for e in expected)
    assert timing["cycles"] <= passes + 2  # no gap between events
