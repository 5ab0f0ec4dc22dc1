"""The host driver against the protocol emulator over a real TCP socket (pyserial
``socket://``): results, model loading and checks, NACKs, damaged wires, silence."""

from __future__ import annotations

import socket
import threading
import time

import cases
import numpy as np
import pytest
from wire import MALFORMED_REQUESTS, DamagingProxy, connect, exchange

from firstspike.sw import Kernel, load_model, simulate
from firstspike.sw.datasets import load_dataset
from firstspike.sw.driver import Accelerator, DeviceRefused, LinkError, LinkTimeout, ModelMismatch
from firstspike.sw.emulator import DeviceEmulator, serve
from firstspike.sw.link.framing import Frame, encode_frame
from firstspike.sw.link.messages import NACK, Command, Nack, Result
from firstspike.sw.link.spikecode import encode_spikes
from firstspike.sw.models import shipped_model_path


@pytest.fixture(scope="module")
def digits():
    model = load_model(shipped_model_path("digits"))
    x, _ = load_dataset("digits").split("test")
    return model, model.encoding.encode(x[:60], model.params.time_steps)


def assert_results_equal_golden(results, golden, lanes):
    assert [r.decision for r in results] == golden.decision.tolist()
    assert [r.fired for r in results] == golden.fired.tolist()
    assert [r.cycles for r in results] == golden.cycles(lanes).tolist()
    assert np.array_equal(np.stack([r.output_times for r in results]), golden.spike_times[-1])


def test_attached_model_infers_as_the_golden_model(digits):
    model, times = digits
    with serve(model, 16) as server, Accelerator.open(server.url) as accelerator:
        assert accelerator.info().model_sha256.hex() == model.digest()
        accelerator.attach(model)
        assert_results_equal_golden([accelerator.infer(t) for t in times[:10]], simulate(model, times[:10]), 16)
        assert_results_equal_golden(accelerator.infer_batch(times), simulate(model, times), 16)


def test_loading_another_model_changes_decisions_as_golden_predicts(digits):
    model, times = digits
    rng = np.random.default_rng(5)
    other = type(model)(model.params, tuple(
        type(layer)(rng.permutation(layer.weights), layer.thresholds, layer.initial_potentials)
        for layer in model.layers), model.encoding)
    with serve(model, 8) as server, Accelerator.open(server.url) as accelerator:
        accelerator.load_model(other)
        assert accelerator.info().model_sha256.hex() == other.digest()
        results = accelerator.infer_batch(times)
    assert_results_equal_golden(results, simulate(other, times), 8)
    assert [r.decision for r in results] != simulate(model, times).decision.tolist()


def test_the_driver_refuses_to_infer_without_the_right_model(digits):
    model, times = digits
    with serve(model, 4) as server, Accelerator.open(server.url) as accelerator:
        with pytest.raises(ModelMismatch, match="no model"):
            accelerator.infer(times[0])
        other_model, _ = cases.random_case(1, Kernel.STEP)
        with pytest.raises(ModelMismatch, match="does not fit"):
            accelerator.attach(other_model)
        changed = type(model)(model.params, tuple(
            type(layer)(layer.weights, layer.thresholds + 1, layer.initial_potentials) for layer in model.layers),
            model.encoding)
        with pytest.raises(ModelMismatch, match="load_model"):
            accelerator.attach(changed)


def test_bad_input_is_refused_before_anything_is_sent(digits):
    model, times = digits
    with serve(model, 4) as server, Accelerator.open(server.url) as accelerator:
        accelerator.attach(model)
        sent = accelerator.bytes_sent
        with pytest.raises(ValueError, match="spike_times"):
            accelerator.infer(np.full(65, 1))
        with pytest.raises(ValueError, match="spike_times"):
            accelerator.infer(np.full(64, 16))
        assert accelerator.bytes_sent == sent


@pytest.mark.parametrize("request_bytes, code", MALFORMED_REQUESTS,
                         ids=lambda v: v.name if isinstance(v, Nack) else "")
def test_each_malformed_frame_gets_its_nack_and_the_link_recovers(request_bytes, code, digits):
    model, _ = digits
    with serve(model, 4) as server, connect(server.url) as connection:
        nack, echo = exchange(connection, request_bytes + encode_frame(Frame(Command.ECHO, 8, b"ok")), replies=2)
        assert nack.type == NACK and nack.payload[0] == code and nack.sequence == 7
        assert echo == Frame(Command.ECHO | 0x80, 8, b"ok")


