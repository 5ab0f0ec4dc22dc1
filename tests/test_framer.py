"""The gateware frame receiver and transmitter against the host's framing (sw/link)."""

from __future__ import annotations

import numpy as np
from amaranth_harness import Bench

from firstspike.hw.link.framer import BANK_READ_LATENCY, FrameReceiver, FrameTransmitter
from firstspike.sw.link.framing import ESCAPE, FLAG, FaultKind, Frame, FrameDecoder, FrameFault, encode_frame
from firstspike.sw.link.messages import Nack

MAX_PAYLOAD = 300


def random_frames(seed: int, count: int) -> list[Frame]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        length = int(rng.choice([0, 1, 2, int(rng.integers(0, MAX_PAYLOAD + 1))]))
        # Plenty of bytes that need stuffing.
        payload = bytes(rng.choice([FLAG, 0x7D, 0x5E, 0x5D, int(rng.integers(0, 256))], length).tolist())
        frames.append(Frame(int(rng.integers(0, 256)), int(rng.integers(0, 256)), payload))
    return frames


def run_receiver(wire: bytes, *, gaps: float = 0.5, spacing: int = 40, seed: int = 0, hold: bool = False,
                 idle_timeout: int = 1000, pause_at: int | None = None, pause: int = 0,
                 lost_at: frozenset[int] = frozenset()):
    """Feed ``wire`` into a receiver, a byte every ``spacing`` cycles or more (a UART with
    divisor 4 gives 40); returns the frames (payloads read back from their bank) and the faults.
    ``hold``: never release banks (to see BUSY); ``pause`` cycles of silence before byte
    ``pause_at``; ``lost_at``: positions of bytes the line loses (``line_error`` instead of
    the byte, as the UART reports a missing stop bit)."""
    dut = FrameReceiver(MAX_PAYLOAD, idle_timeout)
    rng = np.random.default_rng(seed)
    frames, faults = [], []

    async def feed(ctx):
        ctx.set(dut.faults.ready, 1)
        for position, byte in enumerate(wire):
            if position == pause_at:
                await ctx.tick().repeat(pause)
            while rng.random() < gaps:
                await ctx.tick()
            port = dut.line_error if position in lost_at else dut.bytes_in.valid
            ctx.set(dut.bytes_in.payload, byte)
            ctx.set(port, 1)
            await ctx.tick()
            ctx.set(port, 0)
            if spacing:
                await ctx.tick().repeat(spacing)
        await ctx.tick().repeat(2 * idle_timeout + 20)

    async def watch_faults(ctx):
        async for _, _, valid, fault in ctx.tick().sample(dut.faults.valid, dut.faults.payload):
            if valid:
                faults.append((Nack(fault.code), fault.type, fault.sequence))

    async def collect(ctx):
        """Takes each frame at once (as the command handler does), then reads its bank and
        releases it."""
        while True:
            ctx.set(dut.frames.ready, 1)
            valid, got = ctx.get(dut.frames.valid), ctx.get(dut.frames.payload)
            await ctx.tick()
            if not valid:
                continue
            ctx.set(dut.frames.ready, 0)
            payload = bytearray()
            ctx.set(dut.read_bank, got.bank)
            length = got.header.length
            for address in range(length + BANK_READ_LATENCY - 1):  # a byte a cycle, in flight
                ctx.set(dut.read_address, min(address, max(length - 1, 0)))
                await ctx.tick()
                if address >= BANK_READ_LATENCY - 1:  # the byte of the address set before the last tick
                    payload.append(ctx.get(dut.read_data))
            frames.append(Frame(got.header.type, got.header.sequence, bytes(payload)))
            if not hold:
                ctx.set(dut.release_bank, got.bank)
                ctx.set(dut.release, 1)
                await ctx.tick()
                ctx.set(dut.release, 0)

    Bench(dut, period=1e-6).run([feed], background=[collect], processes=[watch_faults])
    return frames, faults


def test_receiver_gives_back_every_frame_the_host_encodes():
    sent = random_frames(1, 25)
    frames, faults = run_receiver(b"".join(encode_frame(f) for f in sent))
    assert frames == sent and faults == []


