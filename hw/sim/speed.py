"""How fast the RTL simulators run the core: inferences/s and simulated cycles/s.

Timed inside the cocotb test around the inference loop, so the figures exclude the
Verilog build and the simulator's start-up (reported separately).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from firstspike.sw.model import Model

from .runner import run_rtl

__all__ = ["rtl_speed"]


def rtl_speed(model: Model, spike_times: np.ndarray, *, lanes: int, simulator: str,
              build_root: str | Path | None = None) -> dict:
    """Run ``spike_times`` through the RTL once to build, once to time; check against golden."""
    start = time.perf_counter()
    run_rtl(model, spike_times[:1], lanes=lanes, simulator=simulator, build_root=build_root)
    build_and_first = time.perf_counter() - start
    start = time.perf_counter()
    result = run_rtl(model, spike_times, lanes=lanes, simulator=simulator, build_root=build_root, check=True)
    total = time.perf_counter() - start
    seconds = float(result["wall_seconds"])
    return {
        "simulator": simulator,
        "network": "-".join(map(str, model.params.layer_sizes)),
        "lanes": lanes,
        "samples": len(spike_times),
        "core_cycles_mean": float(result["cycles"].mean()),
        "simulated_cycles": int(result["simulated_cycles"]),
        "inferences_per_second": len(spike_times) / seconds,
        "cycles_per_second": float(result["simulated_cycles"]) / seconds,
        "seconds_in_loop": seconds,
        "seconds_with_startup": total,
        "seconds_first_build_and_run": build_and_first,
    }
