"""The generated Verilog in real simulators (Icarus, Verilator) through cocotb, against the
golden model: every spike time of every layer, the output spike times, the class, the
fired flag, the spike counts and the cycle count, with random input gaps and random
back-pressure on the results."""

from __future__ import annotations

import json

import cases
import numpy as np
import pytest

from firstspike.hw.sim.runner import RTLSimulationError, run_rtl
from firstspike.sw import Kernel, simulate
from firstspike.sw.cli import WAVE_FORMATS
from firstspike.sw.datasets import load_dataset
from firstspike.sw.layout import MemoryLayout, Target
from firstspike.sw.model import load_model
from firstspike.sw.models import shipped_model_path

KERNELS = [Kernel.STEP, Kernel.RAMP]


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("rtl-build")


def check(model, times, lanes, build_root, simulator="icarus", **options):
    """Run with the testbench's own comparison on; it fails on the first difference."""
    return run_rtl(model, times, lanes=lanes, simulator=simulator, build_root=build_root, check=True,
                   idle=0.3, stall=0.3, **options)


@pytest.mark.slow  # the native harness covers these cases in the fast loop; this adds gaps and stalls
@pytest.mark.parametrize("lanes", [1, 4, 16])
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
@pytest.mark.parametrize("seed", range(2))
def test_random_networks_match_golden_in_icarus(seed, kernel, lanes, build_root):
    model, times = cases.random_case(seed, kernel)
    result = check(model, times, lanes, build_root, seed=seed)
    assert result["cycles"].tolist() == simulate(model, times).cycles(lanes).tolist()


@pytest.mark.slow  # the native harness covers these cases in the fast loop; this adds gaps and stalls
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
@pytest.mark.parametrize("case", ["saturating", "floor", "tie", "silent", "first", "last", "single"])
def test_special_cases_match_golden_in_icarus(case, kernel, build_root):
    model, times = {
        "saturating": cases.saturating_case, "floor": cases.floor_case, "tie": cases.tie_case, "silent": cases.silent_case,
        "first": lambda k: cases.edge_case(k, "first"), "last": lambda k: cases.edge_case(k, "last"),
        "single": cases.single_neuron_case,
    }[case](kernel)
    check(model, times, 4, build_root)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus"])  # on Verilator it took 190 s of CI's 19 minutes
def test_ramp_spikes_inside_runs_of_empty_steps_match_golden(simulator, build_root):
    model, times = cases.sparse_deep_case(time_steps=40)
    result = check(model, times, 4, build_root, simulator=simulator)
    golden = simulate(model, times)
    assert result["cycles"].tolist() == golden.cycles(4).tolist()
    assert (golden.cycles(4) < (golden.events + 40 - golden.busy_steps) @ [5, 4, 2]).all(), \
        "skipping empty steps must save cycles on this input"


@pytest.mark.parametrize("kernel, simulator, lanes", [
    *((kernel, "icarus", 5) for kernel in KERNELS),
    # the ULX3S width once, with the kernel whose passes span empty steps
    pytest.param(Kernel.RAMP, "verilator", 32, marks=pytest.mark.slow),
], ids=lambda v: getattr(v, "value", str(v)))
def test_stepped_schedule_with_input_gaps_and_result_stalls_matches_golden(kernel, simulator, lanes, build_root):
    """Through cocotb: events with random gaps (the look-ahead at a step's last event waits
    for them) and results held back (the core waits in DONE, then drops the rest)."""
    model, times = cases.random_case(lanes + 60, kernel, batch=8)
    stepped = model.with_schedule("stepped")
    result = check(stepped, times, lanes, build_root, simulator=simulator)
    assert result["cycles"].tolist() == simulate(stepped, times).cycles(lanes).tolist()


@pytest.mark.slow
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: k.value)
def test_random_networks_match_golden_in_verilator(kernel, build_root):
    model, times = cases.random_case(21, kernel, batch=12)
    check(model, times, 4, build_root, simulator="verilator")


@pytest.fixture(scope="module")
def digits():
    model = load_model(shipped_model_path("digits"))
    x, y = load_dataset("digits").split("test")
    return model, model.encoding.encode(x[:200], model.params.time_steps), y[:200]


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["verilator"])  # through cocotb; natively over the whole split: test_native_rtl
def test_shipped_digits_model_matches_golden_on_200_test_images(simulator, digits, build_root):
    model, times, labels = digits
    result = check(model, times, 16, build_root, simulator=simulator)
    golden = simulate(model, times)
    assert result["decision"].tolist() == golden.decision.tolist()
    assert np.mean(result["decision"] == labels) > 0.9


