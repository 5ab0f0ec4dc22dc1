"""How fast the RTL simulators run the core: inferences/s and simulated cycles/s, for the
two harnesses: cocotb (Python on every clock edge, timed inside the test around the
inference loop) and the native Verilog testbench (timed around the whole simulator run,
start-up included). Builds are excluded (reported separately).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from firstspike.sw.compare import DeviceResults, compare
from firstspike.sw.golden import simulate
from firstspike.sw.model import Model

from .native import run_native
from .runner import RTLSimulationError, run_rtl

__all__ = ["rtl_speed", "HARNESSES"]

HARNESSES = ("native", "cocotb")


def rtl_speed(model: Model, spike_times: np.ndarray, *, lanes: int, simulator: str, harness: str = "cocotb",
              build_root: str | Path | None = None) -> dict:
    """Run ``spike_times`` through the RTL once to build, once to time; check against golden."""
    run = run_native if harness == "native" else run_rtl
    start = time.perf_counter()
    run(model, spike_times[:1], lanes=lanes, simulator=simulator, build_root=build_root)
    build_and_first = time.perf_counter() - start
    start = time.perf_counter()
    if harness == "native":
        result = run_native(model, spike_times, lanes=lanes, simulator=simulator, build_root=build_root)
        total = seconds = time.perf_counter() - start
        problem = compare(simulate(model, spike_times), DeviceResults.from_arrays(result, model.params.n_layers),
                          lanes)
        if problem is not None:
            raise RTLSimulationError(f"the {simulator} RTL differs from the golden model: {problem}")
        simulated = int(result["measured_cycles"].sum())
    else:  # timed inside the test, around the inference loop
        result = run_rtl(model, spike_times, lanes=lanes, simulator=simulator, build_root=build_root, check=True)
        total, seconds = time.perf_counter() - start, float(result["wall_seconds"])
        simulated = int(result["simulated_cycles"])
    return {
        "simulator": simulator,
        "harness": harness,
        "network": "-".join(map(str, model.params.layer_sizes)),
        "lanes": lanes,
        "samples": len(spike_times),
        "core_cycles_mean": float(result["cycles"].mean()),
        "simulated_cycles": simulated,
        "inferences_per_second": len(spike_times) / seconds,
        "cycles_per_second": simulated / seconds,
        "seconds_in_loop": seconds,
        "seconds_with_startup": total,
        "seconds_first_build_and_run": build_and_first,
    }
