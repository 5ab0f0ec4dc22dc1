"""Inference through a device (a board, the simulated board, or the emulator) with the
figures ``firstspike infer`` prints: accuracy, agreement with the golden model, speed and
bytes on the wire."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from .compare import DeviceResults, agreement
from .driver import Accelerator
from .golden import GoldenResult, simulate
from .link.messages import Result
from .model import Model

__all__ = ["DeviceRun", "run_on_device"]


@dataclass(frozen=True)
class DeviceRun:
    samples: int
    accuracy: float
    agreement: float           # fraction of samples equal to golden in all the device reports (sw/compare.py)
    first_difference: int | None
    inferences_per_second: float
    bytes_per_inference: float  # both directions, framing included
    cycles_mean: float
    clock_hz: int
    baud: int
    compute_bound_per_second: float  # at the device's clock, one inference after another
    link_bound_per_second: float     # at its baud rate, 10 bits per byte
    retried: int

    def as_dict(self) -> dict:
        return asdict(self)


def run_on_device(device: Accelerator, model: Model, spike_times: np.ndarray, labels: np.ndarray,
                  *, progress=None, window: int = 2) -> tuple[DeviceRun, list[Result], GoldenResult]:
    sent, received = device.bytes_sent, device.bytes_received
    start = time.perf_counter()
    results = device.infer_batch(spike_times, window=window, progress=progress)
    seconds = time.perf_counter() - start
    wire = (device.bytes_sent - sent + device.bytes_received - received) / len(results)
    golden = simulate(model.with_schedule(device.params.schedule), spike_times)  # as the device runs it
    same = agreement(golden, DeviceResults.from_link(results), device.params.lanes)
    info = device.info()
    cycles = np.array([r.cycles for r in results], np.float64)
    run = DeviceRun(
        samples=len(results),
        accuracy=float(np.mean([r.decision for r in results] == labels)),
        agreement=float(same.mean()),
        first_difference=None if same.all() else int(np.flatnonzero(~same)[0]),
        inferences_per_second=len(results) / seconds,
        bytes_per_inference=wire,
        cycles_mean=float(cycles.mean()),
        clock_hz=info.clock_hz,
        baud=info.baud,
        compute_bound_per_second=info.clock_hz / float(cycles.mean()),
        link_bound_per_second=info.baud / (10 * wire),
        retried=device.retried,
    )
    return run, results, golden
