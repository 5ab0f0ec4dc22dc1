"""Formal proofs (SymbiYosys): properties that must hold in every case. Covers show the
asserted situations are reachable, and the same proofs on designs broken on purpose
(one line of their source changed) fail: the proofs are not vacuous."""

from __future__ import annotations

import pytest
from formal.properties import stream_rules_of
from formal.prove import mutated, prove

from firstspike.hw import offsets
from firstspike.hw.link.framer import BANK_READ_LATENCY, FrameReceiver, FrameTransmitter
from firstspike.hw.link.replies import ReplySender
from firstspike.hw.link.rows import RowMover
from firstspike.hw.link.spikes import SpikeCodeDecoder
from firstspike.hw.offsets import KernelOffsets
from firstspike.sw.params import CoreParams
from firstspike.sw.topology import Conv2d, MapShape

SHAPE = Conv2d(MapShape(2, 5, 4), 3, (3, 2), (2, 1), (1, 0))


def test_kernel_offsets_passes_obey_the_stream_rules(tmp_path):
    design, ports = stream_rules_of(KernelOffsets(SHAPE))
    outcome = prove(design, ports, tmp_path, depth=12)
    assert outcome.passed, outcome.log[-3000:]


def test_the_stream_rule_proof_reaches_a_stalled_pass(tmp_path):
    design, ports = stream_rules_of(KernelOffsets(SHAPE))
    outcome = prove(design, ports, tmp_path, mode="cover", depth=12)
    assert outcome.passed, outcome.log[-3000:]


def test_the_stream_rule_proof_fails_on_a_unit_that_takes_events_while_a_pass_waits(tmp_path):
    broken = mutated(offsets, "self.events.ready.eq(~busy | (self.passes.ready & last))", "self.events.ready.eq(1)")
    design, ports = stream_rules_of(broken.KernelOffsets(SHAPE))
    outcome = prove(design, ports, tmp_path, depth=12)
    assert not outcome.passed and "Assert failed" in outcome.log, outcome.log[-3000:]


PARAMS = CoreParams((5, 3, 2), time_steps=4, lanes=2)
LINK_UNITS = {
    "frame receiver": lambda: FrameReceiver(max_payload=8, idle_timeout=6),
    "frame transmitter": lambda: FrameTransmitter(max_payload=8),
    "reply sender": lambda: ReplySender(max_payload=8, vector_bytes=2),
    "row mover": lambda: RowMover(PARAMS, max_payload=8),
    "spike code decoder": lambda: SpikeCodeDecoder(PARAMS, max_payload=8),
}


@pytest.mark.parametrize("unit", list(LINK_UNITS))
def test_every_stream_out_of_a_link_unit_obeys_the_stream_rules(unit, tmp_path):
    """k-induction: for every input that obeys the rules (and a frame memory that returns
    the same byte for the same address, and a steady INFO vector), every output stream's
    valid and payload hold until ready."""
    dut = LINK_UNITS[unit]()
    memories = [(dut.read_address, dut.read_byte, BANK_READ_LATENCY)] if hasattr(dut, "read_byte") else []
    steady = [dut.vector] if hasattr(dut, "vector") else []
    design, ports = stream_rules_of(dut, memories=memories, steady=steady)
    outcome = prove(design, ports, tmp_path, depth=16)
    assert outcome.passed, outcome.log[-3000:]


def test_the_spike_code_decoder_sends_only_inputs_in_range_and_only_after_a_zero_verdict(tmp_path):
    """An unbounded proof (IC3), for any bank bytes and lengths. (Not vacuous: the next test
    breaks the range check and the proof fails; a cover would have to walk a payload twice,
    too deep for a quick one.)"""
    from formal.spikes import DecoderBounds
    design = DecoderBounds(SpikeCodeDecoder(PARAMS, max_payload=8))
    outcome = prove(design, design.ports, tmp_path, engine="abc pdr")
    assert outcome.passed, outcome.log[-3000:]


