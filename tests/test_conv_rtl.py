"""Conv layers in the generated Verilog (Icarus, Verilator) against the golden model: every
spike time of every layer (a conv layer's at every position), the class, the fired flag,
the spike counts and the cycle count of sw/cycles.py's conv runs."""

from __future__ import annotations

import cases
import numpy as np
import pytest
from test_native_rtl import assert_native_matches_golden

from firstspike.hw.sim.runner import run_rtl
from firstspike.sw import NO_SPIKE, Kernel, Layer, Model, simulate
from firstspike.sw.layout import MemoryLayout, Target

KERNELS = [Kernel.STEP, Kernel.RAMP]


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("conv-build")


@pytest.mark.parametrize("lanes", [1, pytest.param(3, marks=pytest.mark.slow), 4])  # 3 divides no channel count
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
@pytest.mark.parametrize("kind", list(cases.CONV_STACKS))
def test_random_conv_networks_match_golden_in_icarus(kind, kernel, lanes, build_root):
    model, times = cases.random_conv_case(lanes, kernel, kind)
    golden = simulate(model, times)
    assert golden.spike_counts[:, 1].any(), "the conv layer must spike"
    assert_native_matches_golden(model, times, lanes, "icarus", build_root)


@pytest.mark.slow
@pytest.mark.parametrize("kind, kernel, lanes", [("conv", Kernel.RAMP, 5), ("strided", Kernel.STEP, 16),
                                                 ("pooled", Kernel.RAMP, 16), ("skipping", Kernel.STEP, 5)])
def test_random_conv_networks_match_golden_in_verilator(kind, kernel, lanes, build_root):
    model, times = cases.random_conv_case(10 + lanes, kernel, kind, batch=12)
    assert_native_matches_golden(model, times, lanes, "verilator", build_root)


def _saturating(kernel: Kernel) -> tuple[Model, np.ndarray]:
    return cases.random_conv_case(7, kernel, "strided", firing=0.7, potential_bits=6, density=0.9)


def _tied(kernel: Kernel) -> tuple[Model, np.ndarray]:
    """Two-bit weights of 0 and 1 and equal thresholds: neurons fire together, outputs tie."""
    model, times = cases.random_conv_case(3, kernel, "conv", density=0.7)
    rng = np.random.default_rng(3)
    layers = tuple(Layer(rng.integers(0, 2, la.weights.shape), np.full_like(la.thresholds, 3),
                         np.zeros_like(la.initial_potentials)) for la in model.layers)
    return Model(model.params, layers, model.encoding), times


def _silent(kernel: Kernel) -> tuple[Model, np.ndarray]:
    """Nothing reaches a threshold: the decision falls back to the potentials at T-1."""
    model, times = cases.random_conv_case(11, kernel, "pooled")
    high = model.params.potential_range[1]
    layers = tuple(Layer(la.weights, np.full_like(la.thresholds, high), la.initial_potentials * 0)
                   for la in model.layers)
    return Model(model.params, layers, model.encoding), times


def _at(kernel: Kernel, when: str) -> tuple[Model, np.ndarray]:
    """Every input spike at t = 0 (a decision there) or at T-1."""
    model, times = cases.random_conv_case(13, kernel, "skipping", firing=0.6)
    step = 0 if when == "first" else model.params.time_steps - 1
    return model, np.where(times == NO_SPIKE, NO_SPIKE, step).astype(np.int16)


SPECIAL = {"saturating": _saturating, "tie": _tied, "silent": _silent, "first": lambda k: _at(k, "first"),
           "last": lambda k: _at(k, "last")}


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
@pytest.mark.parametrize("case", list(SPECIAL))
def test_conv_special_cases_match_golden(case, kernel, build_root):
    """Saturation, ties, nothing firing, every spike at t = 0 or at T-1."""
    model, times = SPECIAL[case](kernel)
    golden = simulate(model, times)
    if case == "silent":
        assert not golden.fired.any()
    if case == "saturating":
        low, high = model.params.potential_range
        assert (golden.potentials[0] == high).any() or (golden.potentials[0] == low).any()
    assert_native_matches_golden(model, times, 4, "icarus", build_root)


