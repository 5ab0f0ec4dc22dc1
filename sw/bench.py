"""Benchmarks that print figures (never timed tests)."""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from .arith import NO_SPIKE
from .encoding import LatencyEncoding
from .golden import simulate
from .model import Model
from .params import CoreParams
from .synthetic import random_model, random_spike_times

__all__ = ["bench_golden", "bench_model", "machine_description"]


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}"


def bench_golden(sizes: tuple[int, ...] = (784, 400, 10), time_steps: int = 32, batch: int = 4096,
                 density: float = 0.5, repeats: int = 3, seed: int = 0, images: np.ndarray | None = None,
                 x_max: float = 255.0) -> dict:
    """Golden-model throughput on a random network.

    Inputs are ``images`` (the first ``batch``, TTFS-encoded) if given, else random: each
    input spikes with probability ``density`` at a uniform random step. The best of
    ``repeats`` runs counts (the first run also warms BLAS up).
    """
    rng = np.random.default_rng(seed)
    params = CoreParams(tuple(sizes), time_steps)
    model = random_model(params, rng)
    if images is not None:
        spike_times = LatencyEncoding(x_max).encode(images[:batch], time_steps)
        batch = len(spike_times)
        density = float(np.mean(spike_times != NO_SPIKE))
    else:
        spike_times = random_spike_times(params, rng, batch, density=density)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = simulate(model, spike_times)
        best = min(best, time.perf_counter() - start)
    return {
        "network": "-".join(str(n) for n in sizes),
        "time_steps": time_steps,
        "batch": batch,
        "inputs": "random" if images is None else "images",
        "input_density": density,
        "inferences_per_second": batch / best,
        "microseconds_per_inference": best / batch * 1e6,
        "hidden_spikes_per_inference": float(result.spike_counts[:, 1:-1].sum(axis=1).mean()),
        "machine": machine_description(),
    }


def bench_model(model: Model, spike_times: np.ndarray, *, repeats: int = 3) -> dict:
    """Golden-model throughput of ``model`` on ``spike_times`` (the best of ``repeats`` runs)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = simulate(model, spike_times)
        best = min(best, time.perf_counter() - start)
    p = model.params
    return {
        "network": "-".join(str(n) for n in p.layer_sizes),
        "layers": [s.kind for s in (p.layer_shape(k) for k in range(p.n_layers))],
        "time_steps": p.time_steps,
        "batch": len(spike_times),
        "inputs": "images",
        "input_density": float(np.mean(spike_times != NO_SPIKE)),
        "inferences_per_second": len(spike_times) / best,
        "microseconds_per_inference": best / len(spike_times) * 1e6,
        "hidden_spikes_per_inference": float(result.spike_counts[:, 1:-1].sum(axis=1).mean()),
        "machine": machine_description(),
    }
