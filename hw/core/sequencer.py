"""The sequencer: which pass the lane array runs next, fold by fold, layer after layer
(the schedule of docs/cycles.md), and the counters the result reports."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data

from firstspike.sw.cycles import (
    LAYER_SWITCH,
    LAYERED_DRAIN,
    SOURCE_FILL,
    inference_overhead,
    layer_overhead,
    passes_span_steps,
)
from firstspike.sw.layout import MemoryLayout
from firstspike.sw.params import CoreParams, Kernel
from firstspike.sw.topology import Conv2d

from ..lanes import operation_layout
from .layouts import COUNTER_BITS
from .source import EventSource, Source

__all__ = ["Layers", "layer_select", "Sequencer", "sequence"]


@dataclass(frozen=True)
class Layers:
    """The layer being run and its constants."""

    layer: Signal
    folds: Signal        # F = ceil(n_out / P), or a conv layer's ceil(K / P)
    neuron_base: Signal  # its first row of thresholds and initial potentials
    state_base: Signal   # its first row of neuron state
    n_out: Signal        # neurons at one position (all of a dense layer's, a conv layer's channels)
    is_last: Signal
    conv: Signal         # a conv layer
    # Driven by the sequencer (its register moves in :func:`fold_counter`):
    restart: Signal      # ``layer`` becomes 0
    advance: Signal      # ``layer`` becomes ``layer + 1``


def layer_select(m: Module, params: CoreParams, layout: MemoryLayout) -> Layers:
    n_layers = params.n_layers
    layers = Layers(layer=Signal(range(max(2, n_layers)), name="layer"),
                    folds=Signal(range(max(layout.folds) + 1), name="layer_folds"),
                    neuron_base=Signal(range(max(2, layout.neuron_rows)), name="neuron_base"),
                    state_base=Signal(range(max(2, layout.state_rows)), name="state_base"),
                    n_out=Signal(range(max(params.layer_sizes) + 1), name="layer_n_out"),
                    is_last=Signal(name="is_last_layer"), conv=Signal(name="conv_layer"),
                    restart=Signal(name="layers_restart"), advance=Signal(name="layers_advance"))
    with m.Switch(layers.layer):
        for k in range(n_layers):
            with m.Case(k):
                m.d.comb += [
                    layers.folds.eq(layout.folds[k]),
                    layers.neuron_base.eq(layout.neuron_base[k]), layers.state_base.eq(layout.state_base[k]),
                    layers.n_out.eq(params.channels(k)),
                    layers.is_last.eq(k == n_layers - 1),
                    layers.conv.eq(isinstance(params.layer_shape(k), Conv2d)),
                ]
    return layers


@dataclass(frozen=True)
class Sequencer:
    """The pass being issued (stage 1) and the counters of the inference."""

    fold: Signal
    last_fold: Signal    # ``fold`` is the layer's last (a register: see :func:`fold_counter`)
    fold_restart: Signal  # driven: ``fold`` becomes 0
    fold_advance: Signal  # driven: ``fold`` becomes ``fold + 1``
    in_pass: Signal      # in the middle of a pass (its op and row are registered)
    pass_row: Signal     # the pass's first weight row
    weight_row: Signal   # the rows the fold being issued reads
    state_row: Signal
    position: Signal     # a conv layer's position of the fold being issued (0 for dense)
    op: Signal           # operation_layout
    final: Signal        # the layer's last pass
    issue: Signal        # a fold goes down the pipeline this cycle
    lanes_valid: Signal  # the fold's lanes that hold a neuron
    idle: Signal         # between inferences: host access may use the memories
    hold: Signal         # driven: host access is under way, an inference must not start yet
    starting: Signal     # an input event waits: the inference starts unless ``hold`` (host reads wait)
    cycles: Signal
    count: Signal        # driven: this cycle counts in ``cycles``
    counted: Signal      # a counted cycle not in ``cycles`` yet (the result waits for it)
    input_spikes: Signal
    input_spike: Signal  # driven: an input event is taken (counted in ``input_spikes`` a cycle later)
    layer_spikes: Signal
    error: Signal

    @classmethod
    def create(cls, m: Module, params: CoreParams, layout: MemoryLayout, layers: Layers, source: Source) -> Sequencer:
        """The signals, and ``lanes_valid`` from the fold being issued (both schedules)."""
        p = params.lanes
        most = max(params.positions(k) for k in range(params.n_layers))
        seq = cls(fold=Signal(range(max(2, max(layout.folds))), name="fold"),
                  last_fold=Signal(init=layout.folds[0] == 1, name="last_fold"),
                  fold_restart=Signal(name="fold_restart"), fold_advance=Signal(name="fold_advance"),
                  in_pass=Signal(name="in_pass"), pass_row=Signal.like(source.row, name="pass_row"),
                  weight_row=Signal(range(max(2, layout.weight_rows)), name="weight_row"),
                  state_row=Signal(range(max(2, layout.state_rows)), name="state_row"),
                  position=Signal(range(max(2, most)), name="position"),
                  op=Signal(operation_layout(params), name="op"), final=Signal(name="final"),
                  issue=Signal(name="issue"), lanes_valid=Signal(p, name="lanes_valid"), idle=Signal(name="idle"),
                  hold=Signal(name="hold"), starting=Signal(name="starting"),
                  cycles=Signal(COUNTER_BITS, name="cycles"), count=Signal(name="count"),
                  counted=Signal(name="counted"), input_spikes=Signal(16, name="input_spikes"),
                  input_spike=Signal(name="input_spike"),
                  layer_spikes=Signal(data.ArrayLayout(unsigned(16), params.n_layers), name="layer_spikes"),
                  error=Signal(name="error"))
        m.d.comb += seq.lanes_valid.eq(Cat(seq.fold * p + lane < layers.n_out for lane in range(p)))
        # The counters add each counted cycle and input event a cycle later, from registers:
        # the states' many conditions were in front of their adders (the longest paths of
        # both boards' builds). The sequencers' start (``.eq(0)``) comes after this and wins;
        # an input event is never taken in the last cycles before the result.
        spiked = Signal(name="input_counted")
        m.d.sync += [seq.counted.eq(seq.count), seq.cycles.eq(seq.cycles + seq.counted),
                     spiked.eq(seq.input_spike), seq.input_spikes.eq(seq.input_spikes + spiked)]
        fold_counter(m, layout, layers, seq)
        return seq


def fold_counter(m: Module, layout: MemoryLayout, layers: Layers, seq: Sequencer) -> None:
    """The ``layer`` and ``fold`` registers, moved by the sequencer's ``restart``/``advance``
    flags, and ``last_fold`` (``fold == folds - 1``) in a register beside them: the test of
    the last fold is then a flip-flop, not a layer decoding and a comparison in front of
    the sequencer's every decision. The layer changes only while ``fold`` is 0."""
    layer, fold = layers.layer, seq.fold
    folds = layout.folds
    with m.If(layers.restart):
        m.d.sync += layer.eq(0)
    with m.Elif(layers.advance):
        m.d.sync += layer.eq(layer + 1)
    with m.If(seq.fold_restart):
        m.d.sync += fold.eq(0)
    with m.Elif(seq.fold_advance):
        m.d.sync += fold.eq(fold + 1)
    # Whether the layer after this cycle has a single fold; and whether ``fold + 1`` is last.
    single_now, single_next, penultimate = Signal(), Signal(), Signal()
    with m.Switch(layer):
        for k in range(len(folds)):
            with m.Case(k):
                m.d.comb += [single_now.eq(folds[k] == 1),
                             single_next.eq(folds[k + 1] == 1 if k + 1 < len(folds) else 0),
                             penultimate.eq(fold == folds[k] - 2)]
    single = Mux(layers.restart, folds[0] == 1, Mux(layers.advance, single_next, single_now))
    with m.If(seq.fold_restart | layers.restart | layers.advance):
        m.d.sync += seq.last_fold.eq(single)
    with m.Elif(seq.fold_advance):
        m.d.sync += seq.last_fold.eq(penultimate)


