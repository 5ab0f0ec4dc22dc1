"""The pipeline behind the sequencer: stage 1 addresses the memories with the fold being
issued, stage 2 runs the lane array on what they read and writes the new state back,
reports the spikes (to the queue, the trace and the counters) and feeds the decision unit.

A pass over a layer with one fold reads, in stage 1, the row that stage 2 writes in the
same cycle: the state memory's read port is transparent for its write port, so the read
returns the row being written and no stall is needed (the pipeline hazard of a fold
revisited in the next cycle).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib.memory import ReadPort, WritePort

from firstspike.sw.params import CoreParams

from ..lanes import operation_layout
from .layouts import unpack_row
from .sequencer import Layers, Sequencer
from .source import Source

__all__ = ["Memories", "Spikes", "issue_stage", "lane_stage"]


@dataclass(frozen=True)
class Memories:
    """The read and write ports of the four memories."""

    weights_r: ReadPort
    thresholds_r: ReadPort
    initial_r: ReadPort
    states_r: ReadPort
    states_w: WritePort


def issue_stage(m: Module, memories: Memories, *, layers: Layers, source: Source, seq: Sequencer) -> None:
    """Stage 1: the fold's rows (its weights: the pass's first row plus the fold)."""
    m.d.comb += [
        memories.weights_r.addr.eq(Mux(seq.in_pass, seq.pass_row, source.row) + seq.fold),
        memories.thresholds_r.addr.eq(layers.neuron_base + seq.fold),
        memories.initial_r.addr.eq(layers.neuron_base + seq.fold),
        memories.states_r.addr.eq(layers.neuron_base + seq.fold),
    ]


@dataclass(frozen=True)
class Spikes:
    """What stage 2 reports to the sequencer this cycle."""

    any: Signal     # a lane fired
    output: Signal  # an output neuron fired


def lane_stage(m: Module, params: CoreParams, memories: Memories, *, layers: Layers, seq: Sequencer,
               lanes, queue, decision, trace, tabled: bool) -> Spikes:
    """Stage 2: compute and write back; report spikes; the decision unit one register on."""
    p, n_layers = params.lanes, params.n_layers
    s2_valid, s2_final, s2_last = Signal(), Signal(), Signal()
    s2_op = Signal(operation_layout(params))
    s2_fold = Signal.like(seq.fold)
    s2_row = Signal.like(layers.neuron_base)
    s2_lanes = Signal(p)
    s2_layer = Signal.like(layers.layer)
    m.d.sync += [
        s2_valid.eq(seq.issue), s2_op.eq(seq.op), s2_fold.eq(seq.fold), s2_row.eq(layers.neuron_base + seq.fold),
        s2_lanes.eq(seq.lanes_valid), s2_final.eq(seq.final), s2_last.eq(layers.is_last),
        s2_layer.eq(layers.layer),
    ]
    m.d.comb += [
        lanes.op.eq(s2_op),
        lanes.lanes_valid.eq(s2_lanes),
        *unpack_row(lanes.weights, memories.weights_r.data),
        *unpack_row(lanes.thresholds, memories.thresholds_r.data),
        *unpack_row(lanes.initial, memories.initial_r.data),
        *unpack_row(lanes.state_in, memories.states_r.data),
        memories.states_w.addr.eq(s2_row),
        memories.states_w.data.eq(Cat(*lanes.state_out)),
        memories.states_w.en.eq(s2_valid),
    ]
    spiked = s2_valid & (lanes.fire != 0)
    spikes = Spikes(any=Signal(name="stage2_spiked"), output=Signal(name="stage2_output_spiked"))
    m.d.comb += [spikes.any.eq(spiked), spikes.output.eq(spiked & s2_last)]
    m.d.comb += [
        queue.push.eq(spiked & ~s2_last),
        trace.valid.eq(spiked),
        trace.payload.layer.eq(s2_layer),
        trace.payload.fold.eq(s2_fold),
        trace.payload.fire.eq(lanes.fire),
        *(trace.payload.times[lane].eq(lanes.time[lane]) for lane in range(p)),
    ]
    if tabled:
        m.d.comb += [
            queue.fold.eq(s2_fold), queue.fire.eq(lanes.fire),
            *(queue.fired[lane].eq(lanes.state_out[lane].fired) for lane in range(p)),
            *(queue.times[lane].eq(lanes.state_out[lane].time) for lane in range(p)),
            queue.reading.eq(~layers.is_last),
        ]
    else:
        m.d.comb += [queue.record.fold.eq(s2_fold), queue.record.step.eq(s2_op.step),
                     queue.record.fire.eq(lanes.fire)]
    popcount = sum(lanes.fire[lane] for lane in range(p))
    with m.Switch(s2_layer):
        for k in range(n_layers):
            with m.Case(k):
                with m.If(s2_valid):
                    m.d.sync += seq.layer_spikes[k].eq(seq.layer_spikes[k] + popcount)
    # The decision unit behind a register: the lane arithmetic and the decision's
    # comparison trees would otherwise be one long path. The last fold's outcome settles
    # 1 + decision.latency cycles after stage 2, within the last LAYER_END.
    m.d.sync += [
        decision.valid.eq(s2_valid & s2_last),
        decision.final.eq(s2_final),
        decision.fold.eq(s2_fold),
        *(decision.times[lane].eq(lanes.time[lane]) for lane in range(p)),
        decision.fire.eq(lanes.fire),
        decision.lanes_valid.eq(s2_lanes),
        *(decision.potential[lane].eq(lanes.potential[lane]) for lane in range(p)),
    ]
    return spikes