def test_bit_flips_and_dropped_bytes_are_survived_with_correct_results(digits):
    model, times = digits
    with serve(model, 16, idle_timeout=0.05) as server, DamagingProxy(server.url, seed=3, mean_gap=400) as wire, \
            Accelerator.open(wire.url, timeout=0.3, retries=8) as accelerator:
        accelerator.attach(model)
        results = [accelerator.infer(t) for t in times[:30]] + accelerator.infer_batch(times[30:])
    assert wire.damaged > 3 and accelerator.retried > 0
    assert_results_equal_golden(results, simulate(model, times), 16)


def test_a_silent_device_raises_a_timeout_in_bounded_time():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    start = time.monotonic()
    with pytest.raises(LinkTimeout, match="INFO: no reply within 0.4 s after 2 attempts"):  # 0.2 s, then 0.4
        Accelerator.open(f"socket://127.0.0.1:{port}", timeout=0.2, retries=1)
    assert time.monotonic() - start < 2
    listener.close()


def answer_late(server, seconds: float) -> None:
    """Make ``server``'s emulator send each reply ``seconds`` after its request came."""
    receive = server.device.receive

    def slowly(data: bytes) -> bytes:
        reply = receive(data)
        if reply:
            time.sleep(seconds)
        return reply

    server.device.receive = slowly


def test_a_device_slower_than_the_timeout_is_heard_because_each_timeout_doubles_the_wait():
    """Each reply comes 0.25 s after its request, the driver is told 0.2 s: at a fixed wait
    every retry would time out too (the late replies queue up behind each other)."""
    model = load_model(shipped_model_path("digits"))
    x, _ = load_dataset("digits").split("test")
    times = model.encoding.encode(x[:4], model.params.time_steps)
    with serve(model, 16) as server:
        answer_late(server, 0.25)
        with Accelerator.open(server.url, timeout=0.2, retries=3) as accelerator:
            accelerator.attach(model)
            results = [accelerator.infer(t) for t in times[:2]] + accelerator.infer_batch(times[2:])
    assert accelerator.retry_causes["timeout"] > 0
    assert [r.decision for r in results] == simulate(model, times).decision.tolist()


def test_a_late_reply_to_an_earlier_copy_is_taken_and_the_wait_grows_to_the_devices_pace():
    """Replies come 0.5 s after their requests and the driver is told 0.2 s with one retry:
    the second copy's own reply would come after its wait (0.4 s), the first copy's comes
    within it and is the answer; later requests are waited for at the pace measured."""
    model = load_model(shipped_model_path("digits"))
    x, _ = load_dataset("digits").split("test")
    times = model.encoding.encode(x[:6], model.params.time_steps)
    with serve(model, 16) as server:
        with Accelerator.open(server.url, timeout=0.2, retries=1) as accelerator:
            accelerator.attach(model)
            answer_late(server, 0.5)
            results = [accelerator.infer(t) for t in times[:3]] + accelerator.infer_batch(times[3:])
    assert accelerator.retry_causes["timeout"] > 0
    assert [r.decision for r in results] == simulate(model, times).decision.tolist()


def test_no_device_at_the_url_is_a_link_error():
    with pytest.raises(LinkError, match="cannot open socket://127.0.0.1:1"):
        Accelerator.open("socket://127.0.0.1:1")


def test_a_refused_command_names_the_command_and_the_code(digits):
    model, _ = digits
    with serve(model, 4) as server, Accelerator.open(server.url) as accelerator:
        with pytest.raises(DeviceRefused, match="the device refused READ: BAD_ADDRESS"):
            accelerator.read_memory(0, 10_000, 1)


def test_read_result_repeats_the_last_result_with_the_sequence_it_answers(digits):
    model, times = digits
    with serve(model, 4) as server:
        with Accelerator.open(server.url) as accelerator:
            accelerator.attach(model)
            result = accelerator.infer(times[3])
        with connect(server.url) as connection:
            (infer_reply,) = exchange(connection, encode_frame(Frame(Command.INFER, 41, encode_spikes(times[5], 16))), 1)
        with connect(server.url) as connection:
            (reply,) = exchange(connection, encode_frame(Frame(Command.READ_RESULT, 42)), 1)
    assert reply.type == Command.READ_RESULT | 0x80 and reply.sequence == 42
    assert reply.payload[0] == 41 and reply.payload[1:] == infer_reply.payload
    assert Result.unpack(reply.payload[1:], model.params).decision == simulate(model, times[5:6]).decision[0]
    assert result.decision == simulate(model, times[3:4]).decision[0]


