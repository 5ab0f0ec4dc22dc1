"""The gateware UART in Amaranth's simulator: bit timing, loopback, glitches and errors."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from amaranth import Module
from amaranth_harness import Bench

from firstspike.hw.link.uart import UARTRx, UARTTx


def line_bits(byte: int) -> list[int]:
    return [0] + [(byte >> i) & 1 for i in range(8)] + [1]


@pytest.mark.parametrize("divisor", [4, 5, 16])
def test_tx_puts_start_data_and_stop_bits_on_the_line_for_divisor_cycles_each(divisor):
    dut = UARTTx(divisor)
    payload = [0x00, 0xFF, 0x7E, 0xA5]
    seen = []

    async def bench(ctx):
        for byte in payload:
            ctx.set(dut.data.payload, byte)
            ctx.set(dut.data.valid, 1)
            await ctx.tick().until(dut.data.ready)  # returns on the edge that takes the byte
            ctx.set(dut.data.valid, 0)
            samples = [ctx.get(dut.tx)]
            for _ in range(10 * divisor - 1):
                await ctx.tick()
                samples.append(ctx.get(dut.tx))
            seen.append(samples)

    Bench(dut, period=1e-6).run([bench])
    for byte, samples in zip(payload, seen):
        assert samples == [b for b in line_bits(byte) for _ in range(divisor)]


@pytest.mark.parametrize("divisor", [Fraction(25, 3), Fraction(9, 2), Fraction(1201, 100)], ids=str)
def test_a_fractional_bit_time_keeps_every_edge_within_a_cycle_of_the_ideal(divisor):
    """25 MHz at 3,000,000 baud: bits of 8 or 9 cycles, 25 cycles every 3 bits."""
    dut = UARTTx(divisor)
    payload = [0x00, 0xFF, 0x55, 0xA5, 0x0F]
    edges, ends = [], []

    async def bench(ctx):
        for byte in payload:
            ctx.set(dut.data.payload, byte)
            ctx.set(dut.data.valid, 1)
            await ctx.tick().until(dut.data.ready)
            ctx.set(dut.data.valid, 0)
            samples, ready = [ctx.get(dut.tx)], [0]
            for _ in range(int(10 * divisor) + 1):
                await ctx.tick()
                samples.append(ctx.get(dut.tx))
                ready.append(ctx.get(dut.data.ready))
            edges.append(samples)
            ends.append(ready.index(1))

    Bench(dut, period=1e-6).run([bench])
    for byte, samples in zip(payload, edges):
        bits = line_bits(byte)
        for position, level in enumerate(samples[:int(10 * divisor)]):
            ideal = Fraction(position) / divisor  # which bit this cycle lies in, ideally
            if abs(ideal - round(ideal)) * divisor >= 1:  # a cycle from an ideal edge: unambiguous
                assert level == bits[int(ideal)], (byte, position)
    # each stop bit ends (the next byte may start) within a cycle of ten ideal bit times
    assert all(abs(end - 10 * divisor) <= 1 for end in ends), ends


@pytest.mark.parametrize("divisor", [4, 7, 12, Fraction(25, 3), Fraction(13, 3)], ids=str)
def test_bytes_sent_by_tx_come_out_of_rx(divisor):
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    payload = list(np.random.default_rng(int(divisor * 100)).integers(0, 256, 40))
    received = []

    async def send(ctx):
        for byte in payload:
            ctx.set(tx.data.payload, int(byte))
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
        ctx.set(tx.data.valid, 0)

    async def receive(ctx):
        ctx.set(rx.data.ready, 1)
        while len(received) < len(payload):
            await ctx.tick()
            if ctx.get(rx.data.valid):
                received.append(ctx.get(rx.data.payload))
            assert not ctx.get(rx.framing_error) and not ctx.get(rx.overrun)

    Bench(m, period=1e-6).run([send, receive], cycles=int((len(payload) + 2) * 10 * divisor * 2))
    assert received == [int(b) for b in payload]


def drive(ctx, dut, bits: list[int], divisor: int, offset: int = 0):
    """Put ``bits`` on ``rx``, ``divisor`` cycles each (``offset`` cycles longer or shorter)."""
    async def run():
        for bit in bits:
            ctx.set(dut.rx, bit)
            await ctx.tick().repeat(divisor + offset)
    return run()


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_rx_tolerates_a_three_percent_baud_mismatch(offset):
    dut = UARTRx(32)
    got = []

    async def bench(ctx):
        ctx.set(dut.data.ready, 1)
        await ctx.tick().repeat(5)
        for byte in (0x55, 0x7D, 0x01):
            await drive(ctx, dut, line_bits(byte) + [1], 32, offset)

    async def watch(ctx):
        async for _, _, valid, payload in ctx.tick().sample(dut.data.valid, dut.data.payload):
            if valid:
                got.append(payload)

    Bench(dut, period=1e-6).run([bench], processes=[watch], cycles=1200)
    assert got == [0x55, 0x7D, 0x01]


def test_rx_ignores_a_short_glitch_and_flags_a_missing_stop_bit():
    dut = UARTRx(8)
    got, errors = [], []

    async def bench(ctx):
        ctx.set(dut.data.ready, 1)
        await ctx.tick().repeat(4)
        ctx.set(dut.rx, 0)  # a glitch of 2 cycles: shorter than half a bit
        await ctx.tick().repeat(2)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(20)
        await drive(ctx, dut, line_bits(0x3C)[:-1] + [0, 0, 1, 1], 8)  # stop bit low: framing error
        await drive(ctx, dut, line_bits(0xC3) + [1], 8)

    async def watch(ctx):
        async for _, _, valid, payload, error in ctx.tick().sample(dut.data.valid, dut.data.payload,
                                                                    dut.framing_error):
            if valid:
                got.append(payload)
            if error:
                errors.append(1)

    Bench(dut, period=1e-6).run([bench], processes=[watch], cycles=400)
    assert got == [0xC3] and errors == [1]


def test_a_divisor_below_four_is_refused_by_name():
    with pytest.raises(ValueError, match="divisor .* at least 4, not 3"):
        UARTTx(3)
    with pytest.raises(ValueError, match=r"at least 4, not Fraction\(7, 2\)"):
        UARTRx(Fraction(7, 2))
