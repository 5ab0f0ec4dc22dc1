"""The unchanged driver against the RTL of the core behind its UART, through the cocotb
socket bridge (the simulated board)."""

from __future__ import annotations

import cases
import numpy as np
import pytest

from firstspike.hw.board import DEFAULT_BAUD
from firstspike.hw.build import core_clock
from firstspike.hw.generate import generate_link
from firstspike.hw.lint import lint
from firstspike.hw.sim.board import LineFaults, SimulatedBoard
from firstspike.sw import Kernel, simulate
from firstspike.sw.datasets import load_dataset
from firstspike.sw.driver import Accelerator
from firstspike.sw.link.framing import Frame, encode_frame
from firstspike.sw.link.messages import NACK, Command
from firstspike.sw.model import load_model
from firstspike.sw.models import shipped_model_path


@pytest.mark.parametrize("simulator", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_driver_infers_through_the_simulated_board_as_the_golden_model(simulator, tmp_path):
    model = load_model(shipped_model_path("digits"))
    x, _ = load_dataset("digits").split("test")
    times = model.encoding.encode(x[:12], model.params.time_steps)
    with SimulatedBoard(model, 16, build_root=tmp_path, simulator=simulator) as board, \
            Accelerator.open(board.url, timeout=10) as device:
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


def digits_times(count: int):
    model = load_model(shipped_model_path("digits"))
    x, _ = load_dataset("digits").split("test")
    return model, model.encoding.encode(x[:count], model.params.time_steps)


@pytest.mark.slow
def test_every_malformed_request_gets_its_nack_from_the_simulated_board_and_the_link_recovers(tmp_path):
    """The table tests/test_driver.py replays against the emulator, through the RTL's UART."""
    from wire import MALFORMED_REQUESTS, connect, exchange
    model, _ = digits_times(1)
    with SimulatedBoard(model, 16, build_root=tmp_path) as board, connect(board.url) as connection:
        for number, (request, code) in enumerate(MALFORMED_REQUESTS):
            echo = Frame(Command.ECHO, number, b"ok")
            # (a 4,000-byte request through the simulated UART takes tens of seconds on a loaded machine)
            replies = exchange(connection, request + encode_frame(echo), replies=2, timeout=120)
            assert len(replies) == 2, f"{code.name}: {replies}"
            nack, answer = replies
            assert (nack.type, nack.payload[0], nack.sequence) == (NACK, code, 7), f"{code.name}: {nack}"
            assert answer == Frame(Command.ECHO | 0x80, number, b"ok"), code.name


#: 16 clock cycles a bit: a host UART off by 3 % is still sampled inside every bit (the
#: drift over a byte, 0.3 bit, plus a cycle of start-bit uncertainty stays under half a bit).
FAULT_CLOCK_HZ, FAULT_BAUD = 96_000_000, 6_000_000


@pytest.mark.slow
@pytest.mark.parametrize("baud_error", [0.03, -0.03], ids=["host-3pct-slow", "host-3pct-fast"])
def test_a_host_clock_three_percent_off_needs_no_retry(baud_error, tmp_path):
    model, times = digits_times(10)
    with SimulatedBoard(model, 16, build_root=tmp_path, clock_hz=FAULT_CLOCK_HZ, baud=FAULT_BAUD,
                        line=LineFaults(baud_error=baud_error)) as board, \
            Accelerator.open(board.url, timeout=5, retries=0) as device:
        device.attach(model)
        results = device.infer_batch(times)
    golden = simulate(model, times)
    assert [r.decision for r in results] == golden.decision.tolist()
    assert np.array_equal(np.stack([r.output_times for r in results]), golden.spike_times[-1])
    assert device.retried == 0


@pytest.mark.slow
@pytest.mark.parametrize("baud_error", [0.02, -0.02], ids=["host-2pct-slow", "host-2pct-fast"])
@pytest.mark.parametrize("board", ["ulx3s", "icebreaker"])
def test_the_boards_link_at_3_mbaud_survives_a_two_percent_clock_mismatch_and_noise(board, baud_error, tmp_path):
    """The board builds' defaults: 3,000,000 baud at the core clock the PLL makes (40 MHz on
    the ULX3S: 13 1/3 cycles a bit; 19.875 MHz on the iCEBreaker: 6 5/8), the host's UART
    2 % off either way, flipped bits, glitches in bytes and on the idle line."""
    clock_hz, _ = core_clock(board)
    assert clock_hz % DEFAULT_BAUD != 0  # the fractional bit time is what is tested
    model, times = digits_times(12)
    line = LineFaults(baud_error=baud_error, flip=0.01, glitch=0.02, idle_glitch=0.02, seed=5)
    with SimulatedBoard(model, 4, build_root=tmp_path, clock_hz=clock_hz, baud=DEFAULT_BAUD, line=line) as board_sim, \
            Accelerator.open(board_sim.url, timeout=2.0, retries=10) as device:
        device.attach(model)
        results = device.infer_batch(times)
    golden = simulate(model, times)
    assert [r.decision for r in results] == golden.decision.tolist()
    assert np.array_equal(np.stack([r.output_times for r in results]), golden.spike_times[-1])
    assert sum(board_sim.line_report.values()) > 0, board_sim.line_report
    assert device.retried <= board_sim.line_report.get("flip", 0) + board_sim.line_report.get("glitch", 0)


@pytest.mark.slow
def test_noise_glitches_and_missing_stop_bits_at_the_pins_are_survived_with_correct_results(tmp_path):
    """Faults on the rx pin itself, with the host 3 % off: flipped data bits (CRC NACK),
    missing stop bits (the UART's framing error ends the frame: NACK FRAMING), short glitches
    in bytes and on the idle line. Every result still equals the golden model's."""
    model, times = digits_times(16)
    line = LineFaults(baud_error=0.03, flip=0.01, stop=0.01, glitch=0.02, idle_glitch=0.02, seed=11)
    with SimulatedBoard(model, 16, build_root=tmp_path, clock_hz=FAULT_CLOCK_HZ, baud=FAULT_BAUD,
                        line=line) as board, \
            Accelerator.open(board.url, timeout=2.0, retries=10) as device:
        device.attach(model)
        results = [device.infer(t) for t in times[:8]] + device.infer_batch(times[8:])
    golden = simulate(model, times)
    assert [r.decision for r in results] == golden.decision.tolist()
    assert [r.cycles for r in results] == golden.cycles(16).tolist()
    assert np.array_equal(np.stack([r.output_times for r in results]), golden.spike_times[-1])
    faults = board.line_report
    assert all(faults.get(kind, 0) > 0 for kind in ("flip", "stop", "glitch", "idle_glitch")), faults
    assert device.retried > 0
    # the UART's framing errors reached the frame receiver, which NACKed their frames
    assert device.retry_causes["NACK FRAMING"] > 0, device.retry_causes


def test_a_conv_network_infers_and_reloads_through_the_simulated_board_as_golden_predicts(tmp_path):
    """The driver, unchanged, against a conv core: results, then new conv weights, thresholds
    and initial potentials written, read back and committed over the UART."""
    model, times = cases.random_conv_case(4, Kernel.STEP, "pooled", batch=8)
    other = cases.reshuffled(model)
    assert (simulate(model, times).decision != simulate(other, times).decision).any()
    with SimulatedBoard(model, 3, build_root=tmp_path) as board, Accelerator.open(board.url, timeout=10) as device:
        device.attach(model)
        before = device.infer_batch(times)
        device.load_model(other)
        after = device.infer_batch(times)
    for network, results in ((model, before), (other, after)):
        golden = simulate(network, times)
        assert [r.decision for r in results] == golden.decision.tolist()
        assert [r.cycles for r in results] == golden.cycles(3).tolist()
        assert [list(r.layer_spikes) for r in results] == golden.spike_counts[:, 1:].tolist()