def test_infer_command_on_the_emulator_reports_agreement_bytes_and_a_png(tmp_path, capsys):
    import json

    from firstspike.sw.cli import main
    report = tmp_path / "report.png"
    status = main(["infer", "--device", "emulator", "--limit", "25", "--load", "--json", "--quiet",
                   "--report", str(report)])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["agreement"] == 1.0 and out["samples"] == 25
    assert 40 < out["bytes_per_inference"] < 200 and out["accuracy"] > 0.8
    assert report.read_bytes().startswith(b"\x89PNG")


def test_infer_command_names_an_unreachable_device(capsys):
    from firstspike.sw.cli import main
    assert main(["infer", "--device", "socket://127.0.0.1:1", "--limit", "2", "--quiet"]) == 2
    assert "cannot open socket://127.0.0.1:1" in capsys.readouterr().err


@pytest.mark.parametrize("what", ["output_time", "spike_count"])
def test_a_device_that_computes_differently_is_reported_as_disagreeing(what, monkeypatch, capsys):
    """The agreement check is not the golden model compared with itself: an emulator whose
    core is off by one step in an output spike time, or counts one hidden spike too many,
    fails ``infer``."""
    import json

    from firstspike.sw import emulator
    from firstspike.sw.cli import main

    real = emulator.simulate

    def off_by_one(model, times):
        golden = real(model, times)
        if what == "output_time":
            output = golden.spike_times[-1]
            output[(output >= 0) & (output < model.params.time_steps - 1)] += 1
        else:  # a hidden neuron that stayed silent fires at the last step
            hidden = golden.spike_times[0]
            hidden[:, np.argmin(hidden[0])] = model.params.time_steps - 1
        return golden

    monkeypatch.setattr(emulator, "simulate", off_by_one)
    status = main(["infer", "--device", "emulator", "--limit", "6", "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert status == 1 and out["agreement"] < 1.0


class SerialLine:
    """A serial port to an emulated device whose UART runs at ``device_baud``: the two
    understand each other within 3 %; further apart, each side sees garbage."""

    def __init__(self, device: DeviceEmulator, device_baud: int, baudrate: int):
        self.device, self.device_baud, self.baudrate = device, device_baud, baudrate
        self._inbox = bytearray()
        self._rng = np.random.default_rng(0)

    @property
    def in_waiting(self) -> int:
        return len(self._inbox)

    def write(self, data: bytes) -> int:
        if abs(self.baudrate / self.device_baud - 1) <= 0.03:
            self._inbox += self.device.receive(data) or b""
        else:
            self._inbox += self._rng.integers(0, 256, len(data) // 4, dtype=np.uint8).tobytes()
        return len(data)

    def read(self, size: int) -> bytes:
        out = bytes(self._inbox[:size])
        del self._inbox[:size]
        if not out:
            time.sleep(0.002)
        return out

    def reset_input_buffer(self) -> None:
        self._inbox.clear()

    def close(self) -> None:
        pass


def test_a_device_built_for_another_baud_rate_is_found_and_named(digits):
    model, _ = digits
    device = DeviceEmulator(model, 4, baud=115_200)
    line = SerialLine(device, 115_200, baudrate=3_000_000)
    with pytest.raises(LinkError, match=r"no reply at 3,000,000 baud, but the device answers at 115,200 baud: "
                                        r"open it at that rate \(--baud 115200\)"):
        Accelerator(line, timeout=0.3, retries=0, check_baud=True)
    assert line.baudrate == 3_000_000  # left at the rate it was opened at


def test_a_silent_line_at_every_rate_is_a_timeout_not_a_guess(digits):
    model, _ = digits
    line = SerialLine(DeviceEmulator(model, 4, baud=115_200), 10, baudrate=3_000_000)
    with pytest.raises(LinkTimeout, match="no reply"):
        Accelerator(line, timeout=0.2, retries=0, check_baud=True)


def test_info_that_disagrees_with_the_baud_and_clock_the_driver_was_told_is_noted(digits):
    model, times = digits
    device = DeviceEmulator(model, 4, clock_hz=20_000_000, baud=2_950_000)
    accelerator = Accelerator(SerialLine(device, 2_950_000, baudrate=3_000_000), timeout=0.5, check_baud=True,
                              clock_hz=25_000_000)
    assert accelerator.disagreements == [
        "the device says 2,950,000 baud; the port is at 3,000,000 (close enough to talk, not the same)",
        "the device says its core runs at 20 MHz, not the 25 MHz it was said to"]
    accelerator.attach(model)
    assert accelerator.infer(times[0]).decision == simulate(model, times[:1]).decision[0]
    agreeing = DeviceEmulator(model, 4, clock_hz=25_000_000, baud=3_000_000)
    assert Accelerator(SerialLine(agreeing, 3_000_000, baudrate=3_000_000), check_baud=True,
                       clock_hz=25_000_000).disagreements == []
