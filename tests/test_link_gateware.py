"""The gateware behind its link, in Amaranth's simulator, against the protocol emulator:
for every request (good ones and each malformed kind), the same reply bytes."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth_harness import Bench
from wire import raw_spike_code

from firstspike.hw.link.top import LinkedCore
from firstspike.hw.link.wire import struct_layout
from firstspike.sw.datasets import load_dataset
from firstspike.sw.emulator import DeviceEmulator
from firstspike.sw.layout import MemoryLayout, Target
from firstspike.sw.link.fields import HEADER, REGION, result_reply
from firstspike.sw.link.framing import Frame, FrameDecoder, encode_frame
from firstspike.sw.link.messages import Command, pack_load, pack_read
from firstspike.sw.link.spikecode import encode_spikes
from firstspike.sw.model import load_model
from firstspike.sw.models import shipped_model_path

CLOCK, BAUD, LANES = 12_000_000, 1_000_000, 16


def replies_from_gateware(model, requests: list[bytes]) -> list[bytes]:
    """Each request's bytes in, then every byte out until its reply has come and the line
    has been quiet a while."""
    dut = LinkedCore(model, LANES, clock_hz=CLOCK, baud=BAUD, idle_timeout=400)
    answers: list[bytes] = []

    async def bench(ctx):
        ctx.set(dut.bytes_out.ready, 1)
        for request in requests:
            out, decoder, quiet, replies = bytearray(), FrameDecoder(), 0, 0
            pending = list(request)
            for cycle in range(200_000):
                sending = bool(pending) and cycle % 4 == 0  # a byte every few cycles, like a fast UART
                if sending:
                    ctx.set(dut.bytes_in.payload, pending.pop(0))
                ctx.set(dut.bytes_in.valid, sending)
                valid, byte = ctx.get(dut.bytes_out.valid), ctx.get(dut.bytes_out.payload)
                await ctx.tick()
                if valid:
                    out.append(byte)
                    replies += len(decoder.feed(bytes((byte,))))
                    quiet = 0
                else:
                    quiet += 1
                if not pending and replies and quiet > 100:
                    break
            else:
                raise AssertionError(f"no reply to {request.hex()}")
            answers.append(bytes(out))

    Bench(dut, period=1 / CLOCK).run([bench])
    return answers


def frame(command, sequence, payload=b""):
    return encode_frame(Frame(command, sequence, payload))


def test_every_reply_equals_the_emulators_byte_for_byte():
    model = load_model(shipped_model_path("digits"))
    layout = MemoryLayout(model.params.with_lanes(LANES))
    x, _ = load_dataset("digits").split("test")
    times = model.encoding.encode(x[:3], model.params.time_steps)
    thresholds = layout.words(model, Target.THRESHOLDS)
    bad_crc = bytearray(frame(Command.ECHO, 20, b"damaged"))
    bad_crc[-2] ^= 0x04
    requests = [
        frame(Command.INFO, 1),
        frame(Command.ECHO, 2, bytes((0x7E, 0x7D, 0x00, 0xFF)) * 3),
        frame(Command.READ_RESULT, 3),                                  # NO_RESULT
        frame(Command.INFER, 4, encode_spikes(times[0], 16)),
        frame(Command.INFER, 5, encode_spikes(times[1], 16)),
        frame(Command.READ_RESULT, 6),
        frame(Command.READ, 7, pack_read(Target.WEIGHTS, 3, 4)),
        frame(Command.READ, 8, pack_read(Target.INITIAL_POTENTIALS, 0, len(thresholds))),
        frame(Command.LOAD, 9, pack_load(layout, Target.THRESHOLDS, 0, [thresholds[0] ^ 0x0F0F] + thresholds[1:3])),
        frame(Command.INFO, 10),                                        # hash cleared by the LOAD
        frame(Command.READ, 11, pack_read(Target.THRESHOLDS, 0, 3)),
        frame(Command.COMMIT, 12, bytes(range(32))),
        frame(Command.INFO, 13),
        frame(Command.INFER, 14, encode_spikes(times[2], 16)),
        frame(Command.INFER, 15, raw_spike_code([[3, 60]])),            # INDEX_RANGE: input 64
        frame(Command.INFER, 16, raw_spike_code([[]] * 16 + [[3]])),    # TIME_RANGE
        frame(Command.INFER, 17, encode_spikes(np.full(64, -1), 16)),   # no spikes at all
        frame(Command.INFER, 17, raw_spike_code([[3, 60], [], [3]])),   # SPIKE_REPEAT: input 3
        frame(Command.INFER, 17, b""),                                  # BAD_CODE
        frame(Command.INFER, 17, raw_spike_code([[3]], pad=1)),         # BAD_CODE
        frame(0x33, 18),                                                # UNKNOWN_TYPE
        frame(Command.INFO, 19, b"x"),                                  # BAD_LENGTH
        bytes(bad_crc),                                                 # BAD_CRC
        frame(Command.LOAD, 21, bytes((7, 0, 0, 0, 0, 1, 0))),          # BAD_TARGET
        frame(Command.READ, 22, pack_read(Target.WEIGHTS, layout.weight_rows - 1, 2)),  # BAD_ADDRESS
        frame(Command.READ, 23, pack_read(Target.WEIGHTS, 0, 1) + b"x"),              # BAD_LENGTH
        frame(Command.LOAD, 24, pack_load(layout, Target.WEIGHTS, 0, [1])[:-1]),      # BAD_LENGTH
        frame(Command.ECHO, 25, bytes(3000))[:12],                      # over the maximum: BAD_LENGTH
        frame(Command.COMMIT, 26, bytes(31)),                           # BAD_LENGTH
        frame(Command.RESET, 27),
        frame(Command.ECHO, 28, b"still here"),
    ]
    emulator = DeviceEmulator(model, LANES, clock_hz=CLOCK, baud=BAUD)
    expected = [emulator.receive(request) for request in requests]
    got = replies_from_gateware(model, requests)
    for request, want, have in zip(requests, expected, got):
        assert have == want, (f"request {FrameDecoder().feed(request)}: gateware {FrameDecoder().feed(have)}, "
                              f"emulator {FrameDecoder().feed(want)}")


@pytest.mark.parametrize("wire", [HEADER, REGION, result_reply(3, 10), result_reply(1, 1)],
                         ids=["header", "region", "result 3 layers", "result 1 layer"])
def test_a_wire_table_gives_the_gateware_the_same_bytes_as_the_host(wire):
    rng = np.random.default_rng(7)
    values = {f.name: (int(rng.integers(0, 256 ** f.size)) if f.count == 1
                       else [int(v) for v in rng.integers(0, 256 ** f.size, f.count)]) for f in wire.fields}
    layout = struct_layout(wire)
    bits = layout.const(values).as_value().value
    assert bits.to_bytes(wire.size, "little") == wire.pack(**values)
    assert wire.unpack(wire.pack(**values)) == {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