@pytest.mark.slow  # covers and mutations, and the whole core: CI runs them
def test_the_decoder_proof_fails_on_a_decoder_that_skips_the_range_check(tmp_path):
    from formal.spikes import DecoderBounds

    from firstspike.hw.link import spikes
    broken = mutated(spikes, "with m.If(spike >= n):", "with m.If(0):")
    design = DecoderBounds(broken.SpikeCodeDecoder(PARAMS, max_payload=8))
    # A counterexample is 48 cycles deep (the bit-serial walk): ABC's BMC finds it in
    # seconds, where IC3 takes a minute.
    outcome = prove(design, design.ports, tmp_path, mode="bmc", depth=60, engine="abc bmc3")
    assert not outcome.passed and "returned FAIL" in outcome.log, outcome.log[-3000:]


@pytest.mark.slow  # covers and mutations, and the whole core: CI runs them
def test_the_stream_rule_proof_fails_on_a_transmitter_that_overwrites_a_waiting_byte(tmp_path):
    from firstspike.hw.link import framer
    broken = mutated(framer, "out_free = ~self.bytes_out.valid | self.bytes_out.ready", "out_free = 1")
    design, ports = stream_rules_of(broken.FrameTransmitter(max_payload=8))
    outcome = prove(design, ports, tmp_path, depth=16)
    assert not outcome.passed and "Assert failed" in outcome.log, outcome.log[-3000:]


@pytest.mark.parametrize("kernel, schedule", [("step", "stepped"), ("ramp", "stepped"), ("step", "layered"),
                                              pytest.param("ramp", "layered", marks=pytest.mark.slow)])
def test_one_lane_operation_equals_the_documented_rule_at_full_width(kernel, schedule, tmp_path):
    """Combinational, so one step covers every value: 8-bit weights, 16-bit potentials.
    On the layered schedule a ramp end spans up to ``T`` steps, found bit by bit in closed
    form; the proof unrolls them one by one, which the solver does for ``T = 4`` (spans 1
    to 4: the closed form's every bit, and a span that is no power of two) on one lane
    (lanes share nothing) in seconds, and not within minutes for ``T = 8``."""
    from formal.lane_spec import LaneStepSpec

    from firstspike.sw.params import Kernel, Schedule
    spans = kernel == "ramp" and schedule == "layered"
    params = CoreParams((600, 4), time_steps=4 if spans else 16, weight_bits=8, potential_bits=16,
                        lanes=1 if spans else 2, kernel=Kernel(kernel), schedule=Schedule(schedule))
    spec = LaneStepSpec(params)
    outcome = prove(spec, spec.ports(), tmp_path, mode="bmc", depth=1)
    assert outcome.passed, outcome.log[-3000:]
    assert prove(spec, spec.ports(), tmp_path / "cover", mode="cover", depth=1).passed  # a saturating spike


def test_the_lane_proof_reaches_a_saturating_spike_and_fails_on_a_strict_comparison(tmp_path):
    from formal.lane_spec import LaneStepSpec

    from firstspike.hw import lanes
    from firstspike.sw.params import Schedule
    params = CoreParams((600, 4), time_steps=16, lanes=2, schedule=Schedule.STEPPED)
    broken = mutated(lanes, "return (value >= threshold) | (threshold == low)",
                     "return (value > threshold) | (threshold == low)")
    spec = LaneStepSpec(params, lanes=broken.LaneArray)
    outcome = prove(spec, spec.ports(), tmp_path / "broken", mode="bmc", depth=1)
    assert not outcome.passed and "Assert failed" in outcome.log, outcome.log[-3000:]


def test_after_any_bytes_an_idle_gap_and_a_frame_the_receiver_hands_the_frame_on(tmp_path):
    """Bounded model check long enough for up to a dozen bytes of garbage (any bytes, line
    errors, faults left waiting), the idle gap and the largest frame of this reduced
    receiver (8-byte payloads: the framing logic does not depend on the payload bound
    beyond its counters' widths)."""
    from formal.recovery import Recovery

    from firstspike.sw.link.framing import Frame
    frame = Frame(type=1, sequence=0x7E, payload=bytes([0x7D, 1, 2, 3, 4, 5, 6, 0x7E]))  # escapes inside
    design = Recovery(FrameReceiver(max_payload=8, idle_timeout=6), frame, idle=6, within=5)
    outcome = prove(design, design.ports(), tmp_path, mode="bmc", depth=48)
    assert outcome.passed, outcome.log[-3000:]


