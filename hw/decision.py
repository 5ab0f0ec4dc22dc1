"""The decision unit: the spec's first-spike rule over the output layer, one fold a cycle."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.cycles import ramp_skips_empty_steps
from firstspike.sw.params import CoreParams, Kernel

__all__ = ["DecisionUnit", "best_lane", "earliest_lane"]


def best_lane(m: Module, candidates: list[tuple], keep: int = 1) -> list[tuple]:
    """Reduce ``(valid, value, index)`` triples towards the valid one with the highest
    value, the lowest index on ties: the left (lower) one wins unless the right one is
    strictly higher. Candidates must be in increasing index order. Stops at ``keep``
    candidates (still in index order), so a pipeline register can split the tree."""
    while len(candidates) > keep:
        merged = []
        for left, right in zip(candidates[::2], candidates[1::2]):
            take_right = right[0] & (~left[0] | (right[1] > left[1]))
            valid, value, index = Signal(), Signal.like(left[1]), Signal.like(left[2])
            m.d.comb += [
                valid.eq(left[0] | right[0]),
                value.eq(Mux(take_right, right[1], left[1])),
                index.eq(Mux(take_right, right[2], left[2])),
            ]
            merged.append((valid, value, index))
        if len(candidates) % 2:
            merged.append(candidates[-1])
        candidates = merged
    return candidates


def earliest_lane(m: Module, candidates: list[tuple], keep: int = 1) -> list[tuple]:
    """As :func:`best_lane` for ``(valid, step, value, index)``: the earliest step first,
    then the highest value, then the lowest index."""
    while len(candidates) > keep:
        merged = []
        for left, right in zip(candidates[::2], candidates[1::2]):
            take_right = right[0] & (~left[0] | (right[1] < left[1]) | ((right[1] == left[1]) & (right[2] > left[2])))
            merged.append(tuple(Signal.like(x) if i else Signal() for i, x in enumerate(left)))
            m.d.comb += [out.eq(Mux(take_right, r, l)) for out, l, r in zip(merged[-1][1:], left[1:], right[1:])]
            m.d.comb += merged[-1][0].eq(left[0] | right[0])
        if len(candidates) % 2:
            merged.append(candidates[-1])
        candidates = merged
    return candidates


class DecisionUnit(wiring.Component):
    """Watches the output layer's passes and keeps the class.

    Each cycle with ``valid`` brings one fold: which lanes fire, the step each fires at
    (``times``) and every lane's potential at that step. ``final`` marks the folds of the
    last pass, whose potentials are ``V(T-1)``. ``clear`` starts a new inference. Folds
    come in index order, so "earlier" means "lower index" on ties. Passes come in step
    order; within a ramp pass that spans empty steps the lanes' steps differ, and the
    comparison trees then rank by step first.

    The comparison trees over the lanes are cut in half by a register: a fold's outcome
    reaches ``decision`` two cycles after it arrives (:data:`LATENCY`).
    """

    LATENCY = 2

    def __init__(self, params: CoreParams):
        self.params = params
        p, pb, n_out = params.lanes, params.potential_bits, params.n_outputs
        self._index_shape = range(max(2, params.folds(params.n_layers - 1) * p))
        super().__init__({
            "clear": In(1),
            "valid": In(1),
            "final": In(1),
            "fold": In(range(max(2, params.folds(params.n_layers - 1)))),
            "times": In(unsigned(params.time_bits)).array(p),
            "fire": In(p),
            "lanes_valid": In(p),
            "potential": In(signed(pb)).array(p),
            "decision": Out(range(max(2, n_out))),
            "fired": Out(1),
            "output_fired": Out(n_out),
            "output_times": Out(data.ArrayLayout(unsigned(params.time_bits), n_out)),
        })

    def elaborate(self, platform):
        m = Module()
        params = self.params
        p, n_out = params.lanes, params.n_outputs
        # Only where a ramp pass spans steps do a fold's lanes fire at different steps.
        spans = params.kernel is Kernel.RAMP and ramp_skips_empty_steps(params)
        index = [Signal(self._index_shape, name=f"index_{lane}") for lane in range(p)]
        m.d.comb += [index[lane].eq(self.fold * p + lane) for lane in range(p)]

        # The larger half of each tree's levels before the register (the state update
        # after it adds one more comparison).
        levels = max(0, (p - 1).bit_length())
        keep = 1 << (levels // 2)
        if spans:
            spike_half = earliest_lane(m, [(self.fire[lane], self.times[lane], self.potential[lane], index[lane])
                                           for lane in range(p)], keep)
        else:
            spike_half = best_lane(m, [(self.fire[lane], self.potential[lane], index[lane]) for lane in range(p)],
                                   keep)
        any_half = best_lane(m, [(self.lanes_valid[lane], self.potential[lane], index[lane]) for lane in range(p)],
                             keep)

        def register(candidates: list[tuple]) -> list[tuple]:
            out = []
            for valid, *rest in candidates:
                registered = (Signal(), *(Signal.like(x) for x in rest))
                m.d.sync += [registered[0].eq(valid & self.valid),
                             *(r.eq(x) for r, x in zip(registered[1:], rest))]
                out.append(registered)
            return out
        later_valid, later_final = Signal(), Signal()
        m.d.sync += [later_valid.eq(self.valid & ~self.clear), later_final.eq(self.final)]
        if spans:
            spike_valid, spike_step, spike_value, spike_index = earliest_lane(m, register(spike_half))[0]
        else:
            spike_valid, spike_value, spike_index = best_lane(m, register(spike_half))[0]
            spike_step = Signal(params.time_bits)
            m.d.sync += spike_step.eq(self.times[0])  # every lane's time is the pass's step
        any_valid, any_value, any_index = best_lane(m, register(any_half))[0]

        best_step = Signal(params.time_bits)
        best_value = Signal(signed(params.potential_bits))
        best_index = Signal(self._index_shape)
        max_seen = Signal()
        max_value = Signal(signed(params.potential_bits))
        max_index = Signal(self._index_shape)

        with m.If(self.clear):
            m.d.sync += [self.fired.eq(0), max_seen.eq(0), self.output_fired.eq(0)]
        with m.Elif(later_valid):
            earliest = ~self.fired | ((spike_step == best_step) & (spike_value > best_value))
            if spans:  # within a pass that spans steps, a later fold can fire at an earlier step
                earliest |= spike_step < best_step
            with m.If(spike_valid & earliest):
                m.d.sync += [self.fired.eq(1), best_step.eq(spike_step), best_value.eq(spike_value),
                             best_index.eq(spike_index)]
            with m.If(later_final & any_valid & (~max_seen | (any_value > max_value))):
                m.d.sync += [max_seen.eq(1), max_value.eq(any_value), max_index.eq(any_index)]
        with m.If(~self.clear & self.valid):
            for neuron in range(n_out):
                fold, lane = divmod(neuron, p)
                with m.If(self.fire[lane] & (self.fold == fold)):
                    m.d.sync += [self.output_fired[neuron].eq(1), self.output_times[neuron].eq(self.times[lane])]
        m.d.comb += self.decision.eq(Mux(self.fired, best_index, max_index))
        return m
