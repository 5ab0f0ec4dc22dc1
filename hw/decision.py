"""The decision unit: the spec's first-spike rule over the output layer, one fold a cycle."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.cycles import decision_lanes, decision_latency, passes_span_steps
from firstspike.sw.params import CoreParams

__all__ = ["DecisionUnit", "higher", "earlier", "merge_level"]


def higher(left: tuple, right: tuple):
    """For ``(valid, value, index)``: the right one wins if valid and strictly higher (or
    the left one is not valid), so ties go to the lower index."""
    return right[0] & (~left[0] | (right[1] > left[1]))


def earlier(left: tuple, right: tuple):
    """For ``(valid, step, value, index)``: the earlier step, then the higher value, then
    the lower index."""
    return right[0] & (~left[0] | (right[1] < left[1]) | ((right[1] == left[1]) & (right[2] > left[2])))


def merge_level(m: Module, candidates: list[tuple], take_right) -> list[tuple]:
    """One level of a comparison tree, in two registered halves: neighbours compared (the
    outcome registered beside both), then the winner chosen from registers (candidates in
    increasing index order, and so are the winners). An odd last one waits both cycles."""
    merged = []
    for left, right in zip(candidates[::2], candidates[1::2]):
        right_wins = Signal()
        m.d.sync += right_wins.eq(take_right(left, right))
        left, right = registered(m, left), registered(m, right)
        winner = tuple(Signal.like(x) for x in left)
        m.d.sync += [winner[0].eq(left[0] | right[0]),
                     *(w.eq(Mux(right_wins, b, a)) for w, a, b in zip(winner[1:], left[1:], right[1:]))]
        merged.append(winner)
    if len(candidates) % 2:
        merged.append(registered(m, registered(m, candidates[-1])))
    return merged


def registered(m: Module, values: tuple) -> tuple:
    out = tuple(Signal.like(v) if isinstance(v, Signal) else Signal(Value.cast(v).shape()) for v in values)
    m.d.sync += [o.eq(v) for o, v in zip(out, values)]
    return out


class DecisionUnit(wiring.Component):
    """Watches the output layer's passes and keeps the class.

    Each cycle with ``valid`` brings one fold: which lanes fire, the step each fires at
    (``times``) and every lane's potential at that step. ``final`` marks the folds of the
    last pass, whose potentials are ``V(T-1)``. ``clear`` starts a new inference. Folds
    come in index order, so "earlier" means "lower index" on ties. Passes come in step
    order; within a ramp pass that spans empty steps the lanes' steps differ, and the
    comparison trees then rank by step first.

    Only the lanes that hold an output neuron come in (:attr:`width`, the first
    ``min(P, n_outputs)``). Their values are registered at the comparison trees' leaves
    (more than one lane), and every level of the trees takes two cycles (compare, then
    choose), and the update of the best so far takes two (its comparisons, then the update):
    a fold's outcome reaches ``decision`` :attr:`latency` cycles after it arrives.
    """

    def __init__(self, params: CoreParams):
        self.params = params
        self.latency = decision_latency(params) - 1  # the core registers the inputs
        self.width = width = decision_lanes(params)
        p, pb, n_out = params.lanes, params.potential_bits, params.n_outputs
        self._index_shape = range(max(2, params.folds(params.n_layers - 1) * p))
        super().__init__({
            "clear": In(1),
            "valid": In(1),
            "final": In(1),
            "fold": In(range(max(2, params.folds(params.n_layers - 1)))),
            "times": In(unsigned(params.time_bits)).array(width),
            "fire": In(width),
            "lanes_valid": In(width),
            "potential": In(signed(pb)).array(width),
            "decision": Out(range(max(2, n_out))),
            "step": Out(params.time_bits),  # the step the decision is final at: the first spike's, or T-1
            "fired": Out(1),
            "output_fired": Out(n_out),
            "output_times": Out(data.ArrayLayout(unsigned(params.time_bits), n_out)),
        })

    def elaborate(self, platform):
        m = Module()
        params = self.params
        p, width, n_out = params.lanes, self.width, params.n_outputs
        # Only where a ramp pass spans steps do a fold's lanes fire at different steps.
        spans = passes_span_steps(params)
        index = [Signal(self._index_shape, name=f"index_{lane}") for lane in range(width)]
        m.d.comb += [index[lane].eq(self.fold * p + lane) for lane in range(width)]

        # Two registered halves to every level of the comparison trees, the comparison and
        # the choice: two levels in one cycle were the ULX3S's longest path at P = 32
        # (17.2 ns, docs/boards.md), one level in a cycle at 92 MHz (10.9 ns, its inputs
        # from registers across the die).
        if spans:
            spikes = [(self.fire[lane] & self.valid, self.times[lane], self.potential[lane], index[lane])
                      for lane in range(width)]
        else:
            spikes = [(self.fire[lane] & self.valid, self.potential[lane], index[lane]) for lane in range(width)]
        alive = [(self.lanes_valid[lane] & self.valid, self.potential[lane], index[lane]) for lane in range(width)]
        side = (self.valid & ~self.clear, self.final, self.times[0])
        if width > 1:  # a register at the leaves: the lanes' values come from across the die
            spikes, alive = [registered(m, c) for c in spikes], [registered(m, c) for c in alive]
            side = registered(m, side)
        while len(spikes) > 1:
            spikes = merge_level(m, spikes, earlier if spans else higher)
            alive = merge_level(m, alive, higher)
            side = registered(m, registered(m, side))
        later_valid, later_final, pass_step = side
        if spans:
            spike_valid, spike_step, spike_value, spike_index = spikes[0]
        else:  # every lane's time is the pass's step
            (spike_valid, spike_value, spike_index), spike_step = spikes[0], pass_step
        any_valid, any_value, any_index = alive[0]

        best_step = Signal(params.time_bits)
        best_value = Signal(signed(params.potential_bits))
        best_index = Signal(self._index_shape)
        max_seen = Signal()
        max_value = Signal(signed(params.potential_bits))
        max_index = Signal(self._index_shape)

        def beats(step, value, than_step, than_value):
            """The same step and a higher value, or (within a pass that spans steps, where a
            later fold can fire at an earlier step) an earlier step."""
            won = (step == than_step) & (value > than_value)
            return won | (step < than_step) if spans else won

        # The best so far is updated from the candidate a register on, whose comparisons
        # were made the cycle before: with the best then, and with the candidate then, which
        # is the best now if it won. The comparison and the update's enables were one path
        # (the iCE40's and the ULX3S's, docs/boards.md).
        cand = registered(m, (later_valid, later_final, spike_valid, spike_step, spike_value, spike_index,
                              any_valid, any_value, any_index))
        (c_valid, c_final, c_spike_valid, c_spike_step, c_spike_value, c_spike_index,
         c_any_valid, c_any_value, c_any_index) = cand
        spike_beats_best, spike_beats_cand = Signal(), Signal()
        any_beats_max, any_beats_cand = Signal(), Signal()
        m.d.sync += [
            spike_beats_best.eq(~self.fired | beats(spike_step, spike_value, best_step, best_value)),
            spike_beats_cand.eq(beats(spike_step, spike_value, c_spike_step, c_spike_value)),
            any_beats_max.eq(~max_seen | (any_value > max_value)),
            any_beats_cand.eq(any_value > c_any_value),
        ]
        spike_won, any_won = Signal(), Signal()  # the candidate of the cycle before won
        spike_wins = c_valid & c_spike_valid & Mux(spike_won, spike_beats_cand, spike_beats_best)
        any_wins = c_valid & c_final & c_any_valid & Mux(any_won, any_beats_cand, any_beats_max)
        m.d.sync += [spike_won.eq(spike_wins & ~self.clear), any_won.eq(any_wins & ~self.clear)]
        with m.If(self.clear):
            m.d.sync += [self.fired.eq(0), max_seen.eq(0), self.output_fired.eq(0)]
        with m.Else():
            with m.If(spike_wins):
                m.d.sync += [self.fired.eq(1), best_step.eq(c_spike_step), best_value.eq(c_spike_value),
                             best_index.eq(c_spike_index)]
            with m.If(any_wins):
                m.d.sync += [max_seen.eq(1), max_value.eq(c_any_value), max_index.eq(c_any_index)]
        with m.If(~self.clear & self.valid):
            for neuron in range(n_out):
                fold, lane = divmod(neuron, p)
                with m.If(self.fire[lane] & (self.fold == fold)):
                    m.d.sync += [self.output_fired[neuron].eq(1), self.output_times[neuron].eq(self.times[lane])]
        m.d.comb += [self.decision.eq(Mux(self.fired, best_index, max_index)),
                     self.step.eq(Mux(self.fired, best_step, params.time_steps - 1))]
        return m
