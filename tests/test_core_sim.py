"""The gateware in Amaranth's simulator against the golden model: every spike time of every
layer, the class, the fired flag, the spike counts and the cycle count."""

from __future__ import annotations

import cases
import numpy as np
import pytest
from amaranth_harness import Bench, put, run_core, sorted_events, spike_times_from_trace, take

from firstspike.sw import NO_SPIKE, CoreParams, Kernel, simulate
from firstspike.sw.compare import DeviceResults, compare
from firstspike.sw.cycles import SPIKE_TABLE_LIMITS, ramp_skips_empty_steps
from firstspike.sw.layout import MemoryLayout, Target

KERNELS = [Kernel.STEP, Kernel.RAMP]


def assert_core_matches_golden(model, spike_times, lanes, **options) -> None:
    golden = simulate(model, spike_times)
    core = run_core(model, lanes, spike_times, **options)
    hw_times = spike_times_from_trace(core["trace"], model.params, len(spike_times))
    device = DeviceResults(decision=core["decision"], fired=core["fired"].astype(bool),
                           output_times=core["output_times"], cycles=core["cycles"],
                           input_spikes=core["input_spikes"], layer_spikes=core["layer_spikes"],
                           error=core["error"].astype(bool), spike_times=tuple(hw_times))
    problem = compare(golden, device, lanes)
    assert problem is None, str(problem)


@pytest.mark.parametrize("lanes", [1, 4, 16])
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
@pytest.mark.parametrize("seed", range(3))
def test_random_networks_match_golden(seed, kernel, lanes):
    model, times = cases.random_case(seed, kernel)
    assert_core_matches_golden(model, times, lanes)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
@pytest.mark.parametrize("case", ["saturating", "floor", "tie", "silent", "first", "last", "single"])
def test_special_cases_match_golden(case, kernel):
    model, times = {
        "saturating": cases.saturating_case, "floor": cases.floor_case, "tie": cases.tie_case, "silent": cases.silent_case,
        "first": lambda k: cases.edge_case(k, "first"), "last": lambda k: cases.edge_case(k, "last"),
        "single": cases.single_neuron_case,
    }[case](kernel)
    assert_core_matches_golden(model, times, lanes=4)


@pytest.mark.parametrize("lanes", [1, 4, 16])
def test_ramp_spikes_found_inside_runs_of_empty_steps_reach_the_next_layer_in_time_order(lanes):
    model, times = cases.sparse_deep_case(time_steps=40)
    golden = simulate(model, times)
    hidden = golden.spike_times[0]
    assert ((hidden > times.max(axis=1, keepdims=True)) & (hidden != NO_SPIKE)).any(), \
        "some hidden spikes must fall after the last input spike"
    assert_core_matches_golden(model, times, lanes)


def test_ramp_empty_steps_cost_no_cycles():
    """Measured by the simulator's clock, not by the cycle formula: a pass per step would
    cost at least T x folds cycles; skipping empty steps costs far less."""
    model, times = cases.sparse_deep_case(time_steps=40)
    assert ramp_skips_empty_steps(model.params, 4)
    core = run_core(model, 4, times)
    assert (core["elapsed"] == core["cycles"] + 2).all()
    assert core["cycles"].tolist() == simulate(model, times).cycles(4).tolist()
    pass_per_step = model.params.time_steps * sum(model.params.folds(k, 4) for k in range(model.params.n_layers))
    assert (core["elapsed"] < pass_per_step / 2).all(), (core["elapsed"], pass_per_step)


def test_ramp_beyond_the_spike_table_limits_falls_back_to_a_pass_per_empty_step():
    model, times = cases.sparse_deep_case(time_steps=SPIKE_TABLE_LIMITS["time_steps"] + 6)
    assert not ramp_skips_empty_steps(model.params, 4)
    assert_core_matches_golden(model, times, lanes=4)


def test_ramp_beyond_the_spike_table_limits_with_an_event_in_most_steps_matches_golden():
    """Events in consecutive steps: the held event's step is often the pending step + 1
    (a pass ends one step and adds the event), and the next one's relation to the new
    pending step is known as it is loaded."""
    rng = np.random.default_rng(4)
    params = CoreParams((80, 9, 4), time_steps=SPIKE_TABLE_LIMITS["time_steps"] + 6, kernel=Kernel.RAMP,
                        weight_bits=5, potential_bits=14)
    model = cases.random_model(params, rng, firing=0.6)
    times = cases.random_spike_times(params, rng, 3, density=0.9)
    assert not ramp_skips_empty_steps(model.params, 4)
    assert_core_matches_golden(model, times, lanes=4)


def test_input_gaps_change_neither_results_nor_cycle_count():
    model, times = cases.random_case(5, Kernel.STEP)
    assert_core_matches_golden(model, times, lanes=4, gaps=True)


def test_elapsed_cycles_equal_counted_cycles_without_gaps():
    model, times = cases.random_case(6, Kernel.RAMP)
    core = run_core(model, 4, times)
    # Two more cycles than counted: the cycle in which the idle core sees the first event,
    # and the one in which the last counted cycle reaches the counter (the result waits).
    assert (core["elapsed"] == core["cycles"] + 2).all()


