"""The decision unit alone, against the decision rule of sw/arith.py (``decide``): ties
inside a fold and across folds, in both orders, at P = 1, 2, 3, 5, 32 and 64."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth_harness import Bench

from firstspike.hw.decision import DecisionUnit
from firstspike.sw import NO_SPIKE, CoreParams, Kernel
from firstspike.sw.arith import decide
from firstspike.sw.cycles import passes_span_steps

T = 6


def scenarios(rng: np.random.Generator, n_out: int, count: int) -> list[tuple[np.ndarray, ...]]:
    """Spike times and potentials from tiny sets, so that ties are the rule: outputs that
    fire at the same first step with equal potentials, in every fold and either order;
    and samples where nothing fires."""
    out = []
    for k in range(count):
        times = rng.choice([NO_SPIKE, 1, 2, 2, 4], size=n_out) if k % 4 else np.full(n_out, NO_SPIKE)
        spike_potential = rng.choice([5, 7, 7], size=n_out)
        final = rng.choice([-3, 0, 0, 9], size=n_out)
        if k % 4 in (1, 2):  # the first and the last output tie at the earliest step: the last
            times[0] = times[-1] = 0  # (another fold) higher in one, equal in the other
            spike_potential[0], spike_potential[-1] = (5, 7) if k % 4 == 1 else (7, 7)
        final = np.where(times == T - 1, spike_potential, final)
        out.append((times.astype(np.int64), spike_potential.astype(np.int64), final.astype(np.int64)))
    return out


def run_unit(params: CoreParams, samples) -> list[tuple[int, int, list[int]]]:
    """Feeds each sample's output passes to the unit; returns (decision, fired, output times)."""
    dut = DecisionUnit(params)
    p, n_out = params.lanes, params.n_outputs
    folds = -(-n_out // p)
    spans = passes_span_steps(params)
    got = []

    def fold_inputs(fold: int, fires: np.ndarray, times: np.ndarray, potentials: np.ndarray):
        lanes = range(fold * p, min(n_out, (fold + 1) * p))
        fire = sum(1 << (n - fold * p) for n in lanes if fires[n])
        valid = sum(1 << (n - fold * p) for n in lanes)
        return fire, valid, [int(times[n]) if n < n_out else 0 for n in range(fold * p, (fold + 1) * p)], \
            [int(potentials[n]) if n < n_out else 0 for n in range(fold * p, (fold + 1) * p)]

    async def bench(ctx):
        for spike_time, spike_potential, final in samples:
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            fired = spike_time != NO_SPIKE
            if spans:  # one pass over every step: each fold once, lanes at their own steps
                passes = [(fired, spike_time, spike_potential, False)]
            else:      # a pass per step, every lane at the pass's step
                passes = [(fired & (spike_time == step), np.full(n_out, step), spike_potential, False)
                          for step in range(T - 1)]
                at_end = fired & (spike_time == T - 1)
                passes.append((at_end, np.full(n_out, T - 1), np.where(at_end, spike_potential, final), True))
            if spans:
                passes.append((np.zeros(n_out, bool), np.full(n_out, T - 1), final, True))
            for fires, times, potentials, final_pass in passes:
                for fold in range(folds):
                    fire, valid, lane_times, lane_potentials = fold_inputs(fold, fires, times, potentials)
                    ctx.set(dut.valid, 1)
                    ctx.set(dut.final, int(final_pass))
                    ctx.set(dut.fold, fold)
                    ctx.set(dut.fire, fire)
                    ctx.set(dut.lanes_valid, valid)
                    for lane in range(p):
                        ctx.set(dut.times[lane], lane_times[lane])
                        ctx.set(dut.potential[lane], lane_potentials[lane])
                    await ctx.tick()
            ctx.set(dut.valid, 0)
            await ctx.tick().repeat(dut.latency + 2)
            output_times = [int(ctx.get(dut.output_times[n])) if ctx.get(dut.output_fired) >> n & 1 else NO_SPIKE
                            for n in range(n_out)]
            got.append((int(ctx.get(dut.decision)), int(ctx.get(dut.fired)), output_times))

    Bench(dut).run([bench])
    return got


@pytest.mark.parametrize("kernel", [Kernel.STEP, Kernel.RAMP], ids=lambda k: k.value)
@pytest.mark.parametrize("lanes", [1, 2, 3, 5, 32, 64])
def test_the_decision_unit_follows_the_rule_on_ties_inside_and_across_folds(lanes, kernel):
    n_out = 2 * lanes + 1 if lanes < 32 else lanes + 3  # a partial last fold
    params = CoreParams((4, n_out), T, kernel, lanes=lanes)
    assert passes_span_steps(params) == (kernel is Kernel.RAMP), "both ways of feeding the unit are tested"
    samples = scenarios(np.random.default_rng(lanes), n_out, 24 if lanes < 32 else 8)
    got = run_unit(params, samples)
    for k, ((decision, fired, output_times), (times, potentials, final)) in enumerate(zip(got, samples)):
        want_decision, want_fired = decide(times[None], potentials[None], final[None])
        assert (decision, bool(fired)) == (int(want_decision[0]), bool(want_fired[0])), f"sample {k}"
        assert output_times == times.tolist(), f"sample {k}"


def test_the_scenarios_hold_ties_across_folds_in_both_orders():
    lanes, n_out = 3, 7
    ties_lower_first = ties_higher_first = 0
    for times, potentials, _ in scenarios(np.random.default_rng(lanes), n_out, 24):
        fired = times != NO_SPIKE
        if not fired.any():
            continue
        first = times[fired].min()
        tied = np.flatnonzero(fired & (times == first))
        folds = {int(n) // lanes for n in tied}
        if len(folds) > 1:
            best = tied[np.argmax(potentials[tied])]
            ties_lower_first += int(best // lanes == min(folds))
            ties_higher_first += int(best // lanes != min(folds))
    assert ties_lower_first and ties_higher_first