def test_receiver_skips_garbage_before_a_frame_and_takes_bytes_back_to_back():
    sent = random_frames(2, 2)  # two banks: two frames may arrive faster than they are read
    frames, faults = run_receiver(b"\x00\x7d\x55" + b"".join(encode_frame(f) for f in sent), gaps=0.0, spacing=0)
    assert frames == sent and faults == []


def test_receiver_nacks_a_bad_crc_an_overlong_frame_and_a_cut_frame_and_recovers():
    good = Frame(5, 6, b"fine")
    bad_crc = bytearray(encode_frame(Frame(1, 2, b"abc")))
    bad_crc[-2] ^= 0x01
    too_long = encode_frame(Frame(3, 4, bytes(MAX_PAYLOAD + 1)))[:8]
    cut = encode_frame(Frame(7, 8, b"abcdef"))[:7]
    frames, faults = run_receiver(bytes(bad_crc) + too_long + cut + encode_frame(good))
    assert faults == [(Nack.BAD_CRC, 1, 2), (Nack.BAD_LENGTH, 3, 4), (Nack.FRAMING, 7, 8)]
    assert frames == [good]


def test_receiver_drops_a_partial_frame_after_the_idle_timeout():
    partial = encode_frame(Frame(1, 1, b"partial"))[:6]
    rest = encode_frame(Frame(2, 2, b"next"))[1:]  # without its start byte: must not count
    frames, faults = run_receiver(partial + rest, idle_timeout=30, gaps=0.0, spacing=0, pause_at=len(partial),
                                  pause=31)
    assert frames == [] and faults == []
    frames, faults = run_receiver(partial + rest, idle_timeout=30, gaps=0.0, spacing=0, pause_at=len(partial),
                                  pause=28)  # not silent long enough: the rest is taken as the frame's bytes
    assert frames == [] and faults and faults[0][0] in (Nack.BAD_CRC, Nack.BAD_LENGTH)


def test_a_byte_lost_on_the_line_ends_its_frame_with_a_framing_nack_and_the_next_frame_comes_through():
    hit, good = Frame(9, 3, b"damaged on the line"), Frame(5, 6, b"fine")
    wire = encode_frame(hit) + encode_frame(good)
    frames, faults = run_receiver(wire, lost_at=frozenset({7}))
    assert faults == [(Nack.FRAMING, 9, 3)] and frames == [good]
    # Outside a frame (before its start byte) a lost byte is nothing to answer.
    frames, faults = run_receiver(b"\x00" + wire, lost_at=frozenset({0}))
    assert faults == [] and frames == [hit, good]


def test_a_third_frame_while_two_banks_are_held_gets_busy():
    sent = [Frame(1, 1, b"a"), Frame(2, 2, b"b"), Frame(3, 3, b"c")]
    frames, faults = run_receiver(b"".join(encode_frame(f) for f in sent), hold=True)
    assert frames == sent[:2] and faults == [(Nack.BUSY, 3, 3)]


def run_transmitter(frames: list[Frame], *, stall: float = 0.5, slow_payload: float = 0.3, seed: int = 0) -> bytes:
    dut = FrameTransmitter(MAX_PAYLOAD)
    rng = np.random.default_rng(seed)
    out = bytearray()
    expected = sum(len(encode_frame(f)) for f in frames)

    async def send(ctx):
        for frame in frames:
            ctx.set(dut.frames.payload, {"type": frame.type, "sequence": frame.sequence, "length": len(frame.payload)})
            ctx.set(dut.frames.valid, 1)
            await ctx.tick().until(dut.frames.ready)
            ctx.set(dut.frames.valid, 0)
            for byte in frame.payload:
                while rng.random() < slow_payload:
                    await ctx.tick()
                ctx.set(dut.payload.payload, byte)
                ctx.set(dut.payload.valid, 1)
                await ctx.tick().until(dut.payload.ready)
                ctx.set(dut.payload.valid, 0)

    async def receive(ctx):
        for _ in range(20 * expected + 1000):  # bounded: a stuck transmitter fails, not hangs
            if len(out) == expected:
                break
            ready = int(rng.random() >= stall)
            ctx.set(dut.bytes_out.ready, ready)
            valid, byte = ctx.get(dut.bytes_out.valid), ctx.get(dut.bytes_out.payload)
            await ctx.tick()
            if ready and valid:
                out.append(byte)

    Bench(dut, period=1e-6).run([receive], background=[send])
    return bytes(out)


