"""The golden model against a plain per-step loop (tests/reference.py) on random networks."""

from __future__ import annotations

import numpy as np
import pytest
import reference

from firstspike.sw import NO_SPIKE, CoreParams, Kernel, LatencyEncoding, Layer, Model, Schedule, simulate
from firstspike.sw.cycles import stepped_cycles
from firstspike.sw.golden import GoldenResult, simulate_batches
from firstspike.sw.synthetic import random_model, random_spike_times


def assert_matches_reference(model: Model, spike_times: np.ndarray, method: str = "auto") -> None:
    """Compare every spike time, final potential, decision and fired flag; report the first difference."""
    result = GoldenResult.join(list(simulate_batches(model, spike_times, method=method)))
    for sample, times in enumerate(spike_times):
        expected = reference.run(model, list(times))
        for layer in range(model.params.n_layers):
            got = result.spike_times[layer][sample]
            want = np.array(expected["spike_times"][layer])
            if not np.array_equal(got, want):
                neuron = int(np.flatnonzero(got != want)[0])
                pytest.fail(f"sample {sample}, layer {layer}, neuron {neuron}: spike time "
                            f"{got[neuron]} from golden, {want[neuron]} from the reference")
            got = result.potentials[layer][sample]
            want = np.array(expected["potentials"][layer])
            if not np.array_equal(got, want):
                neuron = int(np.flatnonzero(got != want)[0])
                pytest.fail(f"sample {sample}, layer {layer}, neuron {neuron}: final potential "
                            f"{got[neuron]} from golden, {want[neuron]} from the reference")
        assert result.decision[sample] == expected["decision"], f"sample {sample}: decision"
        assert result.fired[sample] == expected["fired"], f"sample {sample}: fired flag"


KERNELS = [Kernel.STEP, Kernel.RAMP]