def test_the_clock_the_testbench_counts_is_the_conv_cycle_count_plus_the_hand_over(build_root):
    """Not the contract's formula again: clock edges between results."""
    model, times = cases.random_conv_case(5, Kernel.STEP, "skipping", batch=12)
    out = assert_native_matches_golden(model, times, 4, "icarus", build_root)
    golden = simulate(model, times)
    dropped = ((times != NO_SPIKE) & (times > golden.decision_step[:, None])).sum(axis=1)
    measured, reported = out["measured_cycles"], out["cycles"]
    assert golden.conv_work[2].any(), "some input spikes must reach no output"
    assert measured[0] == reported[0] + 2
    assert (measured[1:] == reported[1:] + 4 + dropped[:-1]).all()


@pytest.mark.parametrize("kind", ["pooled", "skipping"])
def test_late_input_events_change_no_conv_cycle_count(kind, build_root):
    """cocotb on Icarus, the input idle half the time (as when the link decodes slower than
    the core takes events): a conv layer's kernel-offset unit runs dry between events, and
    its restart is a stall, not a cycle; spikes reaching no output ("skipping") still cost theirs."""
    model, times = cases.random_conv_case(5, Kernel.STEP, kind, batch=6)
    golden = simulate(model, times)
    result = run_rtl(model, times, lanes=4, simulator="icarus", build_root=build_root, check=True, idle=0.5)
    assert result["cycles"].tolist() == golden.cycles(4).tolist()
    assert result["decision"].tolist() == golden.decision.tolist()


@pytest.mark.parametrize("simulator", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_conv_weights_reloaded_through_the_write_port_change_results_as_golden_predicts(simulator, build_root):
    """cocotb, with input gaps and result stalls: the conv layers' weight slots, thresholds
    and initial potentials per channel are rewritten before the samples."""
    model, times = cases.random_conv_case(8, Kernel.RAMP, "pooled", batch=8)
    reloaded = cases.reshuffled(model)
    golden_new = simulate(reloaded, times)
    assert (simulate(model, times).decision != golden_new.decision).any(), "the reload must change some decision"
    layout = MemoryLayout(model.params.with_lanes(3))
    writes = [(target, address, word) for target in Target
              for address, word in enumerate(layout.words(reloaded, target))]
    result = run_rtl(model, times, lanes=3, simulator=simulator, build_root=build_root, check=True, idle=0.3,
                     stall=0.3, writes=writes, golden_model=reloaded)
    assert result["decision"].tolist() == golden_new.decision.tolist()


def test_eval_of_a_conv_model_file_through_the_rtl_backend_reports_full_agreement(tmp_path, capsys):
    """From a model file, as a user runs it: the 8x8 digits through a small CNN."""
    import json

    from firstspike.sw.cli import main
    from firstspike.sw.model import save_model
    from firstspike.sw.params import CoreParams, Schedule
    from firstspike.sw.synthetic import random_model
    from firstspike.sw.topology import Conv2d, Dense, MapShape, Pooling, stack
    sizes, shapes = stack(MapShape(1, 8, 8), [lambda m: Conv2d(m, 6, (3, 3), 1, 1),
                                               lambda m: Conv2d(m, 5, (3, 3), 2, 1, Pooling(2)),
                                               lambda m: Dense(10)])
    params = CoreParams(sizes, time_steps=8, schedule=Schedule.STEPPED, shapes=shapes)
    from firstspike.sw import LatencyEncoding
    model = random_model(params, np.random.default_rng(1), firing=0.4)
    save_model(Model(params, model.layers, LatencyEncoding(16.0)), tmp_path / "cnn.npz")  # digits' pixels: 0 ... 16
    assert main(["eval", "--model", str(tmp_path / "cnn.npz"), "--backend", "rtl", "--limit", "24", "--lanes", "4",
                 "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agreement"] == 1.0 and report["samples"] == 24 and report["cycles_mean"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("lanes", [32])
def test_the_shipped_cnn_on_200_test_images_on_verilator(lanes, build_root):
    """Every spike time of every layer (6,272 + 6,272 + 128 + 10 neurons), the class, the
    fired flag and the cycle count, on the first 200 Fashion-MNIST test images."""
    from firstspike.sw.datasets import load_dataset
    from firstspike.sw.model import load_model
    from firstspike.sw.models import shipped_model_path
    model = load_model(shipped_model_path("fashion-mnist-cnn")).with_schedule("stepped")
    x, _ = load_dataset("fashion-mnist").split("test")
    times = model.encoding.encode(x[:200], model.params.time_steps)
    out = assert_native_matches_golden(model, times, lanes, "verilator", build_root)
    golden = simulate(model, times)
    assert golden.fired.mean() > 0.9 and out["cycles"].mean() < 1.1 * golden.ideal_cycles(lanes).mean()
