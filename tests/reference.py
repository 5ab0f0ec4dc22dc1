"""A deliberately simple, independent reading of docs/arithmetic.md: plain Python
loops over samples, steps, neurons and inputs, no NumPy tricks. The golden model is
tested against it; it shares no code with the golden model beyond the parameters."""

from __future__ import annotations

NO_SPIKE = -1


def clamp(value: int, bits: int) -> int:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return max(low, min(high, value))


def run_layer(params, layer, in_times: list[int]) -> tuple[list[int], list[int], list[int]]:
    """Returns (spike times, potentials at T-1, potentials at the spike step)."""
    n_in, n_out = len(layer.weights), len(layer.thresholds)
    potential = [int(b) for b in layer.initial_potentials]
    current = [0] * n_out
    spike_time = [NO_SPIKE] * n_out
    spike_potential = [0] * n_out
    for t in range(params.time_steps):
        for j in range(n_out):
            arriving = 0
            for i in range(n_in):
                if in_times[i] == t:
                    arriving += int(layer.weights[i][j])
            if params.kernel.value == "step":
                potential[j] = clamp(potential[j] + arriving, params.potential_bits)
            else:
                current[j] = clamp(current[j] + arriving, params.potential_bits)
                potential[j] = clamp(potential[j] + current[j], params.potential_bits)
            if spike_time[j] == NO_SPIKE and potential[j] >= int(layer.thresholds[j]):
                spike_time[j] = t
                spike_potential[j] = potential[j]
    return spike_time, potential, spike_potential


def run(model, in_times: list[int]) -> dict:
    """One sample through the whole network, with the decision."""
    times = [int(s) for s in in_times]
    all_times, all_potentials = [], []
    for layer in model.layers:
        times, potential, spike_potential = run_layer(model.params, layer, times)
        all_times.append(times)
        all_potentials.append(potential)
    fired_steps = [t for t in times if t != NO_SPIKE]
    if fired_steps:
        first = min(fired_steps)
        best = None
        for j, t in enumerate(times):
            if t == first and (best is None or spike_potential[j] > spike_potential[best]):
                best = j
        decision, fired = best, True
    else:
        best = 0
        for j in range(len(potential)):
            if potential[j] > potential[best]:
                best = j
        decision, fired = best, False
    return {"spike_times": all_times, "potentials": all_potentials, "decision": decision, "fired": fired}
