"""One operation of a lane, as docs/arithmetic.md states it, for the lane array's proof.

Written from the document, not from hw/lanes.py: on the stepped schedule's order a step's
events add their weights exactly to the potential; the step's end saturates it once and
fires the lane if the saturated potential reaches the threshold and it has not fired
before (step kernel).
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, Mux, Signal, Value, signed
from amaranth.hdl import Assert, Assume, Cover

from firstspike.hw.lanes import LaneArray, wide_shape
from firstspike.sw.params import CoreParams, Kernel

__all__ = ["LaneStepSpec"]


class LaneStepSpec(Elaboratable):
    """``LaneArray`` with every output asserted equal to the document's rule, for any
    operation and any state the schedule can reach (a potential that one more weight
    cannot carry out of the wide range is not reachable: a step holds at most one weight
    per input)."""

    def __init__(self, params: CoreParams, lanes: type = LaneArray):
        if params.kernel is not Kernel.STEP or not params.stepped:
            raise ValueError("the lane-step property is stated for the step kernel on the stepped schedule")
        self.params, self.dut = params, lanes(params)

    def ports(self) -> list:
        """The lane array's inputs and outputs: the proof's free inputs and observed outputs."""
        dut = self.dut
        rows = [dut.weights, dut.thresholds, dut.initial, dut.state_in, dut.state_out, dut.time, dut.potential]
        return [Value.cast(dut.op), dut.lanes_valid, dut.fire, *(Value.cast(lane) for row in rows for lane in row)]

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        params = self.params
        low, high = params.potential_range
        wide = wide_shape(params)
        w_low, w_high = params.weight_range
        op = dut.op
        m.d.comb += Assume(op.span == 1)
        for lane in range(params.lanes):
            old, new = dut.state_in[lane], dut.state_out[lane]
            theta, b, w = dut.thresholds[lane], dut.initial[lane], dut.weights[lane]
            # Reachable: a fresh state starts from b; one more weight stays in the wide range.
            wide_low, wide_high = -(1 << (wide.width - 1)), (1 << (wide.width - 1)) - 1
            m.d.comb += Assume((old.potential >= wide_low - w_low) & (old.potential <= wide_high - w_high))
            m.d.comb += Assume(theta >= low)  # thresholds are potentials
            v = Signal(signed(len(old.potential) + 2), name=f"v_{lane}")
            m.d.comb += v.eq(Mux(op.fresh, b, old.potential) + Mux(op.add, w, 0))
            fired_before = Mux(op.fresh, 0, old.fired)
            saturated = Mux(v > high, high, Mux(v < low, low, v))
            fires = op.end_of_step & dut.lanes_valid[lane] & ~fired_before & (saturated >= theta)
            m.d.comb += [
                Assert(dut.fire[lane] == fires),
                Assert(new.fired == (fired_before | fires)),
                Assert(new.potential == Mux(op.end_of_step, saturated, v)),
                Assert(new.time == Mux(fires, op.step, Mux(op.fresh, 0, old.time))),
            ]
            with m.If(op.end_of_step):
                m.d.comb += Assert(dut.potential[lane] == saturated)
            m.d.comb += Cover(fires & (v > high))
        return m
