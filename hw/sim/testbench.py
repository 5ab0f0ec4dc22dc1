"""cocotb testbench for the generated core (runs inside Icarus or Verilator).

:func:`run_inferences` reads a stimulus file (``FIRSTSPIKE_STIMULUS``): the model file,
input spike times, optional memory writes, and the idle and back-pressure patterns. It
drives every sample through the core, records the result and every spike of every layer
from the trace port, writes them to ``FIRSTSPIKE_RESULTS``, and, if asked, compares them
with the golden model and fails on the first (sample, layer, neuron, step) that differs.

One :class:`CoreTB` owns the clock, the reset and one driver or monitor per port; all of
them act once per clock cycle: inputs change right after a rising edge, outputs are
sampled when they have settled (``ReadOnly``) just before the next one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from firstspike.sw import NO_SPIKE, load_model, simulate
from firstspike.sw.compare import DeviceResults, compare

from .fields import Fields

__all__ = ["CoreTB"]


def defined(handle, cycle: int) -> int:
    """A signal's value as an integer; X or Z bits in it are a design error worth naming."""
    value = handle.value
    if not value.is_resolvable:
        raise AssertionError(f"{handle._name} holds undefined bits at cycle {cycle}: {value}")
    return int(value)


class EventDriver:
    """Input spikes, one inference after another, with random idle cycles."""

    def __init__(self, dut, manifest: dict, rng: np.random.Generator, idle: float):
        self.dut, self.rng, self.idle = dut, rng, idle
        self.fields = Fields(manifest["ports"]["events"])
        self.beats: list[int] = []
        self.offered = False
        dut.events__valid.value = 0
        dut.events__payload.value = 0

    def queue_sample(self, spike_times: np.ndarray) -> None:
        index = np.flatnonzero(spike_times != NO_SPIKE)
        order = np.lexsort((index, spike_times[index]))
        for k in order:
            self.beats.append(self.fields.pack(index=int(index[k]), step=int(spike_times[index[k]])))
        self.beats.append(self.fields.pack(end=1))

    def after_edge(self, accepted: bool) -> None:
        if self.offered and accepted:
            self.beats.pop(0)
            self.offered = False
        if not self.offered:  # a beat once offered stays offered until taken (stream rule)
            self.offered = bool(self.beats) and not self.rng.random() < self.idle
        self.dut.events__valid.value = int(self.offered)
        if self.offered:
            self.dut.events__payload.value = self.beats[0]


class WriteDriver:
    """Run-time memory writes, before the first inference."""

    def __init__(self, dut, manifest: dict, writes: list[tuple[int, int, int]]):
        self.dut, self.writes = dut, list(writes)
        self.fields = Fields(manifest["ports"]["write"])
        dut.write__valid.value = 0
        dut.write__payload.value = 0

    def after_edge(self, accepted: bool) -> None:
        if accepted:
            self.writes.pop(0)
        self.dut.write__valid.value = int(bool(self.writes))
        if self.writes:
            target, address, data = self.writes[0]
            self.dut.write__payload.value = self.fields.pack(target=target, address=address, data=data)

    @property
    def done(self) -> bool:
        return not self.writes


class ResultMonitor:
    """Takes results with random back-pressure."""

    def __init__(self, dut, manifest: dict, rng: np.random.Generator, stall: float):
        self.dut, self.rng, self.stall = dut, rng, stall
        self.fields = Fields(manifest["ports"]["results"])
        self.results: list[int] = []
        dut.results__ready.value = 0

    def after_edge(self, valid: bool, payload: int, ready: bool) -> None:
        if valid and ready:
            self.results.append(payload)
        self.dut.results__ready.value = int(not self.rng.random() < self.stall)


class TraceMonitor:
    """Every spike of every layer, sample by sample."""

    def __init__(self, manifest: dict, lanes: int):
        self.fields = Fields(manifest["ports"]["trace"])
        self.lanes = lanes
        self.positions = manifest["params"]["positions"]
        self.spikes: list[tuple[int, int, int, int]] = []  # (sample, layer, neuron, step)

    def sample(self, valid: bool, payload: int, sample: int) -> None:
        if not valid:
            return
        layer = self.fields.get(payload, "layer")
        fold = self.fields.get(payload, "fold")
        fire = self.fields.get(payload, "fire")
        position, positions = self.fields.get(payload, "position"), self.positions[layer]
        for lane in range(self.lanes):
            if fire >> lane & 1:
                step = self.fields.get(payload, f"times[{lane}]")
                self.spikes.append((sample, layer, (fold * self.lanes + lane) * positions + position, step))