@pytest.mark.slow  # covers and mutations, and the whole core: CI runs them
def test_the_recovery_proof_is_reached_and_fails_on_a_receiver_that_keeps_its_place_across_a_flag(tmp_path):
    from formal.recovery import Recovery

    from firstspike.hw.link import framer
    from firstspike.sw.link.framing import Frame
    frame = Frame(type=1, sequence=0x7E, payload=bytes([0x7D, 1, 2, 3, 4, 5, 6, 0x7E]))
    design = Recovery(FrameReceiver(max_payload=8, idle_timeout=6), frame, idle=6, within=5)
    assert prove(design, design.ports(), tmp_path / "cover", mode="cover", depth=48).passed
    broken = mutated(framer, "m.d.sync += [in_frame.eq(1), position.eq(0)]", "m.d.sync += in_frame.eq(1)")
    design = Recovery(broken.FrameReceiver(max_payload=8, idle_timeout=6), frame, idle=6, within=5)
    outcome = prove(design, design.ports(), tmp_path / "broken", mode="bmc", depth=48)
    assert not outcome.passed and "Assert failed" in outcome.log, outcome.log[-3000:]


@pytest.mark.slow  # covers and mutations, and the whole core: CI runs them
@pytest.mark.parametrize("kernel, schedule, conv", [("step", "stepped", False), ("ramp", "layered", False),
                                                    ("step", "stepped", True)])
def test_every_stream_out_of_the_core_obeys_the_stream_rules(kernel, schedule, conv, tmp_path):
    """The whole core at a reduced size (3-2-2, T = 2, P = 1; the control is the same at
    every size, only counters and memories widen; with ``conv`` a 1x3x3 input map, a 2x2
    convolution of 2 channels at 4 positions, then dense 2): results and read_data, by
    k-induction, for every events, write and read stream that obeys the rules."""
    from firstspike.hw.core import TTFSCore
    from firstspike.sw.params import Kernel, Schedule
    from firstspike.sw.topology import Conv2d, Dense, MapShape, stack
    sizes, shapes = ((3, 2, 2), ()) if not conv else stack(
        MapShape(1, 3, 3), [lambda m: Conv2d(m, 2, (2, 2)), lambda m: Dense(2)])
    params = CoreParams(sizes, time_steps=2, lanes=1, kernel=Kernel(kernel), schedule=Schedule(schedule),
                        shapes=shapes)
    design, ports = stream_rules_of(TTFSCore(params))
    outcome = prove(design, ports, tmp_path, depth=8)
    assert outcome.passed, outcome.log[-3000:]
    design, ports = stream_rules_of(TTFSCore(params))
    # (depth: the conv core's first result comes 30-odd cycles in: two layers over two steps, each
    # run with its drain of stepped_drain() cycles, then the decision)
    assert prove(design, ports, tmp_path / "cover", mode="cover", depth=40).passed  # a result waits for ready


@pytest.mark.slow  # covers and mutations, and the whole core: CI runs them
def test_the_core_proof_fails_on_a_core_that_withdraws_its_result(tmp_path):
    from firstspike.hw.core import stepped, top
    from firstspike.sw.params import Schedule
    broken = mutated(stepped, "with m.If(results.ready & ~seq.counted):", "with m.If(~seq.counted):")
    original = top.stepped_sequence
    top.stepped_sequence = broken.stepped_sequence
    try:
        params = CoreParams((3, 2, 2), time_steps=2, lanes=1, schedule=Schedule.STEPPED)
        design, ports = stream_rules_of(top.TTFSCore(params))
        outcome = prove(design, ports, tmp_path, depth=8)
    finally:
        top.stepped_sequence = original
    assert not outcome.passed and "Assert failed" in outcome.log, outcome.log[-3000:]


def _bounds_params(case: str) -> CoreParams:
    """Reduced cores for the bounds proof: the queue and the table, dense and conv layers."""
    from firstspike.sw.params import Kernel, Schedule
    from firstspike.sw.topology import Dense, stack
    if case == "conv":
        sizes, shapes = stack(MapShape(1, 2, 2), [lambda m: Conv2d(m, 1, (2, 1)), lambda m: Dense(1)])
        return CoreParams(sizes, time_steps=2, lanes=1, schedule=Schedule.STEPPED, shapes=shapes)
    if case == "table":
        return CoreParams((3, 2, 2), time_steps=2, lanes=1, kernel=Kernel.RAMP, schedule=Schedule.LAYERED)
    return CoreParams((3, 2, 2), time_steps=2, lanes=2 if case == "two lanes" else 1, schedule=Schedule.STEPPED)