METHODS = ["dense", "sparse"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
@pytest.mark.parametrize("seed", range(4))
def test_random_networks_match_reference(kernel: Kernel, seed: int, method: str) -> None:
    rng = np.random.default_rng(seed)
    sizes = tuple(int(n) for n in rng.integers(1, 13, rng.integers(2, 5)))
    params = CoreParams(sizes, time_steps=int(rng.integers(1, 12)), kernel=kernel,
                        weight_bits=int(rng.integers(2, 9)), potential_bits=12)
    model = random_model(params, rng, firing=float(rng.uniform(0.2, 0.8)))
    assert_matches_reference(model, random_spike_times(params, rng, 12, density=0.6), method)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
def test_dense_and_sparse_sums_agree_on_a_wide_network(kernel: Kernel) -> None:
    rng = np.random.default_rng(9)
    params = CoreParams((200, 60, 10), time_steps=20, kernel=kernel)
    model = random_model(params, rng)
    times = random_spike_times(params, rng, 300, density=0.3)
    dense, sparse = (GoldenResult.join(list(simulate_batches(model, times, chunk=64, method=m)))
                     for m in METHODS)
    for a, b in zip(dense.spike_times + dense.potentials, sparse.spike_times + sparse.potentials):
        assert np.array_equal(a, b)
    assert np.array_equal(dense.decision, sparse.decision)
    assert (dense.spike_counts[:, 1] > 0).any(), "the case must have hidden spikes"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
def test_saturating_potentials_match_reference(kernel: Kernel, method: str) -> None:
    # 6-bit potentials and 5-bit weights: potentials hit both rails within a few spikes.
    rng = np.random.default_rng(7)
    params = CoreParams((10, 7, 4), time_steps=9, kernel=kernel, weight_bits=5, potential_bits=6)
    model = random_model(params, rng, firing=0.5)
    times = random_spike_times(params, rng, 30, density=0.9)
    result = simulate(model, times)
    low, high = params.potential_range
    hidden = result.potentials[0]
    assert (hidden == low).any() and (hidden == high).any(), "the case must saturate both ways"
    assert_matches_reference(model, times, method)


def test_saturation_is_applied_per_step_not_per_spike() -> None:
    # +15 and -15 in the same step sum to 0 exactly; adding +15 alone to 20 would clamp
    # at 31 and fire, and -15 after that would leave 16.
    params = CoreParams((2, 1), time_steps=2, weight_bits=5, potential_bits=6)
    layer = Layer(np.array([[15], [-15]]), np.array([31]), np.array([20]))
    model = Model(params, (layer,), LatencyEncoding(1.0))
    result = simulate(model, np.array([[0, 0]]))
    assert result.potentials[0][0, 0] == 20
    assert result.spike_times[0][0, 0] == NO_SPIKE


def test_ramp_kernel_integrates_the_current_every_step() -> None:
    params = CoreParams((1, 1), time_steps=5, kernel=Kernel.RAMP)
    layer = Layer(np.array([[3]]), np.array([8]), np.array([1]))
    model = Model(params, (layer,), LatencyEncoding(1.0))
    result = simulate(model, np.array([[1]]))
    # V: 1, 1+3=4, 4+3=7, 7+3=10 (fires at t=3), 13
    assert result.spike_times[0][0, 0] == 3
    assert result.potentials[0][0, 0] == 13


def test_latched_neuron_never_fires_twice() -> None:
    # The potential crosses, falls below and crosses again: one spike, at the first crossing.
    params = CoreParams((3, 1), time_steps=6)
    layer = Layer(np.array([[5], [-5], [5]]), np.array([5]), np.array([0]))
    model = Model(params, (layer,), LatencyEncoding(1.0))
    result = simulate(model, np.array([[1, 2, 4]]))
    assert result.spike_times[0][0, 0] == 1
    assert result.potentials[0][0, 0] == 5


def test_spike_reaches_next_layer_in_the_same_step() -> None:
    params = CoreParams((1, 1, 1), time_steps=4)
    hidden = Layer(np.array([[1]]), np.array([1]), np.array([0]))
    output = Layer(np.array([[1]]), np.array([1]), np.array([0]))
    model = Model(params, (hidden, output), LatencyEncoding(1.0))
    result = simulate(model, np.array([[2]]))
    assert result.spike_times[0][0, 0] == 2 and result.spike_times[1][0, 0] == 2


def test_first_spike_ties_go_to_higher_potential_then_lower_index() -> None:
    params = CoreParams((2, 4), time_steps=3)
    weights = np.array([[5, 7, 7, 9], [0, 0, 0, 0]])
    # Neurons 1, 2 and 3 fire at t=0; 3 has threshold 20 so fires later. 1 and 2 tie at 7.
    layer = Layer(weights, np.array([5, 6, 6, 20]), np.array([0, 0, 0, 0]))
    model = Model(params, (layer,), LatencyEncoding(1.0))
    result = simulate(model, np.array([[0, -1]]))
    assert result.decision[0] == 1 and result.fired[0]
    higher = model.replace_layer(0, Layer(weights, np.array([5, 6, 6, 9]), np.zeros(4, np.int64)))
    assert simulate(higher, np.array([[0, -1]])).decision[0] == 3


def test_no_output_fires_decision_is_argmax_potential_lower_index_on_ties() -> None:
    params = CoreParams((2, 3), time_steps=4)
    layer = Layer(np.array([[2, 4, 4], [1, 1, 1]]), np.array([100, 100, 100]), np.zeros(3, np.int64))
    model = Model(params, (layer,), LatencyEncoding(1.0))
    result = simulate(model, np.array([[1, 3]]))
    assert not result.fired[0] and result.decision[0] == 1
    assert (result.spike_times[0] == NO_SPIKE).all()


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
def test_nothing_fires_anywhere(kernel: Kernel) -> None:
    rng = np.random.default_rng(3)
    params = CoreParams((8, 5, 3), time_steps=6, kernel=kernel)
    model = random_model(params, rng)
    high = params.potential_range[1]
    silent = Model(params, tuple(Layer(la.weights, np.full_like(la.thresholds, high), la.initial_potentials * 0)
                                 for la in model.layers), model.encoding)
    times = random_spike_times(params, rng, 5, density=0.5)
    result = simulate(silent, times)
    assert not result.fired.any()
    assert_matches_reference(silent, times)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
@pytest.mark.parametrize("when", ["first", "last"])
def test_all_inputs_at_one_edge_of_the_window(kernel: Kernel, when: str) -> None:
    rng = np.random.default_rng(11)
    params = CoreParams((9, 6, 4), time_steps=7, kernel=kernel)
    model = random_model(params, rng, firing=0.7)
    step = 0 if when == "first" else params.time_steps - 1
    times = np.full((6, 9), step, np.int16)
    times[rng.random(times.shape) < 0.3] = NO_SPIKE
    assert_matches_reference(model, times)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
@pytest.mark.parametrize("sizes", [(1, 1), (1, 1, 1), (5, 1, 3), (4, 3, 1)])
def test_single_neuron_layers(kernel: Kernel, sizes: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(sizes) * 10 + sizes[-1])
    params = CoreParams(sizes, time_steps=5, kernel=kernel, weight_bits=4)
    model = random_model(params, rng, firing=0.8)
    assert_matches_reference(model, random_spike_times(params, rng, 10, density=0.8))


def test_large_layers_use_exact_arithmetic() -> None:
    # 16-bit weights over 300 inputs exceed float32's exact range: the golden model must notice.
    rng = np.random.default_rng(5)
    params = CoreParams((300, 3), time_steps=4, weight_bits=16, potential_bits=32)
    model = random_model(params, rng)
    assert_matches_reference(model, random_spike_times(params, rng, 3, density=0.9))


def test_chunked_batches_equal_one_batch() -> None:
    rng = np.random.default_rng(2)
    params = CoreParams((20, 10, 4), time_steps=8)
    model = random_model(params, rng)
    times = random_spike_times(params, rng, 50)
    whole = simulate(model, times)
    joined = GoldenResult.join(list(simulate_batches(model, times, chunk=7)))
    for a, b in zip(whole.spike_times + whole.potentials, joined.spike_times + joined.potentials):
        assert np.array_equal(a, b)
    assert np.array_equal(whole.decision, joined.decision)


def test_counts_synaptic_ops_and_cycles() -> None:
    params = CoreParams((3, 5, 2), time_steps=4)
    hidden = Layer(np.ones((3, 5), np.int64), np.array([1, 1, 2, 9, 9]), np.zeros(5, np.int64))
    output = Layer(np.ones((5, 2), np.int64), np.array([1, 9]), np.zeros(2, np.int64))
    model = Model(params, (hidden, output), LatencyEncoding(1.0))
    result = simulate(model, np.array([[0, 1, -1]]))
    assert result.spike_counts.tolist() == [[2, 3, 1]]
    assert result.synaptic_ops.tolist() == [2 * 5 + 3 * 2]
    # P=2: layer 0 folds 3, layer 1 folds 1: (2+1)*3 + (3+1)*1 + 2 layers * LAYER_OVERHEAD (5),
    # and the decision's settle: its leaves' register, its one tree level's two registered
    # halves and its update's two cycles, three past the overhead
    assert result.cycles(2).tolist() == [9 + 4 + 10 + 3]
    assert result.ideal_cycles(2).tolist() == [2 * 3 + 3 * 1]


def test_empty_batch_gives_empty_result() -> None:
    params = CoreParams((3, 2), time_steps=4)
    model = random_model(params, np.random.default_rng(0))
    result = simulate(model, np.zeros((0, 3), np.int16))
    assert result.batch == 0 and result.spike_times[0].shape == (0, 2)


# -- the stepped schedule: the core stops at the decision step --------------------------------

@pytest.mark.parametrize("kernel", list(Kernel), ids=lambda k: k.value)
@pytest.mark.parametrize("seed", range(6))
def test_the_stepped_schedule_decides_alike_and_reports_only_up_to_the_decision_step(kernel, seed):
    rng = np.random.default_rng(seed)
    params = CoreParams((14, 17, 9, 6), 10, kernel, 6, 12)
    layered = random_model(params, rng, firing=0.5)
    stepped = Model(params.with_schedule(Schedule.STEPPED), layered.layers, layered.encoding)
    times = random_spike_times(params, rng, 40, density=0.5)
    full, cut = simulate(layered, times), simulate(stepped, times)
    np.testing.assert_array_equal(cut.decision, full.decision)
    np.testing.assert_array_equal(cut.fired, full.fired)
    np.testing.assert_array_equal(cut.decision_step, full.decision_step)
    first = np.where(full.spike_times[-1] >= 0, full.spike_times[-1], 99).min(axis=1)
    np.testing.assert_array_equal(full.decision_step, np.where(full.fired, first, 9))
    for whole, reported in zip(full.spike_times, cut.spike_times):
        after = whole > full.decision_step[:, None]
        assert (reported[after] == NO_SPIKE).all() and (reported[~after] == whole[~after]).all()
    assert full.fired.any() and (full.decision_step < 9).any(), "some decisions must come early"
    arrived = (times >= 0) & (times <= full.decision_step[:, None])
    np.testing.assert_array_equal(cut.spike_counts[:, 0], arrived.sum(axis=1))
    assert (cut.events_per_step.sum(axis=2) == cut.events).all()


def _stepped_params(kernel: Kernel) -> CoreParams:
    return CoreParams((4, 3, 2), 4, kernel, 6, 12, lanes=2, schedule=Schedule.STEPPED)


def test_stepped_cycles_of_a_hand_counted_case_step_kernel():
    """Layer 0 gets 1 event at t = 0 and 2 at t = 2, layer 1 one at t = 2; F = 2, 1 at P = 2.
    Visited: t = 0 (every layer checked: fresh neurons may start above threshold) and t = 2;
    t = 1 has nothing. Runs: (0, 0) 1 pass, (1, 0) a check pass, (0, 2) 2, (1, 2) 1. Each
    change of layer within a step costs 8 cycles (the weights' 4-cycle read, the two-stage
    lanes' report two registers on, the drain, the next layer's first event), each change of
    step 7, and the decision settles in 12 at P = 2 (its leaves' register, its tree's one
    level in two cycles, its update in two).
    Undecided, t = 3 adds a check pass of each layer."""
    events = np.array([[[1, 0, 2, 0], [0, 0, 1, 0]]])
    params = _stepped_params(Kernel.STEP)
    passes = (1 + 2) * 2 + (1 + 1) * 1
    assert stepped_cycles(params, events, np.array([2])).tolist() == [passes + 2 * 8 + 1 * 7 + 12]
    assert stepped_cycles(params, events, np.array([3])).tolist() == [passes + 2 + 1 + 3 * 8 + 2 * 7 + 12]


def test_stepped_cycles_of_a_hand_counted_case_ramp_kernel():
    """The ramp moves potentials every step: every layer runs at every step up to the
    decision, a check pass where it has no events."""
    events = np.array([[[1, 0, 2, 0], [0, 0, 1, 0]]])
    params = _stepped_params(Kernel.RAMP)
    passes = (1 + 1 + 2) * 2 + (1 + 1 + 1) * 1
    assert stepped_cycles(params, events, np.array([2])).tolist() == [passes + 3 * 8 + 2 * 7 + 12]


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
def test_output_potentials_are_the_output_layers_every_step(kernel: Kernel) -> None:
    from firstspike.sw.arith import first_crossing
    from firstspike.sw.golden import output_potentials
    rng = np.random.default_rng(11)
    params = CoreParams((9, 7, 4), time_steps=6, kernel=kernel)
    model = random_model(params, rng)
    times = random_spike_times(params, rng, 40)
    history, result = output_potentials(model, times), simulate(model, times)
    assert history.shape == (6, 40, 4)
    assert np.array_equal(history[-1], result.potentials[-1])
    assert np.array_equal(first_crossing(history, model.layers[-1].thresholds), result.spike_times[-1])
