"""The link's wire format: CRC, framing with byte stuffing, messages and the spike code."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire import raw_spike_code

from firstspike.sw import CoreParams, Kernel, Schedule, load_model
from firstspike.sw.layout import MemoryLayout, Target
from firstspike.sw.link.crc import CATALOG_NAME, crc16
from firstspike.sw.link.framing import FLAG, FaultKind, Frame, FrameDecoder, FrameFault, encode_frame
from firstspike.sw.link.messages import PROTOCOL_VERSION, Info, Result
from firstspike.sw.link.spikecode import SpikeCodeError, decode_spikes, encode_spikes, max_encoded_bytes
from firstspike.sw.models import shipped_model_path
from firstspike.sw.synthetic import random_spike_times

frames = st.builds(Frame, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=300))


def test_crc_is_crc16_ibm_3740_with_its_check_value():
    assert crc16(b"123456789") == 0x29B1
    from amaranth.lib import crc
    parameters = getattr(crc.catalog, CATALOG_NAME)
    for data in (b"", b"\x7e", bytes(range(256)), b"firstspike"):
        assert crc16(data) == parameters(8).compute(data)


@given(frames)
def test_a_frame_comes_back_as_sent_and_holds_no_flag_after_its_first_byte(frame):
    wire = encode_frame(frame)
    assert wire[0] == FLAG and FLAG not in wire[1:]
    assert FrameDecoder().feed(wire) == [frame]


@given(st.lists(frames, min_size=1, max_size=5), st.binary(max_size=50))
def test_frames_after_garbage_are_received(sequence, garbage):
    decoder = FrameDecoder()
    items = decoder.feed(garbage.replace(bytes((FLAG,)), b"") + b"".join(encode_frame(f) for f in sequence))
    assert items == sequence


@given(frames, st.data())
def test_a_flipped_bit_is_caught_and_the_next_frame_still_arrives(frame, data):
    wire = bytearray(encode_frame(frame))
    position = data.draw(st.integers(1, len(wire) - 1))
    wire[position] ^= 1 << data.draw(st.integers(0, 7))
    after = Frame(1, 2, b"next")
    items = FrameDecoder().feed(bytes(wire) + encode_frame(after))
    assert items[-1] == after
    assert frame not in items[:-1]


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_any_bytes_give_frames_or_faults_and_never_an_exception(data):
    for item in FrameDecoder(max_payload=64).feed(data):
        assert isinstance(item, (Frame, FrameFault))


def test_a_length_over_the_maximum_is_refused_at_the_header():
    wire = encode_frame(Frame(5, 9, bytes(100)))
    items = FrameDecoder(max_payload=50).feed(wire[:5])
    assert items == [FrameFault(FaultKind.TOO_LONG, 5, 9)]


def test_a_new_flag_cuts_a_partial_frame_short():
    wire = encode_frame(Frame(3, 4, b"abcdef"))
    items = FrameDecoder().feed(wire[:6] + encode_frame(Frame(3, 5)))
    assert items == [FrameFault(FaultKind.CUT_SHORT, 3, 4), Frame(3, 5)]


def test_reset_drops_a_partial_frame():
    decoder = FrameDecoder()
    wire = encode_frame(Frame(3, 4, b"abcdef"))
    decoder.feed(wire[:6])
    decoder.reset()
    assert decoder.feed(wire[6:]) == []


@settings(max_examples=200)
@given(st.integers(1, 700), st.integers(1, 40), st.floats(0, 1), st.integers(0, 2**32 - 1))
def test_spike_code_round_trips_and_stays_within_its_bound(n_in, steps, density, seed):
    params = CoreParams((n_in, 3), steps)
    times = random_spike_times(params, np.random.default_rng(seed), 1, density=density)[0]
    payload = encode_spikes(times, steps)
    assert np.array_equal(decode_spikes(payload, params), times)
    assert len(payload) <= max_encoded_bytes(params)


def test_the_spike_code_of_the_worst_input_fills_its_bound_nearly():
    """Every input spiking, each at its own step where it can: the bound is not loose."""
    params = CoreParams((700, 3), 40)
    times = np.arange(700) % 40
    assert 0.5 * max_encoded_bytes(params) < len(encode_spikes(times, 40)) <= max_encoded_bytes(params)


@pytest.mark.parametrize("payload, which, message", [
    (raw_spike_code([[]] * 16 + [[0]]), "step", "17 steps, more than T = 16"),
    (raw_spike_code([[5, 58]]), "index", "step 0: input 64 is not below 64"),
    (raw_spike_code([[1, 2], [], [4]]), "repeat", "step 2: input 4 already spiked at step 0"),
    (raw_spike_code([[1, 2]])[:1], "code", "ends inside a value"),
    (b"", "code", "ends inside a value"),
    (raw_spike_code([[1, 2]], extra=b"\0"), "code", "goes on after its last step"),
    (raw_spike_code([[1, 2]], pad=1), "code", "goes on after its last step"),
], ids=["step count", "index", "repeat", "cut short", "empty", "spare byte", "padding set"])
def test_the_spike_code_names_the_first_fault_of_a_payload(payload, which, message):
    with pytest.raises(SpikeCodeError, match=message) as error:
        decode_spikes(payload, CoreParams((64, 3), 16))
    assert error.value.which == which


def test_an_input_without_spikes_is_a_header_of_one_byte_and_a_half():
    params = CoreParams((64, 3), 16)
    payload = encode_spikes(np.full(64, -1), 16)
    assert len(payload) == 2 and (decode_spikes(payload, params) == -1).all()


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_any_bytes_decode_to_spikes_or_to_a_named_fault(payload):
    params = CoreParams((20, 3), 6)
    try:
        times = decode_spikes(payload, params)
    except SpikeCodeError as error:
        assert error.which in ("step", "index", "repeat", "code")
    else:
        assert encode_spikes(times, 6) == payload or len(encode_spikes(times, 6)) <= len(payload)


def test_info_and_result_round_trip():
    params = CoreParams((784, 400, 100, 10), 32, kernel=Kernel.RAMP, weight_bits=6, potential_bits=20, lanes=32)
    info = Info(params, 48_000_000, 1_000_000, 1200, bytes(range(32)), 1)
    assert Info.unpack(info.pack()) == info
    result = Result(7, True, False, 123456, 300, (40, 9, 2), np.array([3, -1, 5, -1, -1, -1, -1, 2, -1, -1]), 2)
    back = Result.unpack(result.pack(), params)
    assert back.decision == 7 and back.cycles == 123456 and back.layer_spikes == (40, 9, 2)
    assert back.output_times.tolist() == result.output_times.tolist()


def test_info_of_a_conv_network_carries_its_layer_shapes():
    """Conv and pooled layers (every field: strides, padding, kernels that are not square)."""
    from firstspike.sw.params import Schedule
    from firstspike.sw.topology import Conv2d, Dense, MapShape, Pooling, PoolKind, stack
    sizes, shapes = stack(MapShape(2, 11, 9), [lambda m: Conv2d(m, 7, (5, 3), (2, 1), (2, 0)),
                                                lambda m: Conv2d(m, 3, (2, 2), 1, 1, Pooling(2)),
                                                lambda m: Dense(4, m, Pooling(2, PoolKind.MAX)), lambda m: Dense(3)])
    params = CoreParams(sizes, 8, lanes=4, schedule=Schedule.STEPPED, shapes=shapes)
    info = Info(params, 25_000_000, 3_000_000, 900, bytes(range(32)), 1)
    back = Info.unpack(info.pack())
    assert back.params == params and back.params.shapes == shapes and back.committed
    with pytest.raises(ValueError, match="wrong length"):
        Info.unpack(info.pack()[:-1])


def test_info_carries_up_to_256_lanes_and_names_another_protocol_version():
    params = CoreParams((784, 400, 10), 32, lanes=256, schedule=Schedule.STEPPED)
    packed = Info(params, 25_000_000, 3_000_000, 900, bytes(32), 1).pack()
    assert Info.unpack(packed).params == params
    with pytest.raises(ValueError, match=f"the device speaks protocol version 4, this driver {PROTOCOL_VERSION}"):
        Info.unpack(bytes((4,)) + packed[1:])


@pytest.mark.parametrize("lanes", [1, 5, 16, 64, 256])
def test_memory_words_unpack_to_the_model(lanes):
    model = load_model(shipped_model_path("digits"))
    layout = MemoryLayout(model.params.with_lanes(lanes))
    weights = layout.unpack(layout.words(model, Target.WEIGHTS), Target.WEIGHTS)
    initial = layout.unpack(layout.words(model, Target.INITIAL_POTENTIALS), Target.INITIAL_POTENTIALS)
    for layer, w, b in zip(model.layers, weights, initial):
        assert np.array_equal(layer.weights, w) and np.array_equal(layer.initial_potentials, b)
