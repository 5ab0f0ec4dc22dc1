"""A deliberately simple, independent reading of docs/arithmetic.md: plain Python
loops over samples, steps, neurons and inputs, no NumPy tricks. The golden model is
tested against it; it shares no code with the golden model beyond the parameters."""

from __future__ import annotations

NO_SPIKE = -1


def clamp(value: int, bits: int) -> int:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return max(low, min(high, value))


def seen_spikes(shape, in_times: list[int], t: int) -> list[int]:
    """How many spikes each neuron of the (pooled) map the weights index brings at step t:
    one input each without pooling; the window's spikes at t with sum pooling; one if the
    window's earliest spike is at t with max pooling."""
    if shape.pool is None:
        return [1 if s == t else 0 for s in in_times]
    channels, height, width = shape.input_map.as_tuple()
    p = shape.pool.size
    counts = []
    for c in range(channels):
        for y in range(height // p):
            for x in range(width // p):
                window = [in_times[(c * height + y * p + a) * width + x * p + b] for a in range(p) for b in range(p)]
                if shape.pool.kind.value == "sum":
                    counts.append(sum(1 for s in window if s == t))
                else:
                    fired = [s for s in window if s != NO_SPIKE]
                    counts.append(1 if fired and min(fired) == t else 0)
    return counts


def connections(params, k: int, layer) -> tuple[list[list[tuple[int, int]]], list[int], list[int]]:
    """For every neuron of layer k: (seen input, weight) pairs, its threshold and initial potential."""
    shape = params.layer_shape(k)
    if shape.kind == "dense":
        n_seen = len(layer.weights)
        pairs = [[(i, int(layer.weights[i][j])) for i in range(n_seen)] for j in range(shape.outputs)]
        return pairs, [int(v) for v in layer.thresholds], [int(v) for v in layer.initial_potentials]
    seen = shape.seen_map()
    out = shape.output_map
    (kh, kw), (sy, sx), (py, px) = shape.kernel, shape.stride, shape.padding
    pairs, thresholds, initial = [], [], []
    for k_out in range(out.channels):
        for oy in range(out.height):
            for ox in range(out.width):
                neuron = []
                for c in range(seen.channels):
                    for dy in range(kh):
                        for dx in range(kw):
                            y, x = oy * sy - py + dy, ox * sx - px + dx
                            if 0 <= y < seen.height and 0 <= x < seen.width:
                                neuron.append(((c * seen.height + y) * seen.width + x,
                                               int(layer.weights[c][dy][dx][k_out])))
                pairs.append(neuron)
                thresholds.append(int(layer.thresholds[k_out]))
                initial.append(int(layer.initial_potentials[k_out]))
    return pairs, thresholds, initial


def run_layer(params, k: int, layer, in_times: list[int]) -> tuple[list[int], list[int], list[int]]:
    """Returns (spike times, potentials at T-1, potentials at the spike step)."""
    pairs, thresholds, initial = connections(params, k, layer)
    n_out = len(pairs)
    potential = list(initial)
    current = [0] * n_out
    spike_time = [NO_SPIKE] * n_out
    spike_potential = [0] * n_out
    for t in range(params.time_steps):
        counts = seen_spikes(params.layer_shape(k), in_times, t)
        for j in range(n_out):
            arriving = 0
            for i, weight in pairs[j]:
                arriving += counts[i] * weight
            if params.kernel.value == "step":
                potential[j] = clamp(potential[j] + arriving, params.potential_bits)
            else:
                current[j] = clamp(current[j] + arriving, params.potential_bits)
                potential[j] = clamp(potential[j] + current[j], params.potential_bits)
            if spike_time[j] == NO_SPIKE and potential[j] >= thresholds[j]:
                spike_time[j] = t
                spike_potential[j] = potential[j]
    return spike_time, potential, spike_potential


def run(model, in_times: list[int]) -> dict:
    """One sample through the whole network, with the decision."""
    times = [int(s) for s in in_times]
    all_times, all_potentials = [], []
    for k, layer in enumerate(model.layers):
        times, potential, spike_potential = run_layer(model.params, k, layer, times)
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