@pytest.mark.parametrize("case", ["queue", *(pytest.param(case, marks=pytest.mark.slow)
                                              for case in ("two lanes", "table", "conv"))])
def test_the_core_never_overflows_its_queue_nor_loses_a_spike_nor_leaves_its_layers_memory_regions(case, tmp_path):
    """Unbounded (IC3 finds the invariant): for every input that obeys the stream rules the
    spike queue (stepped schedule; a conv layer's positions; records of two lanes) or the
    spike table (ramp, layered) never takes a record it has no room for nor gives one it
    does not hold; the queue hands the next layer exactly one event per queued spike; and
    every row a fold reads or writes lies in its layer's region."""
    from formal.bounds import CoreBounds
    design = CoreBounds(_bounds_params(case))
    outcome = prove(design, design.ports, tmp_path, engine="abc pdr")
    assert outcome.passed, outcome.log[-3000:]


def _fails_on_broken(monkeypatch, tmp_path, module, old: str, new: str, name: str, case: str) -> None:
    """The bounds proof of ``case`` on a core whose ``name`` (a part ``hw/core/top.py``
    builds it from) comes from ``module`` with ``old`` replaced by ``new``: it must fail."""
    from formal.bounds import CoreBounds

    from firstspike.hw.core import top
    monkeypatch.setattr(top, name, getattr(mutated(module, old, new), name))
    design = CoreBounds(_bounds_params(case))
    outcome = prove(design, design.ports, tmp_path, engine="abc pdr")
    assert not outcome.passed and "FAIL" in outcome.log, outcome.log[-3000:]


@pytest.mark.slow  # covers and mutations, and the whole core: CI runs them
def test_the_bounds_proof_reaches_a_full_queue_and_fails_on_a_queue_one_record_short(monkeypatch, tmp_path):
    from formal.bounds import CoreBounds

    from firstspike.hw import queue
    design = CoreBounds(_bounds_params("queue"))
    assert prove(design, design.ports, tmp_path / "cover", mode="cover", depth=30).passed
    _fails_on_broken(monkeypatch, tmp_path / "broken", queue, "return max([2] + [params.positions(k) * params.folds(k)",
                     "return max([1] + [params.positions(k) * params.folds(k) - 1", "SpikeQueue", "queue")


@pytest.mark.slow  # covers and mutations, and the whole core: CI runs them
def test_the_bounds_proof_fails_on_a_queue_that_drops_the_rest_of_a_record(monkeypatch, tmp_path):
    from firstspike.hw import queue
    _fails_on_broken(monkeypatch, tmp_path, queue, "rest.eq(current.fire & (current.fire - 1))", "rest.eq(0)",
                     "SpikeQueue", "two lanes")


@pytest.mark.slow  # covers and mutations, and the whole core: CI runs them
def test_the_bounds_proof_fails_on_a_core_that_reads_the_next_layers_state(monkeypatch, tmp_path):
    from firstspike.hw.core import sequencer
    _fails_on_broken(monkeypatch, tmp_path, sequencer, "seq.state_row.eq(layers.state_base + fold)",
                     "seq.state_row.eq(layers.state_base + fold + 1)", "sequence", "table")


@pytest.mark.slow  # IC3 on a whole link unit: 8-27 s; CI runs them
def test_every_payload_byte_leaves_the_frame_transmitter_once_in_its_place(tmp_path):
    """Unbounded (IC3): for every header and payload stream that obeys the rules, with any
    stalls on either side, the frame's k-th payload byte (k chosen freely) is the
    unstuffed frame's (header + k)-th byte: none lost, duplicated or changed."""
    from formal.delivery import TransmitterDelivery
    design = TransmitterDelivery(FrameTransmitter(max_payload=4))
    outcome = prove(design, design.ports, tmp_path, engine="abc pdr")
    assert outcome.passed, outcome.log[-3000:]


