"""The stepped schedule in RTL through the native harness: deciding at the first output spike."""

from __future__ import annotations

import cases
import pytest
from test_native_rtl import KERNELS, SPECIAL, assert_native_matches_golden, tied_across_folds

from firstspike.sw import NO_SPIKE, Kernel, Model, Schedule, simulate
from firstspike.sw.datasets import load_dataset
from firstspike.sw.model import load_model
from firstspike.sw.models import shipped_model_path


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("native-build")


# -- the stepped schedule: deciding at the first output spike ----------------------------------

def stepped(model: Model) -> Model:
    return Model(model.params.with_schedule(Schedule.STEPPED), model.layers, model.encoding)


@pytest.mark.parametrize("simulator, lanes", [("icarus", 1), ("icarus", 5), ("icarus", 16),
                                               pytest.param("verilator", 32, marks=pytest.mark.slow),
                                               pytest.param("verilator", 5, marks=pytest.mark.slow)])
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
def test_stepped_random_networks_match_golden_up_to_the_decision_step(kernel, lanes, simulator, build_root):
    model, times = cases.random_case(lanes + 40, kernel, batch=16)
    model = stepped(model)
    golden = simulate(model, times)
    out = assert_native_matches_golden(model, times, lanes, simulator, build_root)
    assert out["decision"].tolist() == simulate(Model(model.params.with_schedule(Schedule.LAYERED), model.layers,
                                                      model.encoding), times).decision.tolist()
    assert golden.fired.any()


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
@pytest.mark.parametrize("case", list(SPECIAL))
def test_stepped_special_cases_match_golden(case, kernel, build_root):
    """Saturation, ties, nothing firing (the fallback at T-1), a decision at t = 0 ("first")
    and at T-1 ("last"), one-neuron layers."""
    model, times = SPECIAL[case](kernel)
    assert_native_matches_golden(stepped(model), times, 4, "icarus", build_root)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
def test_stepped_ties_across_folds_at_the_decision_step_match_golden(kernel, build_root):
    model, times = tied_across_folds(kernel, 2)
    assert_native_matches_golden(stepped(model), times, 2, "icarus", build_root)


def test_stepped_clock_counted_by_the_testbench_is_the_reported_cycles_plus_the_dropped_events(build_root):
    """Not the contract's formula again: the clock edges between results are the reported
    cycles, four cycles of hand-over, and one per input event of the previous inference
    that came after its decision (dropped)."""
    model, times = cases.random_case(7, Kernel.STEP, batch=24)
    model = stepped(model)
    out = assert_native_matches_golden(model, times, 4, "icarus", build_root)
    golden = simulate(model, times)
    dropped = ((times != NO_SPIKE) & (times > golden.decision_step[:, None])).sum(axis=1)
    assert dropped.any() and (golden.decision_step < model.params.time_steps - 1).any()
    measured, reported = out["measured_cycles"], out["cycles"]
    assert measured[0] == reported[0] + 2
    assert (measured[1:] == reported[1:] + 4 + dropped[:-1]).all()


@pytest.mark.slow
@pytest.mark.parametrize("name, lanes", [("digits", 16), ("fashion-mnist", 32)])
def test_the_shipped_models_on_the_stepped_schedule_on_200_images_on_verilator(name, lanes, build_root):
    model = load_model(shipped_model_path(name))
    x, _ = load_dataset(name).split("test")
    times = model.encoding.encode(x[:200], model.params.time_steps)
    out = assert_native_matches_golden(stepped(model), times, lanes, "verilator", build_root)
    layered = simulate(model, times)
    assert out["decision"].tolist() == layered.decision.tolist()
    assert out["cycles"].mean() < 0.85 * layered.cycles(lanes).mean()
