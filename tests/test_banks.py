"""The banked weight memory: every row, in every bank, arrives READ_LATENCY cycles after
its address, and a write lands in its own bank only."""

from __future__ import annotations

import random

from amaranth.sim import Simulator

from firstspike.hw.banks import BANK_ROWS, READ_LATENCY, BankedMemory


def test_rows_of_every_bank_arrive_read_latency_cycles_after_their_address_and_writes_land_in_their_own_bank():
    rng = random.Random(7)
    depth = 2 * BANK_ROWS + 37  # two full banks and a short one
    init = [rng.getrandbits(12) for _ in range(depth)]
    dut = BankedMemory(12, depth, init)
    assert dut.banks == 3
    expected = list(init)
    writes = {rng.randrange(bank * BANK_ROWS, min(depth, (bank + 1) * BANK_ROWS)): rng.getrandbits(12)
              for bank in range(3) for _ in range(4)}
    # bank boundaries, then random rows, then the written rows again
    reads = [0, BANK_ROWS - 1, BANK_ROWS, 2 * BANK_ROWS - 1, 2 * BANK_ROWS, depth - 1]
    reads += [rng.randrange(depth) for _ in range(40)]
    got: list[int] = []

    async def bench(ctx):
        for address, value in writes.items():
            ctx.set(dut.write_addr, address)
            ctx.set(dut.write_data, value)
            ctx.set(dut.write_en, 1)
            await ctx.tick()
            expected[address] = value
        ctx.set(dut.write_en, 0)
        addresses = reads + list(writes)
        for cycle in range(len(addresses) + READ_LATENCY - 1):
            if cycle < len(addresses):
                ctx.set(dut.read_addr, addresses[cycle])
            await ctx.tick()
            if cycle + 1 >= READ_LATENCY:
                got.append(ctx.get(dut.read_data))
        assert got == [expected[a] for a in addresses]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) == len(reads) + len(writes)
