"""The lane array: ``P`` neurons updated in one cycle, the arithmetic of docs/arithmetic.md.

Purely combinational: the core reads a row of neuron state, weights, thresholds and
initial potentials from memory, this array computes the new row, the core writes it back.
"""

from __future__ import annotations

from amaranth import Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.cycles import passes_span_steps
from firstspike.sw.params import CoreParams, Kernel

__all__ = ["LaneArray", "LaneAdd", "LaneEnd", "operation_layout", "state_layout", "wide_shape"]


def wide_shape(params: CoreParams) -> Shape:
    """Signed shape that holds a saturated value plus one step's exact sum of weights.

    Saturation is applied once per step (docs/arithmetic.md), so between steps the
    accumulating value needs guard bits for the largest possible step sum.
    """
    low, high = params.potential_range
    step_sum = max(params.layer_sizes[:-1]) * (1 << (params.weight_bits - 1))
    return Shape.cast(range(low - step_sum, high + step_sum + 1))


def state_layout(params: CoreParams) -> data.StructLayout:
    """One neuron's state: potential (and current), the first-spike latch and its time."""
    fields = {
        # The step kernel accumulates a step's weights into the potential; the ramp kernel
        # into the current, so only that one needs guard bits.
        "potential": wide_shape(params) if params.kernel is Kernel.STEP else signed(params.potential_bits),
        "fired": unsigned(1),
        "time": unsigned(params.time_bits),
    }
    if params.kernel is Kernel.RAMP:
        fields["current"] = wide_shape(params)
    return data.StructLayout(fields)


def max_span(params: CoreParams) -> int:
    """Steps one pass integrates at most: all ``T`` of them where the ramp kernel skips
    empty steps (the end marker's pass from step 0), else one."""
    if passes_span_steps(params):
        return params.time_steps
    return 1


def operation_layout(params: CoreParams) -> data.StructLayout:
    return data.StructLayout({
        "end_of_step": unsigned(1),  # saturate, integrate (ramp), check the threshold at `step`
        "add": unsigned(1),          # then add this row of weights
        "fresh": unsigned(1),        # start from V = b, I = 0, nothing fired
        "step": unsigned(params.time_bits),
        # ramp: the ends of steps `step`, `step + 1`, ..., `step + span - 1`, no events between
        "span": range(max_span(params) + 1),
    })


def saturate_to(value, low: int, high: int) -> Value:
    """``value`` clamped to ``[low, high]``: the per-step saturation of docs/arithmetic.md."""
    return Mux(value > high, high, Mux(value < low, low, value))


def reaches(value, threshold, low: int) -> Value:
    """``sat(value) >= threshold`` without the saturation in front of the comparison (a
    threshold is never below ``low``, and every value saturates to at least ``low``)."""
    return (value >= threshold) | (threshold == low)


