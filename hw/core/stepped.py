"""The stepped schedule (docs/cycles.md): all layers advance together step by step, and
the core stops at the end of the first step at which an output fires.

At step ``t`` layer 0 takes the input events of ``t``, then each later layer the spikes
the layer before it made at ``t`` (same-step delivery), through the output layer; then the
next step. A layer's run at a step is a pass per event whose last also ends the step (so
the source must know which event is the last of its step: it looks at the one behind
it), or, without events, one pass that only ends it. Steps where nothing can happen are
skipped: for ``step`` every step without input events except ``0`` and ``T-1``.

Two event registers: the input stream's (kept while later layers run) and the queue's.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, Mux, Signal

from firstspike.sw.cycles import (
    DRAIN,
    SOURCE_FILL,
    STEPPED_LAYER_CHANGE,
    STEPPED_STEP_CHANGE,
    decision_latency,
)
from firstspike.sw.layout import MemoryLayout
from firstspike.sw.params import CoreParams, Kernel

from ..lanes import operation_layout
from .sequencer import Layers, Sequencer
from .source import Source, _bad_event

__all__ = ["SteppedSource", "stepped_source", "stepped_sequence"]


@dataclass(frozen=True)
class SteppedSource(Source):
    """:class:`Source` plus what the stepped sequencer needs: whether the held event is the
    last of its step for its layer (``known``: that can be told yet), and the input
    register's own view (to jump to the next step with input events)."""

    last: Signal
    known: Signal
    input_held: Signal
    input_end: Signal
    input_step: Signal


def stepped_source(m: Module, params: CoreParams, layout: MemoryLayout, *, layer: Signal, events, queue,
                   pending_step: Signal) -> SteppedSource:
    p, n_layers = params.lanes, params.n_layers
    widest = max(max(params.layer_sizes[:-1]), max(layout.folds) * p) + 1
    row_shape = range(max(2, layout.weight_rows))
    source = SteppedSource(
        valid=Signal(), end=Signal(), index=Signal(range(widest)), step=Signal(params.time_bits),
        row=Signal(row_shape), bad=Signal(), held=Signal(), take=Signal(), end_take=Signal(), capture=Signal(),
        last=Signal(), known=Signal(), input_held=Signal(), input_end=Signal(), input_step=Signal(params.time_bits))

    # The input stream's register (layer 0).
    in_index = Signal(range(widest))
    in_row = Signal(row_shape)
    in_take = Signal()
    head = events.payload
    m.d.comb += events.ready.eq(in_take)
    with m.If(in_take):
        m.d.sync += [source.input_held.eq(1), source.input_end.eq(head.end), in_index.eq(head.index),
                     source.input_step.eq(head.step), in_row.eq(head.index * layout.folds[0])]
    with m.Elif((layer == 0) & (source.take | source.end_take)):
        m.d.sync += source.input_held.eq(0)

    # The queue's register (later layers): the previous layer's spikes at this step.
    q_held = Signal()
    q_index = Signal(range(widest))
    q_row = Signal(row_shape)
    q_take = Signal()
    row_now = Signal(row_shape)
    with m.Switch(layer):
        for k in range(1, n_layers):
            with m.Case(k):
                m.d.comb += row_now.eq(layout.weight_base[k] + queue.index * layout.folds[k])
    m.d.comb += queue.take.eq(q_take)
    with m.If(q_take):
        m.d.sync += [q_held.eq(1), q_index.eq(queue.index), q_row.eq(row_now)]
    with m.Elif((layer != 0) & source.take):
        m.d.sync += q_held.eq(0)

    first = layer == 0
    m.d.comb += [
        in_take.eq(first & source.capture & events.valid & (~source.input_held | source.take)),
        q_take.eq(~first & source.capture & queue.valid & (~q_held | source.take)),
        source.held.eq(Mux(first, source.input_held, q_held)),
        source.valid.eq(Mux(first, source.input_held & ~source.input_end, q_held)),
        source.end.eq(Mux(first, source.input_held & source.input_end, ~q_held & queue.exhausted)),
        source.index.eq(Mux(first, in_index, q_index)),
        source.step.eq(Mux(first, source.input_step, pending_step)),
        source.row.eq(Mux(first, in_row, q_row)),
        # The event behind the held one: the stream's head, or the queue's next.
        source.known.eq(Mux(first, events.valid, queue.valid | queue.exhausted)),
        source.last.eq(Mux(first, head.end | (head.step != source.input_step), ~queue.valid)),
    ]
    m.d.comb += source.bad.eq(first & _bad_event(params, events, in_index, source.input_step, pending_step))
    return source


