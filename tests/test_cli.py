"""The firstspike command: results, files, and one clear line for every user mistake."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firstspike.sw import CoreParams, Kernel, load_model, simulate
from firstspike.sw.cli import main
from firstspike.sw.cycles import inference_overhead, layer_overhead
from firstspike.sw.models import shipped_model_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_eval_json_reports_shipped_digits_accuracy_above_95_percent(capsys):
    status, out, _ = run(capsys, "eval", "--dataset", "digits", "--backend", "golden", "--json", "--quiet")
    assert status == 0
    report = json.loads(out)
    assert report["accuracy"] >= 0.95 and report["samples"] == 450
    assert report["backend"] == "golden" and report["lanes"] == 16
    assert len(report["spikes_per_neuron"]) == 3
    assert report["cycles_mean"] > report["ideal_cycles_mean"] > 0
    assert report["synaptic_ops"] > 0


def test_eval_figures_match_the_golden_model(capsys):
    status, out, _ = run(capsys, "eval", "--limit", "40", "--lanes", "4", "--json", "--quiet")
    report = json.loads(out)
    model = load_model(shipped_model_path("digits")).with_schedule("stepped")  # the default
    from firstspike.sw.datasets import load_dataset
    data = load_dataset("digits")
    result = simulate(model, model.encoding.encode(data.test_x[:40], model.params.time_steps))
    assert report["correct"] == int(np.sum(result.decision == data.test_y[:40]))
    assert report["cycles_mean"] == pytest.approx(result.cycles(4).mean())
    assert report["synaptic_ops"] == pytest.approx(result.synaptic_ops.mean())


def test_eval_text_names_accuracy_spikes_ops_and_cycles(capsys):
    status, out, _ = run(capsys, "eval", "--limit", "20", "--quiet")
    assert status == 0
    for word in ("accuracy", "spikes", "syn. ops", "cycles     P=16"):
        assert word in out


def test_rtl_eval_without_a_simulator_takes_icarus_for_short_runs_and_verilator_for_long_ones():
    """Icarus starts at once; Verilator's build pays for itself from VERILATOR_FROM_CYCLES."""
    from firstspike.sw.datasets import load_dataset
    from firstspike.sw.evaluate import VERILATOR_FROM_CYCLES, choose_simulator

    digits = load_model(shipped_model_path("digits")).with_schedule("stepped")  # eval's default
    cnn = load_model(shipped_model_path("fashion-mnist-cnn")).with_schedule("stepped")
    times = digits.encoding.encode(load_dataset("digits").test_x, digits.params.time_steps)
    per_sample = simulate(digits, times[:64]).cycles(16).mean()  # its estimate: the first 64 samples
    fits = int(VERILATOR_FROM_CYCLES // per_sample)
    assert choose_simulator(digits, np.resize(times, (fits - 64, times.shape[1])), 16) == "icarus"
    assert choose_simulator(digits, np.resize(times, (fits + 64, times.shape[1])), 16) == "verilator"
    images = load_dataset("fashion-mnist").test_x[:200]
    assert choose_simulator(cnn, cnn.encoding.encode(images, cnn.params.time_steps), 16) == "verilator"


@pytest.mark.parametrize("schedule", ["stepped", "layered"])
def test_run_writes_classes_and_every_layers_spike_times(schedule, capsys, tmp_path):
    model = load_model(shipped_model_path("digits")).with_schedule(schedule)
    rng = np.random.default_rng(0)
    times = rng.integers(-1, model.params.time_steps, (25, 64))
    np.save(tmp_path / "in.npy", times)
    status, out, _ = run(capsys, "run", "--input", str(tmp_path / "in.npy"), "--output",
                         str(tmp_path / "out.npz"), "--lanes", "8", "--quiet", "--schedule", schedule)
    assert status == 0 and "25 samples" in out
    saved = np.load(tmp_path / "out.npz")
    expected = simulate(model, times)
    assert np.array_equal(saved["class"], expected.decision)
    assert np.array_equal(saved["fired"], expected.fired)
    assert np.array_equal(saved["output_spike_times"], expected.spike_times[-1])
    assert np.array_equal(saved["hidden_spike_times_0"], expected.spike_times[0])
    assert np.array_equal(saved["cycles"], expected.cycles(8))
    assert str(saved["model_sha256"]) == model.digest()


def test_train_writes_a_model_with_its_command(capsys, tmp_path):
    status, out, err = run(capsys, "train", "--hidden", "16", "--epochs", "2", "--limit", "200",
                           "--out", str(tmp_path / "m.npz"))
    assert status == 0 and "golden accuracy" in out
    # stderr is no terminal here: a line an epoch stands in for the bar
    assert [line.split(" done")[0] for line in err.splitlines() if line.startswith("train: epoch")] == \
        ["train: epoch 1/2", "train: epoch 2/2"]
    model = load_model(tmp_path / "m.npz")
    assert model.params.layer_sizes == (64, 16, 10)
    assert model.provenance["command"].startswith("firstspike train --hidden 16")
    from firstspike.sw.datasets import load_dataset
    data = load_dataset("digits")
    decided = simulate(model, model.encoding.encode(data.test_x, model.params.time_steps)).decision
    assert model.provenance["accuracy"] == float(np.mean(decided == data.test_y))
    assert "agrees with the golden model on 450/450 test images" in out
    assert model.provenance["exact_forward_agreement"] == 1.0
    assert (tmp_path / "m.npz.checkpoint.pt").exists()


def test_train_with_the_numpy_baseline_needs_no_torch(capsys, tmp_path):
    status, out, _ = run(capsys, "train", "--trainer", "numpy", "--hidden", "16", "--epochs", "2",
                         "--limit", "200", "--out", str(tmp_path / "m.npz"), "--quiet")
    assert status == 0 and "golden accuracy" in out
    assert load_model(tmp_path / "m.npz").provenance["method"] == "numpy-baseline"


def test_ablation_writes_a_row_per_method_a_table_and_a_plot(capsys, tmp_path, monkeypatch):
    status, out, _ = run(capsys, "ablation", "--hidden", "16", "--epochs", "1", "--limit", "300",
                         "--out", str(tmp_path), "--quiet", "--workers", "1")
    assert status == 0
    rows = json.loads((tmp_path / "ablation.json").read_text())
    assert [r["variant"] for r in rows] == ["recipe", "without spike penalty", "with ETTFS init",
                                            "without temporal-weighted decoding",
                                            "with float-to-spiking interpolation", "with temporal reversal"]
    for r in rows:  # measured on the 450 test images, with the cycles of P = 16
        assert r["accuracy"] * 450 == pytest.approx(round(r["accuracy"] * 450)) and r["lanes"] == 16
        assert r["train_samples"] == 300 and r["cycles"] > 0
    table = (tmp_path / "ablation.md").read_text().splitlines()
    assert sum(line.startswith("| ") for line in table) == len(rows) + 1
    assert (tmp_path / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Resumed: every variant of this recipe is kept, none trained again.
    from firstspike.sw.train import ablation
    monkeypatch.setattr(ablation, "train", lambda *a, **k: pytest.fail("a finished variant was trained again"))
    status, _, _ = run(capsys, "ablation", "--hidden", "16", "--epochs", "1", "--limit", "300",
                       "--out", str(tmp_path), "--quiet", "--workers", "1", "--resume")
    assert status == 0 and json.loads((tmp_path / "ablation.json").read_text()) == rows


def test_a_cnn_ablation_adds_the_pooling_row_whose_max_pooling_runs_in_the_golden_model_only(capsys, tmp_path):
    status, _, _ = run(capsys, "ablation", "--conv", "4:3", "--hidden", "--pool", "avg", "--epochs", "1",
                       "--limit", "200", "--out", str(tmp_path), "--quiet", "--workers", "1")
    assert status == 0
    rows = json.loads((tmp_path / "ablation.json").read_text())
    assert rows[-1]["variant"] == "with max pooling" and rows[-1]["source"] == "ETTFS 2024"
    assert rows[-1]["cycles"] is None and all(r["cycles"] > 0 for r in rows[:-1])
    assert rows[0]["architecture"] == "64-256-10"
    table = (tmp_path / "ablation.md").read_text()
    assert "| with max pooling | ETTFS 2024 |" in table and "golden model only" in table


def test_console_script_is_installed_and_reports_errors_without_traceback():
    beside = Path(sys.executable).parent / "firstspike"
    exe = str(beside) if beside.exists() else shutil.which("firstspike")
    assert exe, "the firstspike console script is not installed"
    done = subprocess.run([exe, "eval", "--lanes", "999"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "firstspike eval: argument --lanes: --lanes must be between 1 and 256, not 999"


def test_module_entry_point_runs_info(tmp_path):
    done = subprocess.run([sys.executable, "-m", "firstspike.sw.cli", "info"], capture_output=True, text=True)
    assert done.returncode == 0
    assert json.loads(done.stdout)["layer_sizes"] == [64, 128, 10]


def test_bench_prints_throughput_figures(capsys):
    status, out, _ = run(capsys, "bench", "--sizes", "30", "12", "4", "--time-steps", "8", "--batch", "64", "--json")
    figures = json.loads(out)
    assert status == 0 and figures["network"] == "30-12-4" and figures["batch"] == 64
    assert figures["inferences_per_second"] > 0 and "cores" in figures["machine"]


def test_bench_on_images_needs_matching_input_size(capsys):
    status, _, err = run(capsys, "bench", "--inputs", "digits", "--sizes", "784", "400", "10")
    assert status == 2 and "digits images have 64 pixels; --sizes must start with 64" in err


def test_cycles_sweep_prints_every_lane_count_within_ten_percent_of_ideal_plus_a_few_cycles_a_layer_and_plots(
        tmp_path, capsys):
    plot = tmp_path / "cycles.png"
    status, out, _ = run(capsys, "cycles", "--samples", "60", "--plot", str(plot), "--json")
    assert status == 0
    points = json.loads(out)
    assert [p["lanes"] for p in points] == [1, 4, 8, 16, 32, 64, 128, 256] * 4
    assert {p["network"] for p in points} == {"digits (64-128-10)", "784-400-10"}
    layered = {(p["network"], p["lanes"]): p for p in points if p["schedule"] == "layered"}
    for p in layered.values():  # the bound: 1.10 x the ideal plus the contract's fixed cycles (2 layers)
        params = CoreParams((64, 128, 10), 16, Kernel.RAMP).with_lanes(p["lanes"])  # the larger overhead
        fixed = 2 * layer_overhead(params) + inference_overhead(params)
        assert p["ratio"] >= 1.0 and p["cycles_mean"] <= 1.10 * p["ideal_mean"] + fixed, p
    # Stopping at the decision saves work wherever a layer takes more than one fold; where
    # every layer is one fold (digits at P >= 128) the stepped schedule's per-run registers
    # (docs/cycles.md) cost more than it saves: at most a fifth more.
    folds = {"digits (64-128-10)": (128, 10), "784-400-10": (400, 10)}
    for p in (p for p in points if p["schedule"] == "stepped"):
        cheaper = 1.0 if any(-(-n // p["lanes"]) > 1 for n in folds[p["network"]]) else 1.20
        assert p["ratio"] >= 1.0 and p["cycles_mean"] < cheaper * layered[(p["network"], p["lanes"])]["cycles_mean"], p
    means = [p["cycles_mean"] for p in points[:6]]
    assert means == sorted(means, reverse=True)
    assert plot.read_bytes().startswith(b"\x89PNG")
