"""The pipeline behind the sequencer: stage 1 addresses the memories with the fold being
issued, stage 2 runs the lane array on what they read and writes the new state back,
reports the spikes (to the queue, the trace and the counters) and feeds the decision unit.

A pass over a layer with one fold reads, in stage 1, the row that stage 2 writes in the
same cycle: the state memory's read port is transparent for its write port, so the read
returns the row being written and no stall is needed (the pipeline hazard of a fold
revisited in the next cycle; a conv layer's position revisited by the next event too).

With conv layers a row of neuron state also holds the parity of the inference that last
wrote it: a row from an earlier inference starts fresh, so a position's first add at
``t = 0`` needs no sweep of fresh rows before it (every row is written at ``t = 0``: the
first step checks every position of every layer).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import C, Cat, Module, Signal
from amaranth.lib.memory import ReadPort, WritePort

from firstspike.sw.params import CoreParams
from firstspike.sw.topology import Conv2d, fan_out

from ..lanes import operation_layout
from .layouts import unpack_row
from .sequencer import Layers, Sequencer

__all__ = ["Memories", "Spikes", "issue_stage", "lane_stage"]


@dataclass(frozen=True)
class Memories:
    """The read and write ports of the four memories."""

    weights_r: ReadPort
    thresholds_r: ReadPort
    initial_r: ReadPort
    states_r: ReadPort
    states_w: WritePort


def issue_stage(m: Module, memories: Memories, *, layers: Layers, seq: Sequencer) -> None:
    """Stage 1: the fold's rows, as the sequencer addresses them."""
    m.d.comb += [
        memories.weights_r.addr.eq(seq.weight_row),
        memories.thresholds_r.addr.eq(layers.neuron_base + seq.fold),
        memories.initial_r.addr.eq(layers.neuron_base + seq.fold),
        memories.states_r.addr.eq(seq.state_row),
    ]


@dataclass(frozen=True)
class Spikes:
    """What stage 2 reports to the sequencer this cycle."""

    any: Signal     # a lane fired whose spike the next layer takes (all but skipped conv positions)
    output: Signal  # an output neuron fired


def reached_positions(params: CoreParams, layer: int) -> int:
    """Bit ``q`` set: the spikes of ``layer``'s position ``q`` reach a neuron of the next
    layer (its pooling does not drop them, its stride does not skip them)."""
    shape, size = params.layer_shape(layer + 1), params.layer_sizes[layer + 1]
    positions = params.positions(layer)
    reached = (fan_out(shape, size) > 0).reshape(-1, positions)
    assert (reached == reached[0]).all()  # a matter of position, not channel
    return sum(1 << q for q in range(positions) if reached[0, q])


def lane_stage(m: Module, params: CoreParams, memories: Memories, *, layers: Layers, seq: Sequencer,
               lanes, queue, decision, trace, tabled: bool) -> Spikes:
    """Stage 2: compute and write back; report spikes; the decision unit one register on."""
    p, n_layers = params.lanes, params.n_layers
    s2_valid, s2_final, s2_last = Signal(), Signal(), Signal()
    s2_op = Signal(operation_layout(params))
    s2_fold = Signal.like(seq.fold)
    s2_row = Signal.like(seq.state_row)
    s2_position = Signal.like(seq.position)
    s2_lanes = Signal(p)
    s2_layer = Signal.like(layers.layer)
    m.d.sync += [
        s2_valid.eq(seq.issue), s2_op.eq(seq.op), s2_fold.eq(seq.fold), s2_row.eq(seq.state_row),
        s2_position.eq(seq.position), s2_lanes.eq(seq.lanes_valid), s2_final.eq(seq.final),
        s2_last.eq(layers.is_last), s2_layer.eq(layers.layer),
    ]
    row_bits = len(memories.states_w.data)
    lane_bits = row_bits - (0 if params.fully_connected else 1)
    m.d.comb += [
        lanes.op.eq(s2_op),
        lanes.lanes_valid.eq(s2_lanes),
        *unpack_row(lanes.weights, memories.weights_r.data),
        *unpack_row(lanes.thresholds, memories.thresholds_r.data),
        *unpack_row(lanes.initial, memories.initial_r.data),
        *unpack_row(lanes.state_in, memories.states_r.data[:lane_bits]),
        memories.states_w.addr.eq(s2_row),
        memories.states_w.en.eq(s2_valid),
    ]
    if params.fully_connected:
        m.d.comb += memories.states_w.data.eq(Cat(*lanes.state_out))
    else:
        epoch = Signal()  # the parity of the inference running
        with m.If(decision.clear):
            m.d.sync += epoch.eq(~epoch)
        m.d.comb += [
            lanes.op.fresh.eq(s2_op.fresh | (memories.states_r.data[lane_bits] != epoch)),
            memories.states_w.data.eq(Cat(*lanes.state_out, epoch)),
        ]
    # Spikes the next layer takes: a conv layer's at the positions the next layer reads.
    handed = Signal()
    m.d.comb += handed.eq(1)
    with m.Switch(s2_layer):
        for k in range(n_layers - 1):
            if isinstance(params.layer_shape(k), Conv2d):
                with m.Case(k):
                    reached = C(reached_positions(params, k), params.positions(k))
                    m.d.comb += handed.eq(reached.bit_select(s2_position, 1))
    spiked = s2_valid & (lanes.fire != 0)
    spikes = Spikes(any=Signal(name="stage2_spiked"), output=Signal(name="stage2_output_spiked"))
    m.d.comb += [spikes.any.eq(spiked & handed), spikes.output.eq(spiked & s2_last)]
    m.d.comb += [
        queue.push.eq(spiked & handed & ~s2_last),
        trace.valid.eq(spiked),
        trace.payload.layer.eq(s2_layer),
        trace.payload.position.eq(s2_position),
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
        m.d.comb += [queue.record.fold.eq(s2_fold), queue.record.position.eq(s2_position),
                     queue.record.step.eq(s2_op.step),
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
