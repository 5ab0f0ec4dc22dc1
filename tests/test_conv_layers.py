"""Convolution and pooling layers (sw/topology.py): hand-counted cases, the golden model
against the plain-loop reference on random conv networks, shapes and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from test_golden_model import assert_matches_reference

from firstspike.sw import CoreParams, Kernel, LatencyEncoding, Layer, Model, simulate
from firstspike.sw.golden import GoldenResult, simulate_batches
from firstspike.sw.synthetic import random_model, random_spike_times
from firstspike.sw.topology import Conv2d, Dense, MapShape, Pooling, PoolKind, stack

N = -1  # no spike


def _model(params: CoreParams, *layers: tuple) -> Model:
    return Model(params, tuple(Layer(*(np.asarray(a, np.int64) for a in layer)) for layer in layers),
                 LatencyEncoding(x_max=1.0))


def test_a_conv_spike_reaches_only_the_outputs_whose_window_holds_it() -> None:
    sizes, shapes = stack(MapShape(1, 3, 3), [lambda m: Conv2d(m, 1, (2, 2))])
    params = CoreParams(sizes, time_steps=4, shapes=shapes)
    weights = np.array([[[[1], [2]], [[3], [4]]]])  # [C=1, kh=2, kw=2, K=1]
    model = _model(params, (weights, [5], [0]))
    # (0,0) at t=0, (1,1) and (2,2) at t=1. Out (0,0): 1 then +4 = 5, fires at 1;
    # (0,1): 3; (1,0): 2; (1,1): (1,1) at offset (0,0) = 1, (2,2) at (1,1) = 4: 5, fires at 1.
    times = np.array([[0, N, N, N, 1, N, N, N, 1]])
    result = simulate(model, times)
    assert result.spike_times[0].tolist() == [[1, N, N, 1]]
    assert result.potentials[0].tolist() == [[5, 3, 2, 5]]


def test_padding_never_spikes_and_stride_skips_positions() -> None:
    sizes, shapes = stack(MapShape(1, 3, 3), [lambda m: Conv2d(m, 2, (3, 3), stride=2, padding=1)])
    params = CoreParams(sizes, time_steps=2, shapes=shapes)
    assert shapes[0].output_map == MapShape(2, 2, 2)
    weights = np.arange(1, 19).reshape(1, 3, 3, 2)  # w[0, dy, dx, k] = 2·(3dy + dx) + k + 1
    model = _model(params, (weights, [100, 100], [0, 0]))
    # Input (1,1) at t=0: output (oy, ox) sees it at offset (1 - 2oy + 1, 1 - 2ox + 1).
    times = np.array([[N, N, N, N, 0, N, N, N, N]])
    potentials = simulate(model, times).potentials[0][0].reshape(2, 2, 2)
    for k in range(2):
        for oy in range(2):
            for ox in range(2):
                dy, dx = 2 - 2 * oy, 2 - 2 * ox
                assert potentials[k, oy, ox] == weights[0, dy, dx, k]


def test_sum_pooling_counts_every_spike_of_a_window_with_its_weight() -> None:
    shape = Dense(2, MapShape(1, 4, 4), Pooling(2, PoolKind.SUM))
    params = CoreParams((16, 2), time_steps=3, shapes=(shape,))
    weights = [[1, 0], [0, 1], [0, 0], [10, 10]]  # per pooled position (2x2 map)
    model = _model(params, (weights, [100, 100], [0, 0]))
    times = np.full((1, 16), N)
    times[0, [0, 1, 4]] = [0, 1, 2]  # three spikes in the top-left window
    times[0, 15] = 0  # one in the bottom-right window
    result = simulate(model, times)
    assert result.potentials[0].tolist() == [[3 + 10, 10]]


def test_max_pooling_passes_each_windows_earliest_spike_once() -> None:
    shape = Dense(1, MapShape(1, 5, 5), Pooling(2, PoolKind.MAX))  # row and column 4 dropped
    params = CoreParams((25, 1), time_steps=4, shapes=(shape,))
    model = _model(params, ([[1], [2], [4], [8]], [4], [0]))
    times = np.full((1, 25), N)
    times[0, [0, 1, 5]] = [3, 2, 2]  # window (0,0): earliest 2
    times[0, 24] = 0  # outside every window
    times[0, 2] = 1  # window (0,1): 1
    result = simulate(model, times)
    assert result.potentials[0].tolist() == [[1 + 2]]
    assert result.spike_times[0].tolist() == [[N]]
    times[0, 12] = 3  # window (1,1) adds 8 at t=3: V(2) = 3 < 4, V(3) = 11
    assert simulate(model, times).spike_times[0].tolist() == [[3]]


def _conv_stack(kind: str) -> list:
    if kind == "conv":
        return [lambda m: Conv2d(m, 3, (3, 3), 1, 1), lambda m: Dense(4)]
    if kind == "strided":
        return [lambda m: Conv2d(m, 4, (5, 5), 2, 2), lambda m: Conv2d(m, 3, (2, 3), (1, 2), (0, 1)),
                lambda m: Dense(3)]
    if kind == "sum-pool":
        return [lambda m: Conv2d(m, 4, (3, 3), 1, 0), lambda m: Conv2d(m, 2, (2, 2), 1, 1, Pooling(2)),
                lambda m: Dense(3, m, Pooling(2, PoolKind.SUM))]
    if kind == "max-pool":
        return [lambda m: Conv2d(m, 2, (1, 1)), lambda m: Conv2d(m, 3, (3, 3), 2, 1, Pooling(2, PoolKind.MAX)),
                lambda m: Dense(5, m, Pooling(2, PoolKind.MAX))]
    raise AssertionError(kind)


STACKS = ["conv", "strided", "sum-pool", "max-pool"]


@pytest.mark.parametrize("method", ["dense", "sparse"])  # convolved per step, or each spike's fan-out added
@pytest.mark.parametrize("kernel", [Kernel.STEP, Kernel.RAMP], ids=lambda k: k.value)
@pytest.mark.parametrize("kind", STACKS)
@pytest.mark.parametrize("seed", range(3))
def test_random_conv_networks_match_the_reference(kernel: Kernel, kind: str, seed: int, method: str) -> None:
    rng = np.random.default_rng(seed)
    input_map = MapShape(int(rng.integers(1, 3)), int(rng.integers(7, 12)), int(rng.integers(7, 12)))
    sizes, shapes = stack(input_map, _conv_stack(kind))
    params = CoreParams(sizes, time_steps=int(rng.integers(3, 9)), kernel=kernel, weight_bits=4,
                        potential_bits=12, shapes=shapes)
    model = random_model(params, rng, firing=0.3)
    assert_matches_reference(model, random_spike_times(params, rng, 4, density=0.4), method)


@pytest.mark.parametrize("kernel", [Kernel.STEP, Kernel.RAMP], ids=lambda k: k.value)
def test_saturating_conv_layers_match_the_reference(kernel: Kernel) -> None:
    rng = np.random.default_rng(7)
    sizes, shapes = stack(MapShape(2, 6, 5), [lambda m: Conv2d(m, 3, (3, 3), 1, 1, None), lambda m: Dense(3)])
    params = CoreParams(sizes, time_steps=6, kernel=kernel, weight_bits=8, potential_bits=9, shapes=shapes)
    model = random_model(params, rng, firing=0.2)
    times = random_spike_times(params, rng, 4, density=0.9)
    result = simulate(model, times)
    assert result.potentials[0].max() == 255 and result.potentials[0].min() == -256  # saturated both ways
    assert_matches_reference(model, times)


def test_ties_between_equal_outputs_of_a_two_bit_conv_network_match_the_reference() -> None:
    rng = np.random.default_rng(3)
    sizes, shapes = stack(MapShape(1, 6, 6), [lambda m: Conv2d(m, 2, (2, 2), 2), lambda m: Dense(4)])
    params = CoreParams(sizes, time_steps=3, weight_bits=2, potential_bits=6, shapes=shapes)
    model = random_model(params, rng, firing=0.5)
    times = random_spike_times(params, rng, 24, density=0.5)
    result = simulate(model, times)
    first = result.spike_times[-1]
    ties = [(row == row[row >= 0].min()).sum() > 1 for row in first if (row >= 0).any()]
    assert any(ties)
    assert_matches_reference(model, times)


def test_a_conv_network_in_which_nothing_fires_decides_by_potential() -> None:
    rng = np.random.default_rng(1)
    sizes, shapes = stack(MapShape(1, 5, 5), [lambda m: Conv2d(m, 2, (3, 3)), lambda m: Dense(3)])
    params = CoreParams(sizes, time_steps=4, shapes=shapes)
    model = random_model(params, rng)
    high = params.potential_range[1]
    silent = Model(params, tuple(Layer(layer.weights, np.full_like(layer.thresholds, high),
                                       layer.initial_potentials) for layer in model.layers), model.encoding)
    times = random_spike_times(params, rng, 5)
    result = simulate(silent, times)
    assert not result.fired.any() and all((t == N).all() for t in result.spike_times)
    assert_matches_reference(silent, times)


def test_conv_chunks_equal_one_batch() -> None:
    rng = np.random.default_rng(5)
    sizes, shapes = stack(MapShape(1, 8, 8), _conv_stack("sum-pool"))
    params = CoreParams(sizes, time_steps=6, shapes=shapes)
    model = random_model(params, rng)
    times = random_spike_times(params, rng, 10)
    whole = simulate(model, times)
    parts = GoldenResult.join(list(simulate_batches(model, times, chunk=3)))
    for a, b in zip(whole.spike_times, parts.spike_times):
        assert np.array_equal(a, b)
    assert np.array_equal(whole.decision, parts.decision)


@pytest.mark.parametrize("make, message", [
    (lambda: Conv2d(MapShape(1, 4, 4), 2, (5, 5)), "kernel 5x5 is larger than the padded input map 4x4"),
    (lambda: Conv2d(MapShape(1, 4, 4), 2, (3, 0)), "kernel must be an integer or a pair of integers between 1 and 255"),
    (lambda: Conv2d(MapShape(1, 4, 4), 0, (3, 3)), "channels must be an integer between 1 and 65535, not 0"),
    (lambda: Conv2d(MapShape(1, 4, 4), 2, (3, 3), stride=0), "stride must be an integer or a pair"),
    (lambda: Dense(3, MapShape(1, 3, 3), Pooling(4)), "a 4x4 pooling needs a map of at least 4x4, not 3x3"),
    (lambda: Dense(3, None, Pooling(2)), "a dense layer with pooling needs its input map's shape"),
    (lambda: Pooling(2, "mean"), "pool kind must be one of ['sum', 'max'], not 'mean'"),
    (lambda: CoreParams((16, 20), 4, shapes=(Conv2d(MapShape(1, 4, 4), 2, (2, 2)),)),
     "layer 0 (conv2d) makes 18 neurons, but layer_sizes[1] is 20"),
    (lambda: CoreParams((17, 18), 4, shapes=(Conv2d(MapShape(1, 4, 4), 2, (2, 2)),)),
     "layer 0's input map [1, 4, 4] holds 16 neurons, but layer_sizes[0] is 17"),
    (lambda: CoreParams((16, 18, 3), 4, shapes=(Conv2d(MapShape(1, 4, 4), 2, (2, 2)),)),
     "shapes has 1 layers but layer_sizes [16, 18, 3] has 2"),
    (lambda: CoreParams((16, 18, 4), 4, shapes=(Conv2d(MapShape(1, 4, 4), 2, (2, 2)),
                                                Conv2d(MapShape(2, 9, 1), 1, (2, 1)))),
     "layer 1's input map [2, 9, 1] is not the map layer 0 makes, [2, 3, 3]"),
])
def test_bad_shapes_are_named_in_one_line(make, message: str) -> None:
    with pytest.raises(ValueError) as error:
        make()
    assert message in str(error.value)


def _small_conv_model() -> Model:
    sizes, shapes = stack(MapShape(1, 8, 8), [lambda m: Conv2d(m, 2, (3, 3)), lambda m: Dense(3, m, Pooling(2))])
    return random_model(CoreParams(sizes, time_steps=4, shapes=shapes), np.random.default_rng(0))


def test_the_layered_schedule_refuses_conv_layers_by_name() -> None:
    from firstspike.sw.backends import run_backend
    from firstspike.sw.emulator import DeviceEmulator
    from firstspike.sw.errors import NotOnTheCore
    model = _small_conv_model()
    with pytest.raises(NotOnTheCore, match="the rtl backend cannot run this network: the layered schedule runs "
                                           "dense layers only"):
        next(run_backend("rtl", model, np.zeros((1, 64), np.int16)))
    with pytest.raises(NotOnTheCore, match="the core cannot run this network: the layered schedule"):
        DeviceEmulator(model, 4)
    with pytest.raises(NotOnTheCore, match="the layered schedule runs dense layers only so far, and this network "
                                           "has conv2d, sum-pooled dense layers"):
        simulate(model, np.zeros((1, 64), np.int16)).cycles()


@pytest.mark.parametrize("makers, message", [
    ([lambda m: Conv2d(m, 2, (3, 3)), lambda m: Dense(3, m, Pooling(2, PoolKind.MAX))],
     "layer 2 reads its input through max pooling, which only the golden model runs"),
    ([lambda m: Conv2d(m, 2, (3, 3), pool=Pooling(2)), lambda m: Dense(3)],
     "layer 1 pools the input map; the core pools conv layers' maps only"),
    ([lambda m: Dense(16), lambda m: Conv2d(MapShape(1, 4, 4), 2, (3, 3)), lambda m: Dense(3)],
     "layer 2 is a convolution after a dense layer"),
    ([lambda m: Conv2d(m, 2, (3, 3)), lambda m: Conv2d(m, 3, (3, 3))],
     "the output layer is a convolution; the core decides on a dense output layer"),
], ids=["max-pool", "pooled-input", "conv-after-dense", "conv-output"])
def test_the_core_names_what_it_cannot_run(makers, message: str) -> None:
    from firstspike.sw.errors import NotOnTheCore
    from firstspike.sw.params import Schedule
    sizes, shapes = stack(MapShape(1, 8, 8), makers)
    params = CoreParams(sizes, time_steps=4, schedule=Schedule.STEPPED, shapes=shapes)
    with pytest.raises(NotOnTheCore, match=f"the core cannot run this network: {message}"):
        params.require_on_the_core("the core")


def test_synaptic_ops_count_each_events_fan_out() -> None:
    model = _small_conv_model()  # conv 3x3 over 8x8 (no padding) -> 2x6x6, then a 2x2 sum pool -> dense 3
    times = np.full((1, 64), N)
    times[0, 0] = 0  # corner: one kernel offset lands, 2 channels
    times[0, 9] = 0  # (1,1): offsets with oy, ox in 0..1 -> 4 positions x 2 channels
    result = simulate(model, times)
    layer1 = (result.spike_times[0][0] != N).sum()
    assert result.synaptic_ops.tolist() == [2 + 8 + 3 * layer1]


@pytest.mark.parametrize("lanes", [1, 3, 4, 16])
def test_the_memory_layout_packs_conv_weights_by_slot_and_state_by_position(lanes: int) -> None:
    from firstspike.sw.layout import MemoryLayout, Target
    sizes, shapes = stack(MapShape(2, 7, 6), [lambda m: Conv2d(m, 5, (3, 2), 1, 1),
                                              lambda m: Dense(4, m, Pooling(2))])
    model = random_model(CoreParams(sizes, time_steps=4, lanes=lanes, shapes=shapes), np.random.default_rng(2))
    layout = MemoryLayout(model.params)
    folds = -(-5 // lanes)
    assert layout.folds == (folds, -(-4 // lanes))
    assert layout.weight_slots == (2 * 3 * 2, 5 * 3 * 3)  # conv: C·kh·kw; dense after a 2x2 sum pool of 5x7x7
    assert layout.state_base == (0, 7 * 7 * folds) and layout.neuron_base == (0, folds)
    for target, arrays in ((Target.WEIGHTS, "weights"), (Target.THRESHOLDS, "thresholds"),
                           (Target.INITIAL_POTENTIALS, "initial_potentials")):
        back = layout.unpack(layout.words(model, target), target)
        for k, layer in enumerate(model.layers):
            assert np.array_equal(back[k], getattr(layer, arrays)), (target, k)


def test_stepped_cycles_of_a_hand_counted_conv_network() -> None:
    """1x3x3 input, a 2x2 conv (4 positions, F = 1 at P = 4), then dense 2; nothing fires."""
    from firstspike.sw.params import Schedule
    sizes, shapes = stack(MapShape(1, 3, 3), [lambda m: Conv2d(m, 1, (2, 2)), lambda m: Dense(2)])
    params = CoreParams(sizes, time_steps=4, lanes=4, schedule=Schedule.STEPPED, shapes=shapes)
    model = _model(params, (np.ones((1, 2, 2, 1)), [100], [0]), (np.ones((4, 2)), [100, 100], [0, 0]))
    times = np.full((1, 9), N)
    times[0, 0] = times[0, 4] = 1  # (0,0) reaches output (0,0); (1,1) reaches all four
    result = simulate(model, times)
    adds, touched, unreaching = result.conv_work
    assert adds[0, 0].tolist() == [0, 5, 0, 0] and touched[0, 0].tolist() == [0, 4, 0, 0]
    assert not unreaching.any()
    # Conv runs: t=0 the turn and a sweep of all 4 positions (5); t=1 the start, 5 adds, the
    # turn, 4 checks (11); t=3 the turn and one empty cycle (2). Dense: t=0 and t=3, a pass each.
    # Then 2 layer changes x 8, 2 step changes x 7 and the decision's 12 cycles (the weights'
    # 4-cycle read, the lanes in two stages and their two report registers, the register at
    # the decision's leaves, one level of its trees, two cycles: it compares the 2 lanes
    # that hold output neurons, not all 4; its update in two: hw/banks.py,
    # hw/core/pipeline.py, hw/decision.py).
    assert result.cycles().tolist() == [5 + 11 + 2 + 2 + 16 + 14 + 12]
    assert result.ideal_cycles().tolist() == [5 + 4]


def test_an_input_spike_a_strided_convolution_skips_costs_one_cycle() -> None:
    """1x3x3 input, a 1x1 conv at stride 2 (outputs at (0,0), (0,2), (2,0), (2,2)): the
    input at (1,1) reaches none of them."""
    from firstspike.sw.params import Schedule
    sizes, shapes = stack(MapShape(1, 3, 3), [lambda m: Conv2d(m, 1, (1, 1), stride=2), lambda m: Dense(2)])
    params = CoreParams(sizes, time_steps=4, lanes=4, schedule=Schedule.STEPPED, shapes=shapes)
    model = _model(params, (np.ones((1, 1, 1, 1)), [100], [0]), (np.ones((4, 2)), [100, 100], [0, 0]))
    times = np.full((1, 9), N)
    times[0, 0] = times[0, 4] = 2
    result = simulate(model, times)
    adds, touched, unreaching = result.conv_work
    assert adds[0, 0].tolist() == [0, 0, 1, 0] and unreaching[0, 0].tolist() == [0, 0, 1, 0]
    # Conv: t=0 1 + 4; t=2 the start, the skipped event, 1 add, the turn, 1 check (5); t=3 2.
    # Dense: a pass at t=0 and t=3; 2 layer changes x 8, 2 step changes x 7, the decision's 12.
    assert result.cycles().tolist() == [5 + 5 + 2 + 2 + 16 + 14 + 12]


def test_the_board_design_refuses_a_layered_conv_core_before_building_anything() -> None:
    import warnings

    from firstspike.hw.generate import render_link
    from firstspike.sw.errors import NotOnTheCore
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no elaboratable left unused behind the refusal
        with pytest.raises(NotOnTheCore, match="the core cannot run this network: the layered schedule"):
            render_link(_small_conv_model(), 4, clock_hz=25_000_000, baud=3_000_000)
