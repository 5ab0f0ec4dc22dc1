"""The core's stream payloads: input events, results, the spike trace and host row access."""

from __future__ import annotations

from amaranth import unsigned
from amaranth.lib import data

from firstspike.sw.layout import MemoryLayout
from firstspike.sw.params import CoreParams

__all__ = ["COUNTER_BITS", "bits_for", "event_layout", "result_layout", "trace_layout", "write_layout",
           "read_layout", "unpack_row"]

COUNTER_BITS = 32


def bits_for(n: int) -> int:
    """Unsigned bits for 0 ... n-1 (at least one)."""
    return max(1, (n - 1).bit_length())


def event_layout(params: CoreParams) -> data.StructLayout:
    """One input spike (``end = 0``), or the end of an inference's input (``end = 1``)."""
    return data.StructLayout({
        "index": unsigned(bits_for(params.n_inputs)),
        "step": unsigned(params.time_bits),
        "end": unsigned(1),
    })


def result_layout(params: CoreParams) -> data.StructLayout:
    return data.StructLayout({
        "decision": unsigned(bits_for(params.n_outputs)),
        "decision_step": unsigned(params.time_bits),  # the first output spike's step, or T-1
        "fired": unsigned(1),
        "error": unsigned(1),  # an input event was out of range or out of time order
        "cycles": unsigned(COUNTER_BITS),
        "input_spikes": unsigned(16),
        "layer_spikes": data.ArrayLayout(unsigned(16), params.n_layers),
        "output_fired": unsigned(params.n_outputs),
        "output_times": data.ArrayLayout(unsigned(params.time_bits), params.n_outputs),
    })


def trace_layout(params: CoreParams) -> data.StructLayout:
    """Spikes as they happen: layer, position (conv layers), fold, which of the fold's lanes
    fired and when."""
    return data.StructLayout({
        "layer": unsigned(bits_for(params.n_layers)),
        "position": unsigned(bits_for(max(params.positions(k) for k in range(params.n_layers)))),
        "fold": unsigned(bits_for(max(params.folds(k) for k in range(params.n_layers)))),
        "fire": unsigned(params.lanes),
        "times": data.ArrayLayout(unsigned(params.time_bits), params.lanes),
    })


def read_layout(params: CoreParams) -> data.StructLayout:
    """A host read of one memory row (to verify a load)."""
    layout = MemoryLayout(params)
    return data.StructLayout({
        "target": unsigned(2),
        "address": unsigned(bits_for(max(layout.weight_rows, layout.neuron_rows))),
    })


def write_layout(params: CoreParams) -> data.StructLayout:
    layout = MemoryLayout(params)
    return data.StructLayout({
        "target": unsigned(2),
        "address": unsigned(bits_for(max(layout.weight_rows, layout.neuron_rows))),
        "data": unsigned(max(layout.weight_width, layout.neuron_width)),
    })


def unpack_row(lanes, row) -> list:
    """Assignments of one memory row's consecutive slices to per-lane signals."""
    width = len(row) // len(lanes)
    return [lane.eq(row[k * width:(k + 1) * width]) for k, lane in enumerate(lanes)]
