"""The banked weight memory: every row, in every bank, arrives ``latency`` cycles after its
address (a cycle more where the choice spans more than two banks), and a write lands in its
own bank only."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from firstspike.hw.banks import BANK_ROWS, BankedMemory, fills_its_blocks


@pytest.mark.parametrize("banks, latency", [(2, 4), (3, 5)], ids=["two banks", "three banks, staged"])
def test_rows_of_every_bank_arrive_latency_cycles_after_their_address_and_writes_land_in_their_own_bank(
        banks, latency):
    rng = random.Random(7)
    depth = (banks - 1) * BANK_ROWS + 37  # full banks and a short one
    init = [rng.getrandbits(12) for _ in range(depth)]
    dut = BankedMemory(12, depth, init)
    assert dut.banks == banks and dut.latency == latency
    expected = list(init)
    writes = {rng.randrange(bank * BANK_ROWS, min(depth, (bank + 1) * BANK_ROWS)): rng.getrandbits(12)
              for bank in range(banks) for _ in range(4)}
    # bank boundaries, then random rows, then the written rows again
    reads = [0, BANK_ROWS - 1, BANK_ROWS, depth - 1] + ([2 * BANK_ROWS - 1, 2 * BANK_ROWS] if banks > 2 else [])
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
        for cycle in range(len(addresses) + latency - 1):
            if cycle < len(addresses):
                ctx.set(dut.read_addr, addresses[cycle])
            await ctx.tick()
            if cycle + 1 >= latency:
                got.append(ctx.get(dut.read_data))
        assert got == [expected[a] for a in addresses]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) == len(reads) + len(writes)


@pytest.mark.parametrize("depth, blocks", [(2 * BANK_ROWS + 300, 2 * 3 + 1), (900, 2), (BANK_ROWS + 700, 3)],
                         ids=["two full banks at 9 bits and a short one at 36", "one bank at 18 bits",
                              "a full bank and a short generic one"])
def test_on_the_ecp5_the_banks_are_dp16kd_blocks_with_output_registers_and_read_the_same(depth, blocks, tmp_path):
    """The same reads and writes through the ECP5 form (hw/blockram.py), in Icarus with our
    DP16KD model: full banks at 9 bits a block beside a short last one at 36 bits (pseudo
    dual port), a bank at 18 bits, and a short last bank that stays the generic memory (it
    would not fill its blocks); the data split over blocks with a part-filled last one."""
    from icarus_blocks import run_with_block_model

    from firstspike.hw.blockram import Fabric
    from firstspike.hw.generate import verilog_text

    rng = random.Random(11)
    width = 20
    init = [rng.getrandbits(width) for _ in range(depth)]
    writes = {rng.randrange(depth): rng.getrandbits(width) for _ in range(12)}
    last_bank = depth // BANK_ROWS * BANK_ROWS
    reads = [0, 1, min(depth, BANK_ROWS) - 1, last_bank % depth, depth - 1] + [rng.randrange(depth) for _ in range(60)]
    reads += list(writes)
    dut = BankedMemory(width, depth, init)
    verilog = verilog_text(dut, "banked", Fabric("ecp5"))
    assert verilog.count("DP16KD #(") == blocks and "OUTREG" in verilog
    steps = [f"write_addr = {a}; write_data = {v}; write_en = 1; @(posedge clk); #1;" for a, v in writes.items()]
    steps += ["write_en = 0;"]
    steps += [f"read_addr = {a}; @(posedge clk); #1; $display(\"%0d\", read_data);" for a in reads]
    steps += ["@(posedge clk); #1; $display(\"%0d\", read_data);"] * (dut.latency - 1)
    shown = run_with_block_model(tmp_path, "banked", verilog,
        "module bench;\n  reg clk = 0, rst = 0, write_en = 0;\n"
        f"  reg [{(depth - 1).bit_length() - 1}:0] read_addr = 0, write_addr = 0;\n"
        f"  reg [{width - 1}:0] write_data = 0;\n  wire [{width - 1}:0] read_data;\n  always #5 clk = ~clk;\n"
        "  banked dut(.clk(clk), .rst(rst), .read_addr(read_addr), .read_data(read_data),\n"
        "             .write_addr(write_addr), .write_data(write_data), .write_en(write_en));\n"
        "  initial begin\n    #1;\n" + "\n".join(f"    {step}" for step in steps) + "\n    $finish;\n  end\nendmodule\n")
    values = [int(line) for line in shown.split() if line.isdigit()]
    expected = list(init)
    for address, value in writes.items():
        expected[address] = value
    assert values[dut.latency - 1:] == [expected[a] for a in reads]


def test_a_bank_is_laid_out_in_dp16kds_by_hand_only_where_it_takes_no_more_of_them_than_yosys():
    assert fills_its_blocks(BANK_ROWS) and fills_its_blocks(1537) and not fills_its_blocks(1536)
    assert fills_its_blocks(1024) and fills_its_blocks(769) and not fills_its_blocks(768)
    assert not fills_its_blocks(1025) and not fills_its_blocks(513)
    assert fills_its_blocks(512) and fills_its_blocks(352) and fills_its_blocks(1)