def sequence(m: Module, params: CoreParams, layout: MemoryLayout, *, layers: Layers, source: EventSource,
             step: Signal, queue, decision, events, results, write, busy) -> Sequencer:
    """The schedule of docs/cycles.md: a pass per input event (its folds one a cycle), the
    end of a step riding on the first event of the next busy step (``ramp`` beyond the
    spike table's limits: a pass per step in between), a closing pass, ``LAYER_END``'s
    overhead cycles to drain the pipeline and switch the queue, then the next layer;
    after the last, ``DONE`` offers the result. ``step`` is the step whose end is pending."""
    ramp = params.kernel is Kernel.RAMP
    skips = passes_span_steps(params)  # a pass spans the empty steps
    overhead = layer_overhead(params)
    settle = inference_overhead(params)  # more for the last layer: the decision settles
    last_step = params.time_steps - 1
    layer = layers.layer

    seq = Sequencer.create(m, params, layout, layers, source)
    fold, in_pass = seq.fold, seq.in_pass
    pass_op = Signal(operation_layout(params))
    pass_final = Signal()
    pass_takes = Signal()
    fresh = Signal()
    dropping = Signal()  # the held event is out of range or out of time order
    # The decision unit is cleared in the first cycle of the run, from a register: nothing
    # reaches it from the last layer for cycles yet, and its many enables do not wait on
    # the start's decision.
    clearing = Signal()
    m.d.sync += clearing.eq(0)
    m.d.comb += decision.clear.eq(clearing)
    wait = Signal(range(overhead + settle + 1))
    finishing = Signal()  # the layer ending is the last

    # The op a new pass would do now, decided from the source and the pending step.
    new_op = Signal(operation_layout(params))
    new_final, new_takes, new_ready, new_advance = Signal(), Signal(), Signal(), Signal()
    m.d.comb += [new_op.fresh.eq(fresh), new_op.step.eq(step), new_op.span.eq(1)]
    with m.If(source.valid & (layer == 0) & source.bad):
        pass  # handled in the RUN state: dropped with the error flag
    with m.Elif(source.valid):
        with m.If(source.same):
            m.d.comb += [new_op.add.eq(1), new_takes.eq(1), new_ready.eq(1)]
        if skips:
            with m.Else():  # the ends of steps `step` ... source.step - 1, then the event
                m.d.comb += [new_op.end_of_step.eq(1), new_op.span.eq(source.step - step), new_op.add.eq(1),
                             new_takes.eq(1), new_ready.eq(1), new_advance.eq(1)]
        elif ramp:
            with m.Elif(source.next_up):
                m.d.comb += [new_op.end_of_step.eq(1), new_op.add.eq(1), new_takes.eq(1),
                             new_ready.eq(1), new_advance.eq(1)]
            with m.Else():  # an empty step in between: integrate it on its own
                m.d.comb += [new_op.end_of_step.eq(1), new_ready.eq(1), new_advance.eq(1)]
        else:
            with m.Else():
                m.d.comb += [new_op.end_of_step.eq(1), new_op.add.eq(1), new_takes.eq(1),
                             new_ready.eq(1), new_advance.eq(1)]
    with m.Elif(source.end):
        m.d.comb += [new_op.end_of_step.eq(1), new_ready.eq(1)]
        if skips:
            m.d.comb += [new_op.span.eq(params.time_steps - step), new_final.eq(1)]
        elif ramp:
            m.d.comb += [new_final.eq(step == last_step), new_advance.eq(step != last_step)]
        else:
            m.d.comb += new_final.eq(1)

    m.d.comb += [
        seq.op.eq(Mux(in_pass, pass_op, new_op)),
        seq.final.eq(Mux(in_pass, pass_final, new_final)),
        seq.weight_row.eq(Mux(in_pass, seq.pass_row, source.row) + fold),
        seq.state_row.eq(layers.state_base + fold),
    ]
    last_fold = seq.last_fold
    # The pending step changes only here, as the source's relations registers expect.
    with m.If(source.step_zero):
        m.d.sync += step.eq(0)
    with m.Elif(source.step_to_event):
        m.d.sync += step.eq(source.step)
    with m.Elif(source.step_up):
        m.d.sync += step.eq(step + 1)
    # Where every layer has two folds or more a pass's last fold is never its first: the
    # take and the layer's end are then decided by the pass's registers alone, and the
    # held event's comparisons stay out of the source's enables.
    one_fold = min(layout.folds) == 1
    pass_ends_take = Mux(in_pass, pass_takes, new_takes) if one_fold else pass_takes
    pass_ends_layer = seq.final if one_fold else pass_final
    pass_ends = Signal()  # the fold issued is its pass's last
    # Whether the source's register may fill (IDLE, RUN, and LAYER_END's last cycle), a
    # register: the queue's take waits on it. Set in the cycle before, where ``finishing``
    # is known already.
    capturing = Signal(init=1)
    m.d.comb += source.capture.eq(capturing)
    switching = Signal()
    m.d.sync += switching.eq(0)
    m.d.comb += queue.switch.eq(switching)
    assert LAYERED_DRAIN >= 2
    assert overhead - SOURCE_FILL - 1 >= LAYERED_DRAIN

    with m.FSM(name="sequencer"):
        with m.State("IDLE"):
            # A row is not taken as an inference starts: it lands a cycle later (host_writes).
            m.d.comb += [write.ready.eq(~seq.starting), seq.idle.eq(1)]
            m.d.comb += seq.starting.eq(events.valid | source.held)
            with m.If(seq.starting & ~seq.hold):
                m.d.comb += [layers.restart.eq(1), seq.fold_restart.eq(1)]
                m.d.comb += source.step_zero.eq(1)
                m.d.sync += [
                    in_pass.eq(0), fresh.eq(1), seq.cycles.eq(0),
                    seq.input_spikes.eq(0), seq.layer_spikes.eq(0), seq.error.eq(0),
                ]
                m.d.sync += clearing.eq(1)
                m.next = "RUN"
        with m.State("RUN"):
            m.d.comb += busy.eq(1)
            bad = ~in_pass & source.valid & (layer == 0) & source.bad
            with m.If(dropping):
                # Not processed, and not counted: the host broke the input contract. Dropped
                # the cycle after it is seen, so the comparison is not in front of the take.
                m.d.comb += source.take.eq(1)
                m.d.sync += dropping.eq(0)
            with m.Elif(bad):
                m.d.sync += [seq.error.eq(1), dropping.eq(1)]
            with m.Elif(in_pass | new_ready):
                m.d.comb += seq.issue.eq(1)
                m.d.comb += seq.count.eq(1)
                with m.If(~in_pass):
                    m.d.sync += [pass_op.eq(new_op), seq.pass_row.eq(source.row), pass_final.eq(new_final),
                                 pass_takes.eq(new_takes), in_pass.eq(1)]
                    with m.If(new_advance):
                        m.d.comb += [source.step_to_event.eq(new_takes), source.step_up.eq(~new_takes)]
                with m.If(last_fold):
                    m.d.comb += [seq.fold_restart.eq(1), pass_ends.eq(1)]
                    m.d.sync += [in_pass.eq(0), fresh.eq(0)]
                    with m.If(pass_ends_layer):
                        m.d.sync += [wait.eq(0), capturing.eq(0)]
                        m.next = "LAYER_END"
                with m.Else():
                    m.d.comb += seq.fold_advance.eq(1)
            # What the pass's end does to the source, outside the chain above where the pass's
            # registers alone decide it.
            with m.If(pass_ends if one_fold else in_pass & last_fold):
                with m.If(pass_ends_take):
                    m.d.comb += source.take.eq(1)
                    with m.If(layer == 0):
                        m.d.comb += seq.input_spike.eq(1)
                with m.If(pass_ends_layer & (layer == 0)):
                    m.d.comb += source.end_take.eq(1)
        with m.State("LAYER_END"):
            m.d.comb += busy.eq(1)
            m.d.comb += seq.count.eq(1)
            m.d.sync += wait.eq(wait + 1)
            # The queue switches at ``wait == LAYERED_DRAIN - 1``, with stage 2b's push of
            # the last record; from a register set the cycle before.
            m.d.sync += switching.eq(wait == LAYERED_DRAIN - 2)
            with m.If(wait == LAYERED_DRAIN - 1):
                m.d.sync += finishing.eq(layers.is_last)
            # (A spike table reads ahead in the cycles between: TABLE_PRIMING.)
            with m.If((wait == overhead - SOURCE_FILL - LAYER_SWITCH) & ~finishing):
                m.d.comb += layers.advance.eq(1)
                m.d.comb += source.step_zero.eq(1)
                m.d.sync += fresh.eq(1)
            with m.If(finishing):
                with m.If(wait == overhead + settle - 1):  # the decision has settled
                    m.next = "DONE"
            with m.Elif(wait == overhead - SOURCE_FILL - 1):
                m.d.sync += capturing.eq(1)  # the new layer's first event, held by RUN
            with m.Elif(wait == overhead - SOURCE_FILL):
                m.next = "RUN"
        with m.State("DONE"):
            m.d.comb += results.valid.eq(~seq.counted)
            with m.If(results.ready & ~seq.counted):
                m.d.comb += layers.restart.eq(1)  # IDLE's register takes input events
                m.d.sync += capturing.eq(1)
                m.next = "IDLE"
    return seq
