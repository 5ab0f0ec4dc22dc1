"""The unchanged driver against the RTL of the core behind its UART, through the cocotb
socket bridge (the simulated board)."""

from __future__ import annotations

import cases
import numpy as np
import pytest

from firstspike.hw.generate import generate_link
from firstspike.hw.lint import lint
from firstspike.hw.sim.board import SimulatedBoard
from firstspike.sw import Kernel, simulate
from firstspike.sw.datasets import load_dataset
from firstspike.sw.driver import Accelerator
from firstspike.sw.model import load_model
from firstspike.sw.models import shipped_model_path


def test_driver_infers_through_the_simulated_board_as_the_golden_model(tmp_path):
    model = load_model(shipped_model_path("digits"))
    x, _ = load_dataset("digits").split("test")
    times = model.encoding.encode(x[:12], model.params.time_steps)
    with SimulatedBoard(model, 16, build_root=tmp_path) as board, Accelerator.open(board.url, timeout=10) as device:
        device.attach(model)
        results = [device.infer(times[0])] + device.infer_batch(times[1:])
    golden = simulate(model, times)
    assert [r.decision for r in results] == golden.decision.tolist()
    assert [r.cycles for r in results] == golden.cycles(16).tolist()
    assert np.array_equal(np.stack([r.output_times for r in results]), golden.spike_times[-1])


def test_a_model_loaded_through_the_link_changes_decisions_as_golden_predicts(tmp_path):
    model, times = cases.random_case(8, Kernel.RAMP, batch=8)
    other = cases.reshuffled(model)
    assert (simulate(model, times).decision != simulate(other, times).decision).any()
    with SimulatedBoard(model, 4, build_root=tmp_path) as board, Accelerator.open(board.url, timeout=10) as device:
        device.attach(model)
        before = device.infer_batch(times)
        device.load_model(other)  # written, read back and committed over the UART
        after = device.infer_batch(times)
    assert [r.decision for r in before] == simulate(model, times).decision.tolist()
    assert [r.decision for r in after] == simulate(other, times).decision.tolist()
    assert [r.cycles for r in after] == simulate(other, times).cycles(4).tolist()


def test_the_link_verilog_lints_clean(tmp_path):
    model = load_model(shipped_model_path("digits"))
    verilog, _ = generate_link(model, 8, tmp_path, clock_hz=12_000_000, baud=115_200)
    lint(verilog)


def test_infer_command_through_the_simulated_board_agrees_with_golden(capsys):
    import json

    from firstspike.sw.cli import main
    status = main(["infer", "--device", "sim", "--limit", "8", "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["agreement"] == 1.0 and out["samples"] == 8


@pytest.mark.slow
def test_a_noisy_wire_to_the_simulated_board_is_survived_with_correct_results(tmp_path):
    from wire import DamagingProxy
    model = load_model(shipped_model_path("digits"))
    x, _ = load_dataset("digits").split("test")
    times = model.encoding.encode(x[:25], model.params.time_steps)
    with SimulatedBoard(model, 16, build_root=tmp_path) as board, \
            DamagingProxy(board.url, seed=5, mean_gap=300) as wire, \
            Accelerator.open(wire.url, timeout=1.0, retries=8) as device:
        device.attach(model)
        results = [device.infer(t) for t in times[:10]] + device.infer_batch(times[10:])
    golden = simulate(model, times)
    assert wire.damaged > 2 and device.retried > 0
    assert [r.decision for r in results] == golden.decision.tolist()
    assert [r.cycles for r in results] == golden.cycles(16).tolist()
