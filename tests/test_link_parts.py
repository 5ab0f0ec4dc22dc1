"""The command handler's parts, each alone in Amaranth's simulator: the spike-code decoder,
the row mover and the reply sender, against the host's encoding of the same bytes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from amaranth_harness import Bench, put, sorted_events, take
from fuzzing import examples
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from wire import raw_spike_code

from firstspike.hw.link.framer import BANK_READ_LATENCY
from firstspike.hw.link.replies import ReplySender, Source
from firstspike.hw.link.rows import RowMover
from firstspike.hw.link.spikes import SpikeCodeDecoder
from firstspike.sw.layout import MemoryLayout, Target
from firstspike.sw.link.messages import SPIKE_CODE_NACKS, Nack, pack_load, pack_rows, row_bytes
from firstspike.sw.link.spikecode import SpikeCodeError, decode_spikes, encode_spikes
from firstspike.sw.params import CoreParams

PARAMS = CoreParams((300, 7, 3), 9, lanes=2)
MAX_PAYLOAD = 1024


def bank(dut, data: bytes | Callable[[], bytes]):
    """A frame bank: the byte at ``read_address`` BANK_READ_LATENCY cycles later, as the
    receiver gives it; ``data`` or, called, the payload it holds now."""
    async def process(ctx):
        flight = [0] * (BANK_READ_LATENCY - 1)  # bytes read, on their way out
        async for _, _, address in ctx.tick().sample(dut.read_address):
            now = data() if callable(data) else data
            flight.append(now[address] if address < len(now) else 0)
            ctx.set(dut.read_byte, flight.pop(0))
    return process


def decode(*payloads: bytes) -> list[tuple[int, list[dict]]]:
    """Each payload's verdict and the events sent for it, one after another through one decoder."""
    dut = SpikeCodeDecoder(PARAMS, MAX_PAYLOAD)
    seen: list = []
    data = {"payload": b""}

    async def bench(ctx):
        for payload in payloads:
            data["payload"] = payload
            await put(ctx, dut.start, len(payload))
            verdict, events = await take(ctx, dut.verdict), []
            if verdict == 0:
                while True:
                    beat = await take(ctx, dut.events)
                    events.append({"index": beat.index, "step": beat.step, "end": beat.end})
                    if beat.end:
                        break
            else:  # a refused input sends nothing
                while not ctx.get(dut.start.ready):
                    assert not ctx.get(dut.events.valid)
                    await ctx.tick()
            seen.append((verdict, events))

    Bench(dut).run([bench], processes=[bank(dut, lambda: data["payload"])])
    return seen


def expected(payload: bytes) -> tuple[int, list[dict]]:
    """What the host's decoder makes of ``payload``: its NACK code, or the events."""
    try:
        times = decode_spikes(payload, PARAMS)
    except SpikeCodeError as error:
        return SPIKE_CODE_NACKS[error.which], []
    return 0, [{"index": i, "step": s, "end": 0} for i, s in sorted_events(times)] + [{"index": 0, "step": 0, "end": 1}]


@pytest.mark.parametrize("seed", range(3))
def test_the_decoder_sends_every_spike_of_the_host_encoding_in_order_then_the_end(seed):
    times = np.random.default_rng(seed).integers(-1, PARAMS.time_steps, PARAMS.n_inputs)
    times[:260] = np.where(np.arange(260) % 3 == 0, -1, times[:260])
    payload = encode_spikes(times, PARAMS.time_steps)
    assert decode(payload) == [expected(payload)]
    assert expected(payload)[0] == 0


FAULTS = {
    "steps": (raw_spike_code([[]] * 9 + [[0]], time_steps=9), Nack.TIME_RANGE),
    "index": (raw_spike_code([[5, 200, 93]], time_steps=9), Nack.INDEX_RANGE),      # 5 + 1 + 200 + 1 + 93 = 300
    "repeat": (raw_spike_code([[5, 200], [], [0, 4, 194]], time_steps=9), Nack.SPIKE_REPEAT),  # 206 again
    "cut short": (raw_spike_code([[5, 200]], time_steps=9)[:-1], Nack.BAD_CODE),
    "empty": (b"", Nack.BAD_CODE),
    "spare byte": (raw_spike_code([[5]], time_steps=9, extra=b"\0"), Nack.BAD_CODE),
    "padding set": (raw_spike_code([[5]], time_steps=9, pad=1), Nack.BAD_CODE),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_decoder_refuses_a_fault_before_sending_any_spike_then_takes_the_same_inputs(fault):
    """The input bits a refused payload marked are cleared: its spikes are no repeats later."""
    payload, code = FAULTS[fault]
    assert expected(payload)[0] == code
    again = raw_spike_code([[5, 200], [], [0, 4]], time_steps=9)
    assert decode(payload, again) == [(code, []), expected(again)]


@settings(max_examples=examples(60), deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])  # (shrinking a sim: minutes)
@given(st.lists(st.binary(min_size=1, max_size=24), min_size=1, max_size=4), st.integers(0, 2**32 - 1))
def test_the_decoder_gives_any_bytes_the_host_decoders_verdict_and_spikes(payloads, seed):
    """Random bytes, and valid payloads with a bit flipped, one after another."""
    rng = np.random.default_rng(seed)
    times = np.where(rng.random(PARAMS.n_inputs) < 0.05, rng.integers(0, PARAMS.time_steps, PARAMS.n_inputs), -1)
    flipped = bytearray(encode_spikes(times, PARAMS.time_steps))
    flipped[rng.integers(len(flipped))] ^= 1 << int(rng.integers(8))
    payloads = [*payloads, bytes(flipped), encode_spikes(times, PARAMS.time_steps)]
    assert decode(*payloads) == [expected(p) for p in payloads]


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

    async def vector_owner(ctx):  # the handler's part: the vector shifted down as bytes go
        async for _, _, shift, vector in ctx.tick().sample(dut.vector_shift, dut.vector):
            if shift:
                ctx.set(dut.vector, vector >> 8)

    feeders = [rows] if source is Source.ROWS else []  # nothing may wait on a stream at the end
    Bench(dut).run([bench, *feeders], processes=[bank(dut, payload), vector_owner])
    assert got["header"] == (0x85, 9, len(payload)) and bytes(got["bytes"]) == payload