class LaneArray(wiring.Component):
    """``P`` neuron updates in parallel.

    Ports
    -----
    op:
        What to do (:func:`operation_layout`).
    lanes_valid:
        One bit per lane: the lane holds a neuron of this layer (the last fold of a
        layer can be partly empty).
    weights, thresholds, initial, state_in:
        One row each, ``P`` lanes.
    forward, forwarded:
        With ``forward``, the lanes start from ``forwarded`` (a row still in flight to the
        memory) rather than ``state_in``. The choice is made behind the threshold test
        (each row tested, the test's outcome chosen), so the test does not wait on it.
    state_out:
        The row to write back.
    fire:
        One bit per lane: the neuron fires during this operation.
    time:
        Per lane, the step it fires at: ``op.step``, or later in a ramp span.
    potential:
        ``V`` after the end of step (saturated), per lane, for the decision unit: at the
        spike for a lane that fires in a span.
    """

    def __init__(self, params: CoreParams):
        self.params = params
        p, wb, pb = params.lanes, params.weight_bits, params.potential_bits
        state = state_layout(params)
        super().__init__({
            "op": In(operation_layout(params)),
            "lanes_valid": In(p),
            # One signal per lane rather than one packed row: each consumer sees only its
            # lane change, which keeps event-driven simulators (Icarus) from re-reading
            # the whole row for every lane. The core packs rows for memory.
            "weights": In(signed(wb)).array(p),
            "thresholds": In(signed(pb)).array(p),
            "initial": In(signed(pb)).array(p),
            "state_in": In(state).array(p),
            "forward": In(1),
            "forwarded": In(state).array(p),
            "state_out": Out(state).array(p),
            "fire": Out(p),
            "time": Out(params.time_bits).array(p),
            "potential": Out(signed(pb)).array(p),
        })

    def elaborate(self, platform):
        m = Module()
        params = self.params
        low, high = params.potential_range
        ramp = params.kernel is Kernel.RAMP

        if params.stepped:
            self._add_then_end(m)
            return m
        for lane in range(params.lanes):
            read, ahead, new = self.state_in[lane], self.forwarded[lane], self.state_out[lane]
            old = Signal.like(read, name=f"old_{lane}")
            m.d.comb += old.eq(Mux(self.forward, ahead, read))
            potential = Mux(self.op.fresh, self.initial[lane], old.potential)
            fired = Mux(self.op.fresh, 0, old.fired)
            if ramp:
                current = Mux(self.op.fresh, 0, old.current)
                current_sat = saturate_to(current, low, high)
                settled, crosses, later = self._span(m, lane, potential, current_sat)
            else:
                settled, later = saturate_to(potential, low, high), 0
                # The threshold test of each row the lane may start from, the outcome chosen:
                # the carry chains start from registers and the block RAM, not from a choice.
                threshold = self.thresholds[lane]
                crosses = Mux(self.op.fresh, reaches(self.initial[lane], threshold, low),
                              Mux(self.forward, reaches(ahead.potential, threshold, low),
                                  reaches(read.potential, threshold, low)))
            fires = self.op.end_of_step & self.lanes_valid[lane] & ~fired & crosses
            m.d.comb += [
                self.fire[lane].eq(fires),
                self.time[lane].eq(self.op.step + later),
                self.potential[lane].eq(settled),
                new.fired.eq(fired | fires),
                new.time.eq(Mux(fires, self.time[lane], Mux(self.op.fresh, 0, old.time))),
            ]
            add = Mux(self.op.add, self.weights[lane], 0)
            if ramp:
                m.d.comb += [
                    new.potential.eq(Mux(self.op.end_of_step, settled, potential)),
                    new.current.eq(Mux(self.op.end_of_step, current_sat, current) + add),
                ]
            else:
                # sat(V) + w as a choice of three sums, made by the saturation's comparisons
                # beside them rather than in front: one carry chain on the path, not two.
                end = self.op.end_of_step
                m.d.comb += new.potential.eq(Mux(end & (potential > high), high + add,
                                                 Mux(end & (potential < low), low + add, potential + add)))
        return m

    def _add_then_end(self, m: Module) -> None:
        """The stepped schedule's order: the row of weights is added first (:class:`LaneAdd`),
        then (if ``end_of_step``) the step ends (:class:`LaneEnd`): a step's last event and
        its end are one operation, and every operation covers one step (``span`` is 1). The
        core runs the two halves a pipeline stage apart; here they are joined."""
        m.submodules.add = add = LaneAdd(self.params)
        m.submodules.end = end = LaneEnd(self.params)
        m.d.comb += [add.op.eq(self.op), end.op.eq(self.op), end.lanes_valid.eq(self.lanes_valid)]
        for lane in range(self.params.lanes):
            m.d.comb += [
                add.weights[lane].eq(self.weights[lane]), add.initial[lane].eq(self.initial[lane]),
                add.state_in[lane].eq(Mux(self.forward, self.forwarded[lane], self.state_in[lane])),
                end.state_in[lane].eq(add.state_out[lane]),
                end.thresholds[lane].eq(self.thresholds[lane]), self.state_out[lane].eq(end.state_out[lane]),
                self.time[lane].eq(end.time[lane]), self.potential[lane].eq(end.potential[lane]),
            ]
        m.d.comb += self.fire.eq(end.fire)

    def _span(self, m: Module, lane: int, potential, current):
        """The ends of ``op.span`` steps with a constant (saturated) current ``I``, in closed
        form: ``V`` moves monotonically, so after ``k`` steps it is ``sat(V + k * I)``.

        Returns ``(V after the span, or at the spike; crosses the threshold; steps after
        op.step at which it does)``. Where it crosses, the potential past the spike is not
        needed: a neuron fires once, and the decision only reads potentials at spikes or,
        if nothing fired, at ``T - 1``.
        """
        params = self.params
        low, high = params.potential_range
        threshold = self.thresholds[lane]

        first = Signal(signed(params.potential_bits), name=f"first_{lane}")
        m.d.comb += first.eq(saturate_to(potential + current, low, high))
        # The longest run of steps after which V stays in [low, threshold): found bit by
        # bit, largest first; V + j * I is monotonic in j, so the greedy choice is exact.
        span = max_span(params)
        reach = Shape.cast(range((low - 1) * (span + 1), (high + 1) * (span + 1) + 1))
        steps, value = 0, potential
        for bit in reversed(range(span.bit_length())):
            more = Signal(range(2 * span + 1), name=f"more_{lane}_{bit}")
            moved = Signal(reach, name=f"moved_{lane}_{bit}")
            m.d.comb += [more.eq(steps + (1 << bit)), moved.eq(value + (current << bit))]
            ok = (more <= self.op.span) & (moved >= low) & (moved < threshold)
            steps_next = Signal(range(span + 1), name=f"steps_{lane}_{bit}")
            value_next = Signal(reach, name=f"value_{lane}_{bit}")
            m.d.comb += [steps_next.eq(Mux(ok, more, steps)), value_next.eq(Mux(ok, moved, value))]
            steps, value = steps_next, value_next
        short = steps < self.op.span  # left [low, threshold) within the span
        rising = current > 0
        crosses_first = reaches(potential + current, threshold, low)
        settled = Signal(signed(params.potential_bits), name=f"settled_{lane}")
        m.d.comb += settled.eq(Mux(crosses_first, first,
                                   Mux(short, Mux(rising, saturate_to(value + current, low, high), low), value)))
        crosses = crosses_first | (rising & short)
        later = Mux(crosses_first, 0, steps)
        return settled, crosses, later