def test_weight_reload_through_the_write_port_changes_results_as_golden_predicts():
    model, times = cases.random_case(8, Kernel.STEP, batch=8)
    reloaded = cases.reshuffled(model, initial=False)
    layout = MemoryLayout(model.params.with_lanes(4))
    writes = [(target, address, word) for target in Target
              for address, word in enumerate(layout.words(reloaded, target))]
    golden_old, golden_new = simulate(model, times), simulate(reloaded, times)
    assert (golden_old.decision != golden_new.decision).any(), "the reload must change some decision"
    core = run_core(model, 4, times, writes=writes)
    assert core["decision"].tolist() == golden_new.decision.tolist()
    hw_times = spike_times_from_trace(core["trace"], model.params, len(times))
    assert all(np.array_equal(a, b) for a, b in zip(hw_times, golden_new.spike_times))


def test_out_of_order_and_out_of_range_events_set_the_error_flag():

    from firstspike.hw.core import TTFSCore
    model, _ = cases.random_case(2, Kernel.STEP)
    dut = TTFSCore(model.params.with_lanes(4), model)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.results.ready, 1)
        for beat in ({"index": 1, "step": 1, "end": 0}, {"index": 2, "step": 0, "end": 0},
                     {"index": model.params.n_inputs, "step": 1, "end": 0}, {"index": 0, "step": 0, "end": 1}):
            await put(ctx, dut.events, beat)
        result = await take(ctx, dut.results)
        seen["error"], seen["inputs"] = result.error, result.input_spikes

    Bench(dut).run([bench])
    assert seen == {"error": 1, "inputs": 1}


@pytest.mark.parametrize("change, message", [
    ({"lanes": 0}, "lanes must be an integer between 1 and 256, not 0"),
    ({"lanes": 257}, "lanes must be an integer between 1 and 256, not 257"),
    ({"weight_bits": 1}, "weight_bits must be an integer between"),
    ({"time_steps": 0}, "time_steps must be an integer between"),
])
def test_core_parameters_no_core_can_have_are_refused_naming_the_parameter_and_its_range(change, message):
    """The core takes only CoreParams; these are the checks that stand before any core."""
    from dataclasses import replace

    from firstspike.hw.core import TTFSCore
    from firstspike.sw import CoreParams
    base = CoreParams((6, 5, 3), time_steps=8, lanes=4)
    with pytest.raises(ValueError, match=message):
        TTFSCore(replace(base, **change))


def test_a_model_for_other_parameters_is_refused():
    from firstspike.hw.core import TTFSCore
    model, _ = cases.random_case(1, Kernel.STEP)
    other = model.params.with_lanes(4)
    from dataclasses import replace
    with pytest.raises(ValueError, match="the model.s parameters differ from the core.s: time_steps"):
        TTFSCore(replace(other, time_steps=other.time_steps + 1), model)


@pytest.mark.parametrize("schedule", ["layered", "stepped"])
def test_host_reads_offered_while_inferences_run_wait_for_them_and_change_no_result(schedule):
    """A read request stays offered from the first input event on: it is taken only between
    inferences, returns the row, and the inferences' results are the golden model's."""
    from firstspike.hw.core import TTFSCore
    model, times = cases.random_case(4, Kernel.STEP)
    model = model.with_schedule(schedule)
    params = model.params.with_lanes(4)
    golden = simulate(model, times[:3])
    layout = MemoryLayout(params)
    rows = layout.words(model, Target.WEIGHTS)
    dut = TTFSCore(params, model)
    got = {"rows": [], "results": []}

    async def feed(ctx):
        for sample in times[:3]:
            for i, s in sorted_events(sample):
                await put(ctx, dut.events, {"index": i, "step": s, "end": 0})
            await put(ctx, dut.events, {"index": 0, "step": 0, "end": 1})

    async def reader(ctx):
        for address in range(min(len(rows), 6)):
            await put(ctx, dut.read, {"target": int(Target.WEIGHTS), "address": address})
            got["rows"].append(await take(ctx, dut.read_data))

    async def collect(ctx):
        for _ in range(3):
            result = await take(ctx, dut.results)
            got["results"].append((result.decision, result.cycles))

    Bench(dut).run([feed, reader, collect])
    mask = (1 << layout.weight_width) - 1
    assert [w & mask for w in got["rows"]] == rows[:len(got["rows"])] and len(got["rows"]) == min(len(rows), 6)
    expected = [(int(d), int(c)) for d, c in zip(golden.decision, golden.cycles(4))]
    assert got["results"] == expected


def test_host_reads_return_every_memory_row_before_and_after_a_write():

    from firstspike.hw.core import TTFSCore
    model, _ = cases.random_case(6, Kernel.RAMP)
    params = model.params.with_lanes(4)
    layout = MemoryLayout(params)
    dut = TTFSCore(params, model)
    expected = {target: layout.words(model, target) for target in Target}
    new_word = (1 << layout.weight_width) - 3
    got = {}

    async def bench(ctx):
        async def read_all(target):
            rows = []
            for address in range(len(expected[target])):
                await put(ctx, dut.read, {"target": int(target), "address": address})
                rows.append(await take(ctx, dut.read_data))
            return rows
        for target in Target:
            got[target] = await read_all(target)
        await put(ctx, dut.write, {"target": int(Target.WEIGHTS), "address": 2, "data": new_word})
        got["after"] = await read_all(Target.WEIGHTS)

    Bench(dut).run([bench])
    mask = (1 << layout.weight_width) - 1
    for target in Target:
        width = layout.weight_width if target is Target.WEIGHTS else layout.neuron_width
        assert [w & ((1 << width) - 1) for w in got[target]] == expected[target], target
    after = expected[Target.WEIGHTS].copy()
    after[2] = new_word
    assert [w & mask for w in got["after"]] == after
