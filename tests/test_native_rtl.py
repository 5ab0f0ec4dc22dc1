"""The native RTL harness (hw/sim/native.py): a Verilog testbench with no Python per clock,
on Icarus and Verilator, against the golden model and against the cocotb harness."""

from __future__ import annotations

import cases
import numpy as np
import pytest

from firstspike.hw.sim.native import run_native
from firstspike.hw.sim.runner import run_rtl
from firstspike.sw import Kernel, simulate
from firstspike.sw.compare import DeviceResults, compare
from firstspike.sw.datasets import load_dataset
from firstspike.sw.model import load_model
from firstspike.sw.models import shipped_model_path

KERNELS = [Kernel.STEP, Kernel.RAMP]
SPECIAL = {"saturating": cases.saturating_case, "floor": cases.floor_case, "tie": cases.tie_case,
           "silent": cases.silent_case, "first": lambda k: cases.edge_case(k, "first"),
           "last": lambda k: cases.edge_case(k, "last"), "single": cases.single_neuron_case}


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("native-build")


def assert_native_matches_golden(model, times, lanes, simulator, build_root) -> dict:
    out = run_native(model, times, lanes=lanes, simulator=simulator, build_root=build_root)
    golden = simulate(model, times)
    problem = compare(golden, DeviceResults.from_arrays(out, model.params.n_layers), lanes)
    assert problem is None, str(problem)
    return out


@pytest.mark.parametrize("simulator, lanes", [("icarus", 1), ("icarus", 5), ("icarus", 16), ("verilator", 5)])
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
def test_random_networks_match_golden_in_every_layer(kernel, lanes, simulator, build_root):
    model, times = cases.random_case(lanes, kernel, batch=12)
    assert_native_matches_golden(model, times, lanes, simulator, build_root)


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
@pytest.mark.parametrize("case", list(SPECIAL))
def test_special_cases_match_golden(case, kernel, build_root):
    model, times = SPECIAL[case](kernel)
    assert_native_matches_golden(model, times, 4, "icarus", build_root)


def test_the_clock_the_testbench_counts_is_the_cycle_count_the_core_reports_plus_its_hand_over(build_root):
    """Not the same formula twice: the testbench counts clock edges between results."""
    model, times = cases.random_case(7, Kernel.STEP, batch=20)
    out = assert_native_matches_golden(model, times, 4, "icarus", build_root)
    measured, reported = out["measured_cycles"], out["cycles"]
    assert measured[0] == reported[0] + 1          # from the first event offered
    assert (measured[1:] == reported[1:] + 2).all()  # from the previous result: one cycle each way


def test_native_and_cocotb_harnesses_give_the_same_arrays(build_root):
    model, times = cases.random_case(3, Kernel.RAMP, batch=10)
    native = run_native(model, times, lanes=4, simulator="icarus", build_root=build_root)
    cocotb = run_rtl(model, times, lanes=4, simulator="icarus", build_root=build_root)
    for key, value in cocotb.items():
        if key in native:
            np.testing.assert_array_equal(native[key], value, err_msg=key)


@pytest.mark.slow
def test_the_shipped_digits_model_over_the_whole_test_split_on_verilator(build_root):
    model = load_model(shipped_model_path("digits"))
    x, _ = load_dataset("digits").split("test")
    times = model.encoding.encode(x, model.params.time_steps)
    out = assert_native_matches_golden(model, times, 16, "verilator", build_root)
    assert len(out["decision"]) == 450