class CoreTB:
    """Clock, reset and the port drivers and monitors of one core."""

    def __init__(self, dut, manifest: dict, *, seed: int = 0, idle: float = 0.0, stall: float = 0.0,
                 writes=()):
        self.dut, self.manifest = dut, manifest
        self.params = manifest["params"]
        rng = np.random.default_rng(seed)
        self.events = EventDriver(dut, manifest, rng, idle)
        self.writes = WriteDriver(dut, manifest, writes)
        self.results = ResultMonitor(dut, manifest, rng, stall)
        self.trace = TraceMonitor(manifest, self.params["lanes"])
        dut.read__valid.value = 0  # host reads are not used here
        dut.read__payload.value = 0
        dut.read_data__ready.value = 1
        self.cycles = 0
        Clock(dut.clk, 10, unit="ns", impl="gpi").start()  # cocotb 2: the clock runs its own task

    async def reset(self) -> None:
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def run(self, spike_times: np.ndarray, timeout_cycles: int) -> None:
        """Load the writes, then all samples; returns when every result is in."""
        dut = self.dut
        sampled = {"events_ready": 0, "write_ready": 0, "results_valid": 0, "results_payload": 0,
                   "results_ready": 0}
        queued = False
        while len(self.results.results) < len(spike_times):
            await RisingEdge(dut.clk)
            self.cycles += 1
            if self.cycles > timeout_cycles:
                raise TimeoutError(f"no result after {timeout_cycles} cycles "
                                   f"({len(self.results.results)} of {len(spike_times)} done)")
            self.writes.after_edge(bool(int(dut.write__valid.value)) and bool(sampled["write_ready"]))
            if self.writes.done and not queued:
                for sample in spike_times:
                    self.events.queue_sample(sample)
                queued = True
            self.events.after_edge(bool(sampled["events_ready"]))
            self.results.after_edge(bool(sampled["results_valid"]), sampled["results_payload"],
                                    bool(sampled["results_ready"]))
            await ReadOnly()
            results_valid = int(dut.results__valid.value)
            sampled = {
                "events_ready": int(dut.events__ready.value), "write_ready": int(dut.write__ready.value),
                "results_valid": results_valid, "results_ready": int(dut.results__ready.value),
                # Payloads are read only when valid: otherwise they may hold X.
                "results_payload": defined(dut.results__payload, self.cycles) if results_valid else 0,
            }
            if int(dut.trace__valid.value):
                self.trace.sample(True, defined(dut.trace__payload, self.cycles), len(self.results.results))

    def decoded(self, batch: int) -> dict[str, np.ndarray]:
        """The results and the traced spike times as arrays."""
        fields = self.results.fields
        sizes = self.params["layer_sizes"]
        n_layers, n_out = len(sizes) - 1, sizes[-1]
        out = {
            "decision": [fields.get(r, "decision") for r in self.results.results],
            "decision_step": [fields.get(r, "decision_step") for r in self.results.results],
            "fired": [fields.get(r, "fired") for r in self.results.results],
            "error": [fields.get(r, "error") for r in self.results.results],
            "cycles": [fields.get(r, "cycles") for r in self.results.results],
            "input_spikes": [fields.get(r, "input_spikes") for r in self.results.results],
            "layer_spikes": [[fields.get(r, f"layer_spikes[{k}]") for k in range(n_layers)]
                             for r in self.results.results],
            "output_times": [[fields.get(r, f"output_times[{j}]") if fields.get(r, "output_fired") >> j & 1
                              else NO_SPIKE for j in range(n_out)] for r in self.results.results],
        }
        arrays = {k: np.array(v, np.int64) for k, v in out.items()}
        for k, n in enumerate(sizes[1:]):
            arrays[f"spike_times_{k}"] = np.full((batch, n), NO_SPIKE, np.int64)
        for sample, layer, neuron, step in self.trace.spikes:
            arrays[f"spike_times_{layer}"][sample, neuron] = step
        return arrays


@cocotb.test()
async def run_inferences(dut):
    stimulus = np.load(os.environ["FIRSTSPIKE_STIMULUS"], allow_pickle=False)
    manifest = json.loads(Path(str(stimulus["manifest"])).read_text())
    spike_times = stimulus["spike_times"]
    writes = [(int(t), int(a), int(d, 16)) for t, a, d in zip(stimulus["write_target"], stimulus["write_address"],
                                                            stimulus["write_data"])]
    tb = CoreTB(dut, manifest, seed=int(stimulus["seed"]), idle=float(stimulus["idle"]),
                stall=float(stimulus["stall"]), writes=writes)
    await tb.reset()
    sizes = manifest["params"]["layer_sizes"]
    budget = 1000 + 4 * len(writes) + len(spike_times) * (manifest["params"]["time_steps"] + sum(sizes)) * \
        (1 + max(sizes)) * 4
    start = time.perf_counter()
    await tb.run(spike_times, timeout_cycles=int(budget))
    seconds = time.perf_counter() - start
    results = tb.decoded(len(spike_times))
    np.savez(os.environ["FIRSTSPIKE_RESULTS"], **results, simulated_cycles=np.array(tb.cycles),
             wall_seconds=np.array(seconds))
    if int(stimulus["check"]):
        # (The model file leaves the core's schedule out; the manifest has it.)
        golden_model = load_model(str(stimulus["golden_model"])).with_schedule(manifest["params"]["schedule"])
        golden = simulate(golden_model, spike_times)
        problem = compare(golden, DeviceResults.from_arrays(results, golden.params.n_layers),
                          manifest["params"]["lanes"])
        if problem is not None:
            raise AssertionError(str(problem))