@pytest.mark.slow  # covers and mutations, and the whole core: CI runs them
def test_the_delivery_proof_reaches_an_escaped_byte_and_fails_on_a_transmitter_that_drops_its_second_half(
        tmp_path):
    from formal.delivery import TransmitterDelivery

    from firstspike.hw.link import framer
    design = TransmitterDelivery(FrameTransmitter(max_payload=4))
    assert prove(design, design.ports, tmp_path / "cover", mode="cover", depth=16).passed
    broken = mutated(framer, "pending_escape.eq(stuff)", "pending_escape.eq(0)")
    design = TransmitterDelivery(broken.FrameTransmitter(max_payload=4))
    outcome = prove(design, design.ports, tmp_path / "broken", engine="abc pdr")
    assert not outcome.passed and "FAIL" in outcome.log, outcome.log[-3000:]


@pytest.mark.slow  # IC3 on a whole link unit: 8-27 s; CI runs them
def test_every_payload_byte_a_frame_receiver_hands_on_is_the_one_on_the_line(tmp_path):
    """Unbounded (IC3): after any bytes and line errors, a frame the receiver offers holds,
    at payload position k (chosen freely), the byte the line carried there since its FLAG."""
    from formal.delivery import ReceiverDelivery
    design = ReceiverDelivery(FrameReceiver(max_payload=4, idle_timeout=6))
    outcome = prove(design, design.ports, tmp_path, engine="abc pdr")
    assert outcome.passed, outcome.log[-3000:]


@pytest.mark.slow  # covers and mutations, and the whole core: CI runs them
def test_the_receiver_delivery_proof_reaches_an_escaped_flag_and_fails_on_a_receiver_that_keeps_escapes(tmp_path):
    from formal.delivery import ReceiverDelivery

    from firstspike.hw.link import framer
    design = ReceiverDelivery(FrameReceiver(max_payload=4, idle_timeout=6))
    assert prove(design, design.ports, tmp_path / "cover", mode="cover", depth=16).passed
    broken = mutated(framer, "m.d.sync += [byte.eq(value ^ 0x20), have.eq(1)]", "m.d.sync += [byte.eq(value), have.eq(1)]")
    design = ReceiverDelivery(broken.FrameReceiver(max_payload=4, idle_timeout=6))
    outcome = prove(design, design.ports, tmp_path / "broken", engine="abc pdr")
    assert not outcome.passed and "FAIL" in outcome.log, outcome.log[-3000:]


@pytest.mark.slow  # IC3 on a whole link unit: 8-27 s; CI runs them
def test_the_command_handlers_streams_obey_the_stream_rules(tmp_path):
    """Its replies, events, writes and reads, for every frame, fault, result and row stream
    that obeys the rules (IC3: k-induction at depth 16 does not close it)."""
    from firstspike.hw.link.commands import CommandHandler
    dut = CommandHandler(PARAMS, max_payload=8, clock_hz=12_000_000, baud=115_200)
    design, ports = stream_rules_of(dut, memories=[(dut.read_address, dut.read_byte, BANK_READ_LATENCY)])
    outcome = prove(design, ports, tmp_path, engine="abc pdr")
    assert outcome.passed, outcome.log[-3000:]


def test_the_touched_positions_list_obeys_the_stream_rules_under_the_schedules_contract(tmp_path):
    from formal.touched import TouchedContract

    from firstspike.hw.touched import TouchedPositions
    design = TouchedContract(TouchedPositions(5))
    outcome = prove(design, design.ports, tmp_path, engine="abc pdr")
    assert outcome.passed, outcome.log[-3000:]


@pytest.mark.slow  # covers and mutations, and the whole core: CI runs them
def test_the_touched_positions_proof_fails_on_a_list_that_offers_one_past_its_end(tmp_path):
    from formal.touched import TouchedContract

    from firstspike.hw import touched
    broken = mutated(touched, "self.positions.valid.eq(head < count)", "self.positions.valid.eq(head <= count)")
    design = TouchedContract(broken.TouchedPositions(5))
    outcome = prove(design, design.ports, tmp_path, engine="abc pdr")
    assert not outcome.passed and "FAIL" in outcome.log, outcome.log[-3000:]
