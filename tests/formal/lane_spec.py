"""One operation of a lane, as docs/arithmetic.md states it, for the lane array's proof.

Written from the document, not from hw/lanes.py. A step's events add their weights
exactly (to the potential for the step kernel, to the current for the ramp kernel); the
step's end saturates once (the current, then the potential it moves by, for ramp) and
fires the lane if the saturated potential reaches the threshold and it has not fired
before. The two schedules order these differently:

* **stepped**: the operation's weight is added first, then (``end_of_step``) the step
  ends: a step's last event and its end are one operation;
* **layered**: the step ends first, then the weight is added (an event of the next step);
  a ramp end covers ``span`` steps at once, the empty steps after ``step`` unrolled here
  one by one (the lanes compute them in closed form), the lane firing at the first of them
  where the potential reaches the threshold.
"""

from __future__ import annotations

from amaranth import Elaboratable, Module, Mux, Signal, Value, signed
from amaranth.hdl import Assert, Assume, Cover

from firstspike.hw.lanes import LaneArray, max_span, wide_shape
from firstspike.sw.params import CoreParams, Kernel

__all__ = ["LaneStepSpec"]


class LaneStepSpec(Elaboratable):
    """``LaneArray`` with every output asserted equal to the document's rule, for any
    operation and any state the schedule can reach (a value that one more weight cannot
    carry out of the wide range: a step holds at most one weight per input)."""

    def __init__(self, params: CoreParams, lanes: type = LaneArray):
        self.params, self.dut = params, lanes(params)

    def ports(self) -> list:
        """The lane array's inputs and outputs: the proof's free inputs and observed outputs."""
        dut = self.dut
        rows = [dut.weights, dut.thresholds, dut.initial, dut.state_in, dut.forwarded, dut.state_out, dut.time,
                dut.potential]
        return [Value.cast(dut.op), dut.lanes_valid, dut.forward, dut.fire,
                *(Value.cast(lane) for row in rows for lane in row)]

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        params = self.params
        low, high = params.potential_range
        wide = wide_shape(params)
        w_low, w_high = params.weight_range
        wide_low, wide_high = -(1 << (wide.width - 1)), (1 << (wide.width - 1)) - 1
        ramp = params.kernel is Kernel.RAMP
        op = dut.op
        span = 1 if params.stepped else max_span(params)
        # A span ends at step T - 1 at the latest.
        m.d.comb += Assume((op.span >= 1) & (op.span <= span) & (op.step + op.span <= params.time_steps))

        def sat(value):
            return Mux(value > high, high, Mux(value < low, low, value))

        for lane in range(params.lanes):
            new = dut.state_out[lane]
            old = Signal.like(dut.state_in[lane], name=f"old_{lane}")  # the row the lane starts from
            m.d.comb += old.eq(Mux(dut.forward, dut.forwarded[lane], dut.state_in[lane]))
            theta, b, w = dut.thresholds[lane], dut.initial[lane], dut.weights[lane]
            accumulated = old.current if ramp else old.potential
            m.d.comb += [Assume((accumulated >= wide_low - w_low) & (accumulated <= wide_high - w_high)),
                         Assume(theta >= low)]  # thresholds are potentials
            added = Mux(op.add, w, 0)
            fired_before = Mux(op.fresh, 0, old.fired)
            v0 = Signal(signed(len(old.potential) + 2), name=f"v0_{lane}")
            m.d.comb += v0.eq(Mux(op.fresh, b, old.potential))
            if ramp:
                i0 = Signal(signed(len(old.current) + 2), name=f"i0_{lane}")
                m.d.comb += i0.eq(Mux(op.fresh, 0, old.current))
            # Before the end: the stepped schedule adds first.
            if params.stepped:
                if ramp:
                    i_end, v_before = i0 + added, v0
                else:
                    i_end, v_before = 0, v0 + added
            else:
                i_end, v_before = (i0, v0) if ramp else (0, v0)
            # The end of `span` steps: V after each, and the first that reaches the threshold.
            current = sat(i_end) if ramp else 0
            values, v = [], v_before
            for j in range(span):
                v = Signal(signed(params.potential_bits), name=f"v_{lane}_{j}")
                m.d.comb += v.eq(sat((values[-1] if values else v_before) + current))
                values.append(v)
            first = Signal(range(span + 1), name=f"first_{lane}")  # span: none reaches it
            after = Signal(signed(params.potential_bits), name=f"after_{lane}")
            at_value = Signal(signed(params.potential_bits), name=f"at_{lane}")
            m.d.comb += first.eq(span)
            for j in reversed(range(span)):
                with m.If((op.span > j) & (values[j] >= theta)):
                    m.d.comb += first.eq(j)
            crossed = first != span
            with m.Switch(op.span):
                for j in range(span):
                    with m.Case(j + 1):
                        m.d.comb += after.eq(values[j])
            with m.Switch(first):
                for j in range(span):
                    with m.Case(j):
                        m.d.comb += at_value.eq(values[j])
                with m.Default():
                    m.d.comb += at_value.eq(after)
            fires = op.end_of_step & dut.lanes_valid[lane] & ~fired_before & crossed
            m.d.comb += [
                Assert(dut.fire[lane] == fires),
                Assert(new.fired == (fired_before | fires)),
                Assert(new.time == Mux(fires, op.step + first, Mux(op.fresh, 0, old.time))),
            ]
            with m.If(op.end_of_step):
                m.d.comb += Assert(dut.potential[lane] == at_value)
                with m.If(fires):
                    m.d.comb += Assert(dut.time[lane] == op.step + first)
            # The state written back: past a spike in a span the potential is not kept
            # (a neuron fires once; docs/arithmetic.md), so it is asserted where none fired.
            if params.stepped:
                if ramp:
                    m.d.comb += [Assert(new.current == Mux(op.end_of_step, current, i_end)),
                                 Assert(new.potential == Mux(op.end_of_step, at_value, v0))]
                else:
                    m.d.comb += Assert(new.potential == Mux(op.end_of_step, at_value, v_before))
            else:
                if ramp:
                    m.d.comb += Assert(new.current == Mux(op.end_of_step, current, i0) + added)
                    with m.If(~op.end_of_step):
                        m.d.comb += Assert(new.potential == v0)
                    with m.Elif(~crossed):
                        m.d.comb += Assert(new.potential == after)
                else:
                    m.d.comb += Assert(new.potential == Mux(op.end_of_step, at_value, v0) + added)
            m.d.comb += Cover(fires & (at_value == high) & (first == span - 1))
        return m
