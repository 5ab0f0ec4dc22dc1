"""Run the core in Amaranth's own simulator: quick checks of the gateware against the
golden model without a Verilog simulator (cocotb covers the generated Verilog)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from amaranth.sim import Simulator

from firstspike.hw.core import TTFSCore
from firstspike.sw import NO_SPIKE
from firstspike.sw.model import Model

Coroutine = Callable[..., object]


class Bench:
    """One design in Amaranth's simulator with its clock: the set-up every gateware unit test
    shares (as hw/sim/testbench.py's ``CoreTB`` is for cocotb).

    ``run`` takes the testbenches (the run ends when they return), background testbenches
    and processes (monitors that never return), and optionally a time limit in cycles.
    A background testbench must not be left waiting in ``until()`` when the run ends
    (Amaranth cannot close it cleanly): monitors use ``async for ... in ctx.tick()``.
    """

    def __init__(self, dut, *, period: float = 1e-8):
        self.dut, self.period = dut, period

    def run(self, testbenches: Iterable[Coroutine] = (), *, background: Iterable[Coroutine] = (),
            processes: Iterable[Coroutine] = (), cycles: int | None = None) -> None:
        sim = Simulator(self.dut)
        sim.add_clock(self.period)
        for bench in testbenches:
            sim.add_testbench(bench)
        for bench in background:
            sim.add_testbench(bench, background=True)
        for process in processes:
            sim.add_process(process)
        if cycles is None:
            sim.run()
        else:
            sim.run_until(self.period * cycles)


async def put(ctx, port, payload) -> None:
    """One beat on an input stream: hold ``payload`` valid until the design takes it."""
    ctx.set(port.payload, payload)
    ctx.set(port.valid, 1)
    await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def take(ctx, port):
    """The next beat of an output stream."""
    ctx.set(port.ready, 1)
    *_, payload = await ctx.tick().sample(port.payload).until(port.valid)
    ctx.set(port.ready, 0)
    return payload


def sorted_events(times: np.ndarray) -> list[tuple[int, int]]:
    """(index, step) of one sample's spikes in (step, index) order."""
    index = np.flatnonzero(times != NO_SPIKE)
    order = np.lexsort((index, times[index]))
    return [(int(index[k]), int(times[index[k]])) for k in order]


def run_core(model: Model, lanes: int, spike_times: np.ndarray, *, writes=(), gaps: bool = False,
             seed: int = 0) -> dict:
    """All samples through one core; ``writes`` are (target, address, data) loaded first."""
    params = model.params.with_lanes(lanes)
    dut = TTFSCore(params, model)
    rng = np.random.default_rng(seed)
    out = {"decision": [], "fired": [], "cycles": [], "error": [], "input_spikes": [], "layer_spikes": [],
           "output_times": [], "elapsed": [], "trace": []}
    done = {"count": 0}

    async def feed(ctx):
        for target, address, data in writes:
            await put(ctx, dut.write, {"target": int(target), "address": address, "data": data})
        for sample in spike_times:
            beats = [{"index": i, "step": s, "end": 0} for i, s in sorted_events(sample)]
            beats.append({"index": 0, "step": 0, "end": 1})
            for beat in beats:
                while gaps and rng.random() < 0.3:
                    await ctx.tick()
                await put(ctx, dut.events, beat)

    async def collect(ctx):
        ctx.set(dut.results.ready, 1)
        start = None
        while done["count"] < len(spike_times):
            busy, valid, result = (await ctx.tick().sample(dut.busy, dut.results.valid, dut.results.payload))[2:]
            if busy and start is None:
                start, elapsed = True, 0
            if start is not None:
                elapsed += 1
            if valid:
                out["decision"].append(result.decision)
                out["fired"].append(result.fired)
                out["cycles"].append(result.cycles)
                out["error"].append(result.error)
                out["input_spikes"].append(result.input_spikes)
                out["layer_spikes"].append([result.layer_spikes[k] for k in range(params.n_layers)])
                out["output_times"].append([result.output_times[j] if (result.output_fired >> j) & 1 else NO_SPIKE
                                            for j in range(params.n_outputs)])
                out["elapsed"].append(elapsed)
                start = None
                done["count"] += 1

    async def monitor(ctx):
        async for _, _, valid, trace in ctx.tick().sample(dut.trace.valid, dut.trace.payload):
            if valid:
                for lane in range(lanes):
                    if (trace.fire >> lane) & 1:
                        out["trace"].append((done["count"], trace.layer, trace.fold * lanes + lane, trace.times[lane]))

    Bench(dut).run([feed, collect], background=[monitor])
    return {k: np.array(v) if k != "trace" else v for k, v in out.items()}


def spike_times_from_trace(trace, params, batch: int) -> list[np.ndarray]:
    times = [np.full((batch, n), NO_SPIKE, np.int64) for n in params.layer_sizes[1:]]
    for sample, layer, neuron, step in trace:
        assert times[layer][sample, neuron] == NO_SPIKE, f"sample {sample} layer {layer} neuron {neuron} fired twice"
        times[layer][sample, neuron] = step
    return times