@pytest.mark.parametrize("simulator", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_weight_reload_through_the_write_port_changes_results_as_golden_predicts(simulator, build_root):
    model, times = cases.random_case(8, Kernel.RAMP, batch=8)
    reloaded = cases.reshuffled(model)
    golden_old, golden_new = simulate(model, times), simulate(reloaded, times)
    assert (golden_old.decision != golden_new.decision).any(), "the reload must change some decision"
    layout = MemoryLayout(model.params.with_lanes(4))
    writes = [(target, address, word) for target in Target
              for address, word in enumerate(layout.words(reloaded, target))]
    result = check(model, times, 4, build_root, writes=writes, golden_model=reloaded, simulator=simulator)
    assert result["decision"].tolist() == golden_new.decision.tolist()


def test_a_difference_from_golden_names_the_sample_layer_neuron_and_step(build_root):
    model, times = cases.random_case(3, Kernel.STEP)
    layers = list(model.layers)
    first = layers[0]
    layers[0] = type(first)(first.weights, first.thresholds - 1, first.initial_potentials)
    wrong = type(model)(model.params, tuple(layers), model.encoding)
    with pytest.raises(RTLSimulationError, match=r"^sample \d+: layer 0, neuron \d+, spike time \(-1 = never\) "
                                                 r"is -?\d+ on the device, -?\d+ in the golden model$"):
        check(model, times, 4, build_root, golden_model=wrong)


def test_waveform_of_a_run_is_written(build_root, tmp_path):
    model, times = cases.random_case(4, Kernel.STEP, batch=1)
    waves = tmp_path / "one.fst"
    check(model, times, 4, build_root, waves=waves)
    assert waves.stat().st_size > 0


def test_eval_with_the_rtl_backend_reports_full_agreement(capsys):
    from firstspike.sw.cli import main
    assert main(["eval", "--backend", "rtl", "--limit", "30", "--lanes", "8", "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agreement"] == 1.0 and report["samples"] == 30 and report["backend"] == "rtl"


@pytest.mark.parametrize("simulator", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_run_with_the_rtl_backend_writes_results_agreement_and_a_waveform(tmp_path, capsys, digits, simulator):
    from firstspike.sw.cli import main
    model, times, _ = digits
    np.save(tmp_path / "in.npy", times[:5])
    status = main(["run", "--backend", "rtl", "--simulator", simulator, "--lanes", "4", "--quiet",
                   "--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "out.npz"),
                   "--waves", str(tmp_path / f"one{WAVE_FORMATS[simulator]}"), "--waves-sample", "2"])
    assert status == 0, capsys.readouterr().err
    with np.load(tmp_path / "out.npz") as out:
        golden = simulate(model.with_schedule("stepped"), times[:5])  # the default schedule
        assert out["class"].tolist() == golden.decision.tolist()
        assert out["cycles"].tolist() == golden.cycles(4).tolist()
        assert out["agrees_with_golden"].all()
        assert "output_potentials" not in out.files
    waves = (tmp_path / f"one{WAVE_FORMATS[simulator]}").read_bytes()
    # VCD is text; an FST file opens with its header block: type 0, then the block's length, 329
    assert waves.startswith(b"$" if simulator == "verilator" else b"\x00" + (329).to_bytes(8, "big"))
    assert "5/5 samples" in capsys.readouterr().out


def test_rtl_options_without_the_rtl_backend_are_refused(tmp_path, capsys):
    from firstspike.sw.cli import main
    status = main(["eval", "--simulator", "verilator", "--limit", "3"])
    assert status == 2
    assert "--simulator: only with --backend rtl" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_rtl_prints_simulation_speed(capsys):
    from firstspike.sw.cli import main
    assert main(["bench-rtl", "--samples", "4", "--big-samples", "0", "--simulators", "icarus", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    native, cocotb = figures["runs"]
    assert (native["harness"], cocotb["harness"]) == ("native", "cocotb")
    for run in (native, cocotb):
        assert run["simulator"] == "icarus" and run["samples"] == 4
        assert run["inferences_per_second"] > 0 and run["cycles_per_second"] > run["inferences_per_second"]
    assert native["core_cycles_mean"] == cocotb["core_cycles_mean"]
