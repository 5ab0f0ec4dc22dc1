"""Formal proofs (SymbiYosys): properties that must hold in every case, each also shown
to fail on a design broken on purpose, so the proof is not vacuous."""

from __future__ import annotations

from formal.properties import StreamRules
from formal.prove import mutated, prove

from firstspike.hw import offsets
from firstspike.hw.offsets import KernelOffsets
from firstspike.sw.topology import Conv2d, MapShape

SHAPE = Conv2d(MapShape(2, 5, 4), 3, (3, 2), (2, 1), (1, 0))


def offsets_ports(dut: KernelOffsets) -> list:
    return [dut.events.valid, dut.events.payload.as_value(), dut.events.ready,
            dut.passes.valid, dut.passes.payload.as_value(), dut.passes.ready]


def test_kernel_offsets_passes_obey_the_stream_rules(tmp_path):
    dut = KernelOffsets(SHAPE)
    outcome = prove(StreamRules(dut, [dut.events], [dut.passes]), offsets_ports(dut), tmp_path, depth=12)
    assert outcome.passed, outcome.log[-3000:]


def test_the_stream_rule_proof_reaches_a_stalled_pass(tmp_path):
    dut = KernelOffsets(SHAPE)
    outcome = prove(StreamRules(dut, [dut.events], [dut.passes]), offsets_ports(dut), tmp_path, mode="cover",
                    depth=12)
    assert outcome.passed, outcome.log[-3000:]


def test_the_stream_rule_proof_fails_on_a_unit_that_takes_events_while_a_pass_waits(tmp_path):
    broken = mutated(offsets, "self.events.ready.eq(~busy | (self.passes.ready & last))", "self.events.ready.eq(1)")
    dut = broken.KernelOffsets(SHAPE)
    outcome = prove(StreamRules(dut, [dut.events], [dut.passes]), offsets_ports(dut), tmp_path, depth=12)
    assert not outcome.passed and "Assert failed" in outcome.log, outcome.log[-3000:]