def test_transmitter_sends_exactly_the_bytes_the_host_encoding_gives():
    frames = random_frames(3, 20)
    assert run_transmitter(frames) == b"".join(encode_frame(f) for f in frames)


def test_transmitter_at_full_speed():
    frames = random_frames(4, 8)
    assert run_transmitter(frames, stall=0.0, slow_payload=0.0) == b"".join(encode_frame(f) for f in frames)


from fuzzing import examples  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=examples(25), deadline=None)
@given(st.binary(max_size=120), st.integers(0, 2**32 - 1))
def test_receiver_survives_any_bytes_and_then_takes_a_good_frame(garbage, seed):
    """Fuzz: whatever arrives, the receiver neither hangs nor keeps a bank, and the next
    good frame (after a pause longer than the idle timeout) comes through intact."""
    good = Frame(0x42, 0x17, b"after the noise \x7e\x7d")
    frames, faults = run_receiver(garbage, idle_timeout=60, gaps=0.3, spacing=1, seed=seed,
                                  pause_at=None)
    frames_after, _ = run_receiver(garbage + encode_frame(good), idle_timeout=60, gaps=0.3, spacing=1, seed=seed,
                                   pause_at=len(garbage), pause=61)
    assert frames_after[len(frames):] == [good]
    # Garbage can only be cut short, fail its CRC or claim too long a payload; never BUSY:
    # every frame's bank is released at once here.
    assert {code for code, _, _ in faults} <= {Nack.FRAMING, Nack.BAD_CRC, Nack.BAD_LENGTH}


FAULT_NACKS = {FaultKind.BAD_CRC: Nack.BAD_CRC, FaultKind.TOO_LONG: Nack.BAD_LENGTH,
               FaultKind.CUT_SHORT: Nack.FRAMING, FaultKind.BAD_ESCAPE: Nack.FRAMING}


@st.composite
def damaged_streams(draw) -> bytes:
    """Valid frames (start byte, stuffing, CRC all right), some damaged in one place: a byte
    of the header, payload or CRC changed, a byte inserted (often a start or escape byte),
    or the frame cut short; with stray bytes between frames."""
    wire = bytearray()
    for _ in range(draw(st.integers(1, 4))):
        payload = draw(st.binary(max_size=24).map(lambda b: bytes(x if x % 5 else FLAG + (x % 2) * 3 for x in b)))
        frame = bytearray(encode_frame(Frame(draw(st.integers(0, 255)), draw(st.integers(0, 255)), payload)))
        damage = draw(st.sampled_from(["none", "change", "insert", "cut", "length"]))
        at = draw(st.integers(1, len(frame) - 1))
        if damage == "change":
            frame[at] = draw(st.integers(0, 255).filter(lambda b, old=frame[at]: b != old))
        elif damage == "insert":
            frame[at:at] = bytes((draw(st.sampled_from([FLAG, ESCAPE, 0x5E, 0x5D, 0x00, 0xFF])),))
        elif damage == "cut":
            del frame[at:]
        elif damage == "length":  # a header that claims more than the maximum payload
            frame = bytearray(encode_frame(Frame(1, 2, bytes(MAX_PAYLOAD + draw(st.integers(1, 50))))))[:12]
        wire += draw(st.binary(max_size=3)) + frame
    return bytes(wire)