class LaneAdd(wiring.Component):
    """The stepped schedule's first half of an operation, ``P`` lanes: start fresh where
    ``op.fresh`` (``V = b``, ``I = 0``, nothing fired), then add the row of weights where
    ``op.add``, exactly (into ``V`` for ``step``, into ``I`` for ``ramp``; no saturation:
    the wide fields hold a step's sum). Nothing else changes."""

    def __init__(self, params: CoreParams):
        self.params = params
        p, state = params.lanes, state_layout(params)
        super().__init__({
            "op": In(operation_layout(params)),
            "weights": In(signed(params.weight_bits)).array(p),
            "initial": In(signed(params.potential_bits)).array(p),
            "state_in": In(state).array(p),
            "forward": In(1),
            "forwarded": In(state).array(p),
            "state_out": Out(state).array(p),
        })

    def elaborate(self, platform):
        m = Module()
        ramp = self.params.kernel is Kernel.RAMP
        for lane in range(self.params.lanes):
            old, new = self.state_in[lane], self.state_out[lane]
            potential = Mux(self.op.fresh, self.initial[lane], old.potential)
            add = Mux(self.op.add, self.weights[lane], 0)
            m.d.comb += [new.fired.eq(Mux(self.op.fresh, 0, old.fired)),
                         new.time.eq(Mux(self.op.fresh, 0, old.time))]
            if ramp:
                m.d.comb += [new.current.eq(Mux(self.op.fresh, 0, old.current) + add), new.potential.eq(potential)]
            else:
                m.d.comb += new.potential.eq(potential + add)
        return m


class LaneEnd(wiring.Component):
    """The stepped schedule's second half, ``P`` lanes: where ``op.end_of_step``, end step
    ``op.step`` on what :class:`LaneAdd` left: saturate (``step``: ``V``; ``ramp``: ``I``,
    then ``V + I``), fire where a lane holding a neuron reaches its threshold unfired, and
    latch the time. Without ``end_of_step`` the state passes through unchanged (so a state
    in flight can be forwarded from in front of this half)."""

    def __init__(self, params: CoreParams):
        self.params = params
        p, state = params.lanes, state_layout(params)
        super().__init__({
            "op": In(operation_layout(params)),
            "lanes_valid": In(p),
            "thresholds": In(signed(params.potential_bits)).array(p),
            "state_in": In(state).array(p),
            "forward": In(1),
            "forwarded": In(state).array(p),
            "state_out": Out(state).array(p),
            "fire": Out(p),
            "time": Out(params.time_bits).array(p),
            "potential": Out(signed(params.potential_bits)).array(p),
        })

    def elaborate(self, platform):
        m = Module()
        params = self.params
        low, high = params.potential_range
        ramp = params.kernel is Kernel.RAMP

        end = self.op.end_of_step
        for lane in range(params.lanes):
            old, new = self.state_in[lane], self.state_out[lane]
            if ramp:
                current_sat = Signal(signed(params.potential_bits), name=f"current_{lane}")
                m.d.comb += current_sat.eq(saturate_to(old.current, low, high))
                moved = old.potential + current_sat                  # V(t-1) + I(t), not saturated
            else:
                moved = old.potential
            settled = Signal(signed(params.potential_bits), name=f"settled_{lane}")
            m.d.comb += settled.eq(saturate_to(moved, low, high))
            fires = end & self.lanes_valid[lane] & ~old.fired & reaches(moved, self.thresholds[lane], low)
            m.d.comb += [
                self.fire[lane].eq(fires),
                self.time[lane].eq(self.op.step),
                self.potential[lane].eq(settled),
                new.fired.eq(old.fired | fires),
                new.time.eq(Mux(fires, self.op.step, old.time)),
            ]
            if ramp:
                m.d.comb += [new.current.eq(Mux(end, current_sat, old.current)),
                             new.potential.eq(Mux(end, settled, old.potential))]
            else:
                m.d.comb += new.potential.eq(Mux(end, settled, old.potential))
        return m
