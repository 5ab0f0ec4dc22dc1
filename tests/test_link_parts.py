"""The command handler's parts, each alone in Amaranth's simulator: the spike-code decoder,
the row mover and the reply sender, against the host's encoding of the same bytes."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth_harness import Bench, put, sorted_events, take

from firstspike.hw.link.replies import ReplySender, Source
from firstspike.hw.link.rows import RowMover
from firstspike.hw.link.spikes import SpikeCodeDecoder
from firstspike.sw.layout import MemoryLayout, Target
from firstspike.sw.link.messages import Nack, pack_load, pack_rows, row_bytes
from firstspike.sw.link.spikecode import NEXT_STEP, encode_spikes
from firstspike.sw.params import CoreParams

PARAMS = CoreParams((300, 7, 3), 9, lanes=2)
MAX_PAYLOAD = 1024


def bank(dut, data: bytes):
    """A frame bank: the byte at ``read_address`` one cycle later, as the receiver's memory gives it."""
    async def process(ctx):
        async for _, _, address in ctx.tick().sample(dut.read_address):
            ctx.set(dut.read_byte, data[address] if address < len(data) else 0)
    return process


def decode(payload: bytes) -> tuple[int, list[dict]]:
    dut = SpikeCodeDecoder(PARAMS, MAX_PAYLOAD)
    seen: dict = {"events": []}

    async def bench(ctx):
        await put(ctx, dut.start, len(payload))
        seen["verdict"] = await take(ctx, dut.verdict)
        if seen["verdict"] == 0:
            while True:
                beat = await take(ctx, dut.events)
                seen["events"].append({"index": beat.index, "step": beat.step, "end": beat.end})
                if beat.end:
                    break
        else:  # a refused input sends nothing
            for _ in range(4 * len(payload) + 10):
                await ctx.tick()
                assert not ctx.get(dut.events.valid)

    Bench(dut).run([bench], processes=[bank(dut, payload)])
    return seen["verdict"], seen["events"]


@pytest.mark.parametrize("seed", range(3))
def test_the_decoder_sends_every_spike_of_the_host_encoding_in_order_then_the_end(seed):
    times = np.random.default_rng(seed).integers(-1, PARAMS.time_steps, PARAMS.n_inputs)
    times[:260] = np.where(np.arange(260) % 3 == 0, -1, times[:260])  # long runs: SKIP tokens too
    verdict, events = decode(encode_spikes(times))
    assert verdict == 0
    assert events == [{"index": i, "step": s, "end": 0} for i, s in sorted_events(times)] + \
        [{"index": 0, "step": 0, "end": 1}]


@pytest.mark.parametrize("payload, code", [
    (bytes([5, 200, 0x7F]), Nack.INDEX_RANGE),             # the third spike is input 5+1+200+1+127 = 334 > 299
    (bytes([NEXT_STEP] * 9 + [0]), Nack.TIME_RANGE),         # a spike at step 9 when T = 9
    (bytes([NEXT_STEP] * 9 + [255] * 3 + [0]), Nack.TIME_RANGE),
], ids=["index", "step", "step after more steps"])
def test_the_decoder_refuses_a_bad_token_before_sending_any_spike(payload, code):
    verdict, events = decode(payload)
    assert (verdict, events) == (code, [])


def test_the_mover_writes_a_loads_rows_and_reads_rows_back_as_their_bytes():
    layout = MemoryLayout(PARAMS)
    words = [int(w) for w in np.random.default_rng(4).integers(0, 1 << layout.weight_width, 5)]
    size = row_bytes(layout, Target.WEIGHTS)
    dut = RowMover(PARAMS, MAX_PAYLOAD)
    memory = {}
    out = bytearray()
    done = []

    async def bench(ctx):
        await put(ctx, dut.request, {"load": 1, "target": int(Target.WEIGHTS), "address": 3, "count": 5})
        while len(memory) < 5:
            beat = await take(ctx, dut.write)
            memory[beat.address] = beat.data
        await put(ctx, dut.request, {"load": 0, "target": int(Target.WEIGHTS), "address": 4, "count": 3})
        while len(out) < 3 * size:
            out.append(await take(ctx, dut.bytes_out))

    async def core_memory(ctx):  # answers the three reads as the core does, from what was written
        for _ in range(3):
            request = await take(ctx, dut.read)
            await put(ctx, dut.read_data, memory[request.address])

    async def watch_done(ctx):
        async for _, _, pulse in ctx.tick().sample(dut.done):
            if pulse:
                done.append(1)

    Bench(dut).run([bench, core_memory],
                   processes=[bank(dut, pack_load(layout, Target.WEIGHTS, 3, words)), watch_done])
    assert memory == {3 + k: w for k, w in enumerate(words)}
    assert bytes(out) == pack_rows(words[1:4], size)
    assert done == [1]  # the load's; the read's comes after its last byte is taken


@pytest.mark.parametrize("source", list(Source), ids=lambda s: s.name.lower())
def test_the_sender_sends_the_header_then_exactly_length_bytes_from_its_source(source):
    payload = bytes(np.random.default_rng(int(source)).integers(0, 256, 11).tolist())
    dut = ReplySender(MAX_PAYLOAD, vector_bytes=16)
    got: dict = {"bytes": bytearray()}

    async def bench(ctx):
        ctx.set(dut.vector, int.from_bytes(payload.ljust(16, b"\0"), "little"))
        await put(ctx, dut.request, {"header": {"type": 0x85, "sequence": 9, "length": len(payload)},
                                     "source": int(source)})
        header = await take(ctx, dut.reply)
        got["header"] = (header.type, header.sequence, header.length)
        while len(got["bytes"]) < len(payload):
            got["bytes"].append(await take(ctx, dut.reply_payload))
        for _ in range(20):  # and nothing more
            ctx.set(dut.reply_payload.ready, 1)
            await ctx.tick()
            assert not ctx.get(dut.reply_payload.valid)

    async def rows(ctx):
        for byte in payload:
            await put(ctx, dut.rows, byte)

    feeders = [rows] if source is Source.ROWS else []  # nothing may wait on a stream at the end
    Bench(dut).run([bench, *feeders], processes=[bank(dut, payload)])
    assert got["header"] == (0x85, 9, len(payload)) and bytes(got["bytes"]) == payload