@settings(max_examples=examples(40), deadline=None)
@given(damaged_streams(), st.integers(0, 2**32 - 1))
def test_receiver_takes_and_refuses_exactly_what_the_host_decoder_does_around_damaged_fields(wire, seed):
    """Deep fuzz: frames that get past the start byte, the stuffing and the header, with the
    damage where the checks are; the gateware's frames and NACKs equal the host's decoder."""
    frames, faults = run_receiver(wire, gaps=0.3, spacing=1, seed=seed)
    items = FrameDecoder(MAX_PAYLOAD).feed(wire)
    assert frames == [item for item in items if isinstance(item, Frame)]
    assert faults == [(FAULT_NACKS[f.kind], f.type or 0, f.sequence or 0)
                      for f in items if isinstance(f, FrameFault)]


def test_the_ecp5_receiver_reads_each_bank_through_its_block_rams_output_register(tmp_path):
    """On the ECP5 each bank is a DP16KD read through its own output register (hw/blockram.py):
    two frames land in the two banks and read back, an address a cycle alternating between
    the banks, each byte BANK_READ_LATENCY cycles after its address, in Icarus with our
    model of the block."""
    from icarus_blocks import run_with_block_model

    from firstspike.hw.blockram import Fabric
    from firstspike.hw.generate import verilog_text

    rng = np.random.default_rng(5)
    frames = [Frame(3, number, bytes(rng.integers(0, 256, 40, dtype=np.uint8))) for number in range(2)]
    verilog = verilog_text(FrameReceiver(64, 1000), "rx", Fabric("ecp5"))
    assert verilog.count("DP16KD #(") == 2 and verilog.count('.REGMODE_B("OUTREG")') == 2
    steps = [f"bytes_in__payload = {byte}; bytes_in__valid = 1; @(posedge clk); #1; bytes_in__valid = 0; "
             "repeat (3) @(posedge clk); #1;" for frame in frames for byte in encode_frame(frame)]
    steps += ["repeat (20) @(posedge clk); #1;"]
    asked = [(address % 2 ^ bank, address) for address in range(40) for bank in (0, 1)]
    steps += [f'read_bank = {bank}; read_address = {address}; @(posedge clk); #1; $display("D 0 %0d", read_data);'
              for bank, address in asked + [(0, 0)] * (BANK_READ_LATENCY - 1)]
    shown = run_with_block_model(tmp_path, "rx", verilog,
        "module bench;\n  reg clk = 0, rst = 0, bytes_in__valid = 0, read_bank = 0;\n"
        "  reg [7:0] bytes_in__payload = 0;\n  reg [5:0] read_address = 0;\n"
        "  wire [7:0] read_data;\n  wire [23:0] frames__payload, faults__payload;\n"
        "  wire frames__valid, faults__valid, bytes_in__ready;\n  always #5 clk = ~clk;\n"
        "  always @(posedge clk) if (frames__valid) $display(\"F %0d %0d\", frames__payload[23], "
        "frames__payload[15:8]);\n"
        "  rx dut(.clk(clk), .rst(rst), .bytes_in__valid(bytes_in__valid), .bytes_in__payload(bytes_in__payload),\n"
        "         .bytes_in__ready(bytes_in__ready), .frames__valid(frames__valid), .frames__ready(1'b1),\n"
        "         .frames__payload(frames__payload), .faults__valid(faults__valid), .faults__ready(1'b1),\n"
        "         .faults__payload(faults__payload), .line_error(1'b0), .\\release (1'b0), .release_bank(1'b0),\n"
        "         .read_bank(read_bank), .read_address(read_address), .read_data(read_data));\n"
        "  initial begin\n    #1;\n" + "\n".join(f"    {step}" for step in steps) + "\n    $finish;\n  end\nendmodule\n")
    lines = [line.split() for line in shown.splitlines() if line[:2] in ("F ", "D ")]
    banks = {int(sequence): int(bank) for kind, bank, sequence in (line for line in lines if line[0] == "F")}
    assert sorted(banks) == [0, 1] and sorted(banks.values()) == [0, 1]
    values = [int(value) for kind, _, value in lines if kind == "D"][BANK_READ_LATENCY - 1:]
    assert len(values) == len(asked)
    for frame in frames:
        bank = banks[frame.sequence]
        assert bytes(value for (b, _), value in zip(asked, values) if b == bank) == frame.payload