def stepped_sequence(m: Module, params: CoreParams, layout: MemoryLayout, *, layers: Layers,
                     source: SteppedSource, step: Signal, queue, decision, events, results, write, busy,
                     spiked: Signal, output_spiked: Signal) -> Sequencer:
    """The stepped schedule's sequencer. ``spiked``: stage 2 reports a spike of the layer
    being run; ``output_spiked``: of the output layer."""
    last_step = params.time_steps - 1
    # After the last run: DRAIN, then the decision unit's remaining latency.
    finish = decision_latency(params.lanes) - STEPPED_STEP_CHANGE
    assert finish >= 1 and STEPPED_STEP_CHANGE == DRAIN and STEPPED_LAYER_CHANGE == DRAIN + SOURCE_FILL
    assert 1 + decision.latency <= DRAIN + finish
    layer = layers.layer

    seq = Sequencer.create(m, params, layout, layers, source)
    fold, in_pass = seq.fold, seq.in_pass
    pass_op = Signal(operation_layout(params))
    pass_takes = Signal()
    fresh = Signal()
    wait = Signal(range(finish + 1))
    run_spiked = Signal()   # the layer being run spiked at this step
    decided = Signal()      # an output fired: the decision is final at this step
    check = Signal()        # this step checks every layer: t = 0, t = T-1, or a ramp's every step
    m.d.comb += check.eq((step == 0) | (step == last_step) | (params.kernel is Kernel.RAMP))

    # The pass a new one would be, from the held event.
    new_op = Signal(operation_layout(params))
    new_takes, new_ready = Signal(), Signal()
    m.d.comb += [new_op.fresh.eq(fresh), new_op.step.eq(step), new_op.span.eq(1)]
    with m.If(source.valid & source.bad):
        pass  # dropped in RUN with the error flag
    with m.Elif(source.valid & (source.step == step)):
        with m.If(source.known):
            m.d.comb += [new_op.add.eq(1), new_op.end_of_step.eq(source.last), new_takes.eq(1), new_ready.eq(1)]
    with m.Elif(source.valid | source.end):  # no (more) events at this step: a pass that only ends it
        m.d.comb += [new_op.end_of_step.eq(1), new_ready.eq(1)]

    m.d.comb += [
        seq.op.eq(Mux(in_pass, pass_op, new_op)),
        seq.final.eq(seq.op.end_of_step & (step == last_step)),
    ]
    last_fold = fold == layers.folds - 1

    # The next step with work: every step for ramp; for step the next input event's step,
    # or T-1 (the fallback's check), whichever comes first.
    next_step = Signal(params.time_bits)
    if params.kernel is Kernel.RAMP:
        m.d.comb += next_step.eq(step + 1)
    else:
        ahead = source.input_held & ~source.input_end & (source.input_step > step)
        with m.If(ahead & (source.input_step < last_step)):
            m.d.comb += next_step.eq(source.input_step)
        with m.Elif(ahead | source.input_end | (source.input_step > step) | (step + 1 >= last_step)):
            m.d.comb += next_step.eq(last_step)
        with m.Else():  # an event out of time order, dropped at the next step
            m.d.comb += next_step.eq(step + 1)
    next_known = Signal()
    m.d.comb += next_known.eq(source.input_held | (params.kernel is Kernel.RAMP))

    with m.If(spiked):
        m.d.sync += run_spiked.eq(1)
    with m.If(output_spiked):
        m.d.sync += decided.eq(1)

    with m.FSM(name="sequencer"):
        with m.State("IDLE"):
            m.d.comb += [write.ready.eq(1), seq.idle.eq(1), source.capture.eq(1)]
            with m.If(events.valid | source.input_held):
                m.d.sync += [
                    layer.eq(0), step.eq(0), fold.eq(0), in_pass.eq(0), fresh.eq(1), seq.cycles.eq(0),
                    seq.input_spikes.eq(0), seq.layer_spikes.eq(0), seq.error.eq(0), run_spiked.eq(0),
                    decided.eq(0),
                ]
                m.d.comb += decision.clear.eq(1)
                m.next = "RUN"
        with m.State("RUN"):
            m.d.comb += [busy.eq(1), source.capture.eq(1)]
            with m.If(~in_pass & source.valid & source.bad):
                m.d.comb += source.take.eq(1)
                m.d.sync += seq.error.eq(1)
            with m.Elif(in_pass | new_ready):
                m.d.comb += seq.issue.eq(1)
                m.d.sync += seq.cycles.eq(seq.cycles + 1)
                with m.If(~in_pass):
                    m.d.sync += [pass_op.eq(new_op), seq.pass_row.eq(source.row), pass_takes.eq(new_takes),
                                 in_pass.eq(1)]
                with m.If(last_fold):
                    m.d.sync += [fold.eq(0), in_pass.eq(0), fresh.eq(0)]
                    with m.If(Mux(in_pass, pass_takes, new_takes)):
                        m.d.comb += source.take.eq(1)
                        with m.If(layer == 0):
                            m.d.sync += seq.input_spikes.eq(seq.input_spikes + 1)
                    with m.If(seq.op.end_of_step):
                        m.next = "DRAIN"
                with m.Else():
                    m.d.sync += fold.eq(fold + 1)
        with m.State("DRAIN"):  # the last fold's stage 2 reports the run's spikes
            m.d.comb += [busy.eq(1), queue.switch.eq(1)]
            m.d.sync += [seq.cycles.eq(seq.cycles + 1), run_spiked.eq(0), wait.eq(0)]
            with m.If(layers.is_last & (decided | output_spiked | (step == last_step))):
                m.next = "FINISH"
            with m.Elif(~layers.is_last & (run_spiked | spiked | check)):
                m.d.sync += [layer.eq(layer + 1), fresh.eq(step == 0)]
                m.next = "FILL"
            with m.Elif(next_known):
                m.d.sync += [layer.eq(0), step.eq(next_step), fresh.eq(0)]
                m.next = "RUN"
            with m.Else():  # the next input event has not come yet
                m.d.sync += [layer.eq(0), fresh.eq(0)]
                m.next = "NEXT_STEP"
        with m.State("FILL"):  # the next layer's first event, from the queue
            m.d.comb += [busy.eq(1), source.capture.eq(1)]
            m.d.sync += seq.cycles.eq(seq.cycles + 1)
            m.next = "RUN"
        with m.State("FINISH"):  # the decision unit settles
            m.d.comb += busy.eq(1)
            m.d.sync += [seq.cycles.eq(seq.cycles + 1), wait.eq(wait + 1)]
            with m.If(wait == finish - 1):
                m.next = "DONE"
        with m.State("NEXT_STEP"):  # waiting for the input stream (not counted: a stall)
            m.d.comb += [busy.eq(1), source.capture.eq(1)]
            with m.If(next_known):
                m.d.sync += step.eq(next_step)
                m.next = "RUN"
        with m.State("DONE"):
            m.d.comb += results.valid.eq(1)
            with m.If(results.ready):
                m.d.sync += layer.eq(0)
                m.next = "FLUSH"
        with m.State("FLUSH"):  # the input events of this inference not taken, to its end marker
            m.d.comb += source.capture.eq(1)
            with m.If(source.input_held & source.input_end):
                m.d.comb += source.end_take.eq(1)
                m.next = "IDLE"
            with m.Elif(source.input_held):
                m.d.comb += source.take.eq(1)
    return seq
