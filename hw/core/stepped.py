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

from amaranth import C, Module, Mux, Signal

from firstspike.sw.cycles import (
    DRAIN,
    SOURCE_FILL,
    STEPPED_REPORT,
    stepped_drain,
    stepped_finish,
    stepped_layer_change,
    stepped_step_change,
    stepped_weight_read,
)
from firstspike.sw.layout import MemoryLayout
from firstspike.sw.params import CoreParams, Kernel
from firstspike.sw.topology import Conv2d

from ..lanes import operation_layout
from ..unravel import divide, position_coordinates, times, unravel
from .conv import ConvPasses, check_row, conv_passes
from .pipeline import Spikes
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
    input_take: Signal   # the input register takes the stream's head this cycle
    # The input event against the step, in registers the sequencer keeps (it owns the step):
    input_now: Signal     # input_step == step
    input_behind: Signal  # input_step < step
    input_early: Signal   # input_step < T - 1 (set as the event is taken)
    input_range: Signal   # the index or step is out of range (set as the event is taken)
    # A conv layer's event: its coordinates in the layer's input map (before pooling).
    channel: Signal
    y: Signal
    x: Signal


def _map_extent(params: CoreParams, axis: int) -> int:
    """The largest channel count, height or width (``axis`` 0, 1, 2) of a conv layer's input map."""
    return max([s.input_map.as_tuple()[axis] for s in params.shapes if isinstance(s, Conv2d)], default=1)


def _coordinates(m: Module, params: CoreParams, k: int, index, position) -> tuple:
    """``(c, y, x)`` in layer ``k``'s input map of an event: an input index (``k = 0``) or a
    conv layer's ``(channel, position)`` (the core runs conv and pooled layers only there)."""
    shape = params.layer_shape(k)
    assert shape.input_map is not None
    if k == 0:
        return unravel(m, index, shape.input_map, f"input_{k}")
    y, x = position_coordinates(m, position, shape.input_map, f"queued_{k}")
    return index, y, x


def _row(m: Module, params: CoreParams, layout: MemoryLayout, k: int, index, position):
    """A dense layer ``k``'s first weight row for an event (its slot times its folds)."""
    shape = params.layer_shape(k)
    if k == 0 or not isinstance(params.layer_shape(k - 1), Conv2d):
        slot = index
    elif shape.pool is None:  # flattened channel-major
        slot = times(index, params.positions(k - 1)) + position
    else:
        assert shape.input_map is not None
        c, y, x = _coordinates(m, params, k, index, position)
        seen = shape.seen_map()
        assert seen is not None
        py, _ = divide(m, y, shape.pool.size, shape.input_map.height, f"pooled_y_{k}")
        px, _ = divide(m, x, shape.pool.size, shape.input_map.width, f"pooled_x_{k}")
        slot = times(times(c, seen.height) + py, seen.width) + px
    return layout.weight_base[k] + times(slot, layout.folds[k])


def stepped_source(m: Module, params: CoreParams, layout: MemoryLayout, *, layer: Signal, events, queue,
                   pending_step: Signal) -> SteppedSource:
    p, n_layers = params.lanes, params.n_layers
    widest = max(max(params.layer_sizes[:-1]), max(layout.folds) * p) + 1
    row_shape = range(max(2, layout.weight_rows))
    coordinates = [range(max(2, _map_extent(params, axis))) for axis in range(3)]
    source = SteppedSource(
        valid=Signal(name="source_valid"), end=Signal(name="source_end"),
        index=Signal(range(widest), name="source_index"), step=Signal(params.time_bits, name="source_step"),
        row=Signal(row_shape, name="source_row"), bad=Signal(name="source_bad"), held=Signal(name="source_held"),
        take=Signal(name="source_take"), end_take=Signal(name="source_end_take"),
        capture=Signal(name="source_capture"), last=Signal(name="source_last"), known=Signal(name="source_known"),
        input_held=Signal(name="source_input_held"), input_end=Signal(name="source_input_end"),
        input_step=Signal(params.time_bits, name="source_input_step"), input_take=Signal(name="source_input_take"),
        input_now=Signal(init=1, name="source_input_now"), input_behind=Signal(name="source_input_behind"),
        input_early=Signal(init=params.time_steps > 1, name="source_input_early"),
        input_range=Signal(name="source_input_range"),
        channel=Signal(coordinates[0], name="source_channel"), y=Signal(coordinates[1], name="source_y"),
        x=Signal(coordinates[2], name="source_x"))
    conv = [isinstance(params.layer_shape(k), Conv2d) for k in range(n_layers)]

    # The input stream's register (layer 0).
    in_index = Signal(range(widest))
    in_row = Signal(row_shape)
    in_at = [Signal(shape, name=f"input_{axis}") for axis, shape in zip("cyx", coordinates)]
    in_take = source.input_take
    head = events.payload
    m.d.comb += events.ready.eq(in_take)
    # (Worked out outside the If below: the divisions' multipliers must not wait for in_take.)
    head_at = _coordinates(m, params, 0, head.index, 0) if conv[0] else ()
    with m.If(in_take):
        m.d.sync += [source.input_held.eq(1), source.input_end.eq(head.end), in_index.eq(head.index),
                     source.input_step.eq(head.step), source.input_early.eq(head.step < params.time_steps - 1),
                     source.input_range.eq(_bad_event(params, events, head.index, head.step, C(0, 1)))]
        if conv[0]:
            m.d.sync += [r.eq(v) for r, v in zip(in_at, head_at)]
        else:
            m.d.sync += in_row.eq(head.index * layout.folds[0])
    with m.Elif((layer == 0) & (source.take | source.end_take)):
        m.d.sync += source.input_held.eq(0)

    # The queue's register (later layers): the previous layer's spikes at this step.
    q_held = Signal()
    q_index = Signal(range(widest))
    q_row = Signal(row_shape)
    q_at = [Signal(shape, name=f"queued_{axis}") for axis, shape in zip("cyx", coordinates)]
    q_take = Signal()
    row_now = Signal(row_shape)
    at_now = [Signal(shape, name=f"queued_{axis}_now") for axis, shape in zip("cyx", coordinates)]
    with m.Switch(layer):
        for k in range(1, n_layers):
            with m.Case(k):
                if conv[k]:
                    m.d.comb += [r.eq(v) for r, v in zip(at_now, _coordinates(m, params, k, queue.index,
                                                                             queue.position))]
                else:
                    m.d.comb += row_now.eq(_row(m, params, layout, k, queue.index, queue.position))
    m.d.comb += queue.take.eq(q_take)
    with m.If(q_take):
        m.d.sync += [q_held.eq(1), q_index.eq(queue.index), q_row.eq(row_now),
                     *(r.eq(v) for r, v in zip(q_at, at_now))]
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
        *(held.eq(Mux(first, mine, queued)) for held, mine, queued in zip((source.channel, source.y, source.x),
                                                                           in_at, q_at)),
        # The event behind the held one: the stream's head, or the queue's next.
        source.known.eq(Mux(first, events.valid, queue.valid | queue.exhausted)),
        source.last.eq(Mux(first, head.end | (head.step != source.input_step), ~queue.valid)),
    ]
    m.d.comb += source.bad.eq(first & (source.input_range | source.input_behind))
    return source


def stepped_sequence(m: Module, params: CoreParams, layout: MemoryLayout, *, layers: Layers,
                     source: SteppedSource, step: Signal, queue, decision, events, results, write, busy,
                     spikes: Spikes) -> Sequencer:
    """The stepped schedule's sequencer; ``spikes``: what stage 2 reports (the spikes of
    the layer being run, of the output layer)."""
    spiked, output_spiked = spikes.any, spikes.output
    last_step = params.time_steps - 1
    # After the last run: SETTLE and DRAIN, then the decision unit's remaining latency.
    drain = stepped_drain(params)
    finish = stepped_finish(params) - stepped_step_change(params)
    settle = stepped_weight_read(params) + STEPPED_REPORT  # the last fold's weights read, then its report
    assert DRAIN + settle == drain  # SETTLE, then DRAIN
    assert finish >= 1 and stepped_step_change(params) == drain
    assert stepped_layer_change(params) == drain + SOURCE_FILL
    assert 1 + decision.latency <= DRAIN + finish
    layer = layers.layer

    seq = Sequencer.create(m, params, layout, layers, source)
    fold, in_pass = seq.fold, seq.in_pass
    pass_op = Signal(operation_layout(params))
    pass_takes = Signal()
    fresh = Signal()
    wait = Signal(range(finish + 1))
    settled = Signal(range(settle))  # cycles in SETTLE (0 in every other state)
    run_spiked = Signal()   # the layer being run spiked at this step
    decided = Signal()      # an output fired: the decision is final at this step
    check = Signal()        # this step checks every layer: t = 0, t = T-1, or a ramp's every step
    # What the sequencer's decisions ask of the step is kept in registers beside it.
    at_first, at_last = Signal(init=1, name="at_first_step"), Signal(init=last_step == 0, name="at_last_step")
    near_end = Signal(init=last_step <= 1, name="near_last_step")  # step + 1 >= T - 1
    m.d.comb += check.eq(at_first | at_last | (params.kernel is Kernel.RAMP))
    # (layer 0's event at this step; a later layer's events are all at this step)
    now = Mux(layer == 0, source.input_now, 1)

    # The pass a new one would be, from the held event.
    new_op = Signal(operation_layout(params))
    new_takes, new_ready = Signal(), Signal()
    m.d.comb += [new_op.fresh.eq(fresh), new_op.step.eq(step), new_op.span.eq(1)]
    with m.If(source.valid & source.bad):
        pass  # dropped in RUN with the error flag
    with m.Elif(source.valid & now):
        with m.If(source.known):
            m.d.comb += [new_op.add.eq(1), new_op.end_of_step.eq(source.last), new_takes.eq(1), new_ready.eq(1)]
    with m.Elif(source.valid | source.end):  # no (more) events at this step: a pass that only ends it
        m.d.comb += [new_op.end_of_step.eq(1), new_ready.eq(1)]

    m.d.comb += [
        seq.op.eq(Mux(in_pass, pass_op, new_op)),
        seq.final.eq(seq.op.end_of_step & at_last),
        seq.weight_row.eq(Mux(in_pass, seq.pass_row, source.row) + fold),
        seq.state_row.eq(layers.state_base + fold),
    ]
    last_fold = seq.last_fold
    conv = [isinstance(params.layer_shape(k), Conv2d) for k in range(params.n_layers)]
    first_run = "CONV_ADD" if conv[0] else "RUN"  # layer 0's run at a step
    conv_run = _ConvRun.build(m, params, layout, layers, source) if any(conv) else None

    # The next step with work: every step for ramp; for step the next input event's step,
    # or T-1 (the fallback's check), whichever comes first.
    # (each choice from registers: the input event's relations to the step, kept below)
    to_event, to_last = Signal(), Signal()  # else one more
    if params.kernel is not Kernel.RAMP:
        later = ~source.input_now & ~source.input_behind  # input_step > step
        ahead = source.input_held & ~source.input_end & later
        m.d.comb += [to_event.eq(ahead & source.input_early),
                     # (else an event out of time order, dropped at the next step)
                     to_last.eq(~to_event & (ahead | source.input_end | later | near_end))]
    # The step changes in two places: 0 as an inference starts (``step_start``), the next
    # step as the sequencer moves on (``moves``; never while the input register takes an
    # event: DRAIN does not capture, NEXT_STEP moves only while an event is held). Its
    # relations to the input event are worked out for each of the three next steps from
    # registers in parallel. Each register's value after a move and otherwise (a start, an
    # event taken, or kept) is formed apart, and what it becomes for a quiet last fold and
    # for one that fired: whether it fired (its lanes or-ed, late in DRAIN) chooses last.
    step_start = Signal()
    head_step = events.payload.step
    kept = (step, at_first, at_last, near_end, source.input_now, source.input_behind)
    moved = [Signal.like(register, name=f"{register.name}_moved") for register in kept]
    other = [Signal.like(register, name=f"{register.name}_other") for register in kept]
    m.d.comb += [value.eq(register) for value, register in zip(other, kept)]
    with m.If(step_start):
        m.d.comb += [value.eq(start) for value, start in zip(other, (
            0, 1, last_step == 0, last_step <= 1, Mux(source.input_take, head_step, source.input_step) == 0, 0))]
    with m.Elif(source.input_take):
        m.d.comb += [other[4].eq(head_step == step), other[5].eq(head_step < step)]
    with m.If(to_event):
        m.d.comb += [value.eq(after) for value, after in zip(moved, (
            source.input_step, source.input_step == 0, 0, source.input_step + 1 >= last_step, 1, 0))]
    with m.Elif(to_last):
        m.d.comb += [value.eq(after) for value, after in zip(moved, (
            last_step, last_step == 0, 1, 1, source.input_step == last_step, source.input_early))]
    with m.Else():
        m.d.comb += [value.eq(after) for value, after in zip(moved, (
            step + 1, 0, step + 1 == last_step, step + 2 >= last_step, source.input_step == step + 1,
            source.input_behind | source.input_now))]
    next_known = Signal()
    m.d.comb += next_known.eq(source.input_held | (params.kernel is Kernel.RAMP))

    def finishes(output_fired):  # DRAIN's choices: the decision is final, or T-1 is done
        return layers.is_last & (decided | output_fired | at_last)

    def advances(fired):  # the next layer runs at this step
        return ~layers.is_last & (run_spiked | fired | check)

    draining, waiting = Signal(), Signal()  # in DRAIN, in NEXT_STEP
    moves = {fired: Signal(name=f"step_moves_{name}") for fired, name in ((0, "quiet"), (1, "fired"))}
    m.d.comb += [moves[0].eq((draining & ~finishes(0) & ~advances(0) | waiting) & next_known),
                 moves[1].eq((draining & ~finishes(spikes.last) & ~advances(spikes.handed) | waiting) & next_known)]
    for register, after, value in zip(kept, moved, other):
        becomes = {fired: Signal.like(register, name=f"{register.name}_{name}")
                   for fired, name in ((0, "if_quiet"), (1, "if_fired"))}
        m.d.comb += [becomes[fired].eq(Mux(moves[fired], after, value)) for fired in (0, 1)]
        m.d.sync += register.eq(Mux(spikes.fired, becomes[1], becomes[0]))

    # The decision unit (and the state rows' epoch) cleared from a register in the run's
    # first cycle, not behind the start's decision: nothing reaches it for cycles yet.
    clearing = Signal()
    m.d.sync += clearing.eq(0)
    m.d.comb += decision.clear.eq(clearing)

    with m.If(spiked):
        m.d.sync += run_spiked.eq(1)
    with m.If(output_spiked):
        m.d.sync += decided.eq(1)

    m.d.sync += settled.eq(0)  # (SETTLE counts it up)
    with m.FSM(name="sequencer"):
        with m.State("IDLE"):
            # A row is not taken as an inference starts: it lands a cycle later (host_writes).
            m.d.comb += [write.ready.eq(~seq.starting), seq.idle.eq(1), source.capture.eq(1)]
            m.d.comb += seq.starting.eq(events.valid | source.input_held)
            with m.If(seq.starting & ~seq.hold):
                m.d.comb += [layers.restart.eq(1), seq.fold_restart.eq(1)]
                m.d.sync += [
                    in_pass.eq(0), fresh.eq(1), seq.cycles.eq(0),
                    seq.input_spikes.eq(0), seq.layer_spikes.eq(0), seq.error.eq(0), run_spiked.eq(0),
                    decided.eq(0),
                ]
                m.d.comb += step_start.eq(1)
                m.d.sync += clearing.eq(1)
                m.next = first_run
        with m.State("RUN"):
            m.d.comb += [busy.eq(1), source.capture.eq(1)]
            with m.If(~in_pass & source.valid & source.bad):
                m.d.comb += source.take.eq(1)
                m.d.sync += seq.error.eq(1)
            with m.Elif(in_pass | new_ready):
                m.d.comb += seq.issue.eq(1)
                m.d.comb += seq.count.eq(1)
                with m.If(~in_pass):
                    m.d.sync += [pass_op.eq(new_op), seq.pass_row.eq(source.row), pass_takes.eq(new_takes),
                                 in_pass.eq(1)]
                with m.If(last_fold):
                    m.d.comb += seq.fold_restart.eq(1)
                    m.d.sync += [in_pass.eq(0), fresh.eq(0)]
                    with m.If(Mux(in_pass, pass_takes, new_takes)):
                        m.d.comb += source.take.eq(1)
                        with m.If(layer == 0):
                            m.d.comb += seq.input_spike.eq(1)
                    with m.If(seq.op.end_of_step):
                        m.next = "SETTLE"
                with m.Else():
                    m.d.comb += seq.fold_advance.eq(1)
        with m.State("SETTLE"):  # the last fold on its way to stage 2a (the weights' read), then 2b and 2c
            m.d.comb += busy.eq(1)
            m.d.comb += seq.count.eq(1)
            m.d.sync += settled.eq(settled + 1)
            with m.If(settled == settle - 1):
                m.next = "DRAIN"
        with m.State("DRAIN"):  # the last fold's stage 2d reports the run's spikes
            m.d.comb += [busy.eq(1), queue.switch.eq(1)]
            m.d.comb += seq.count.eq(1)
            m.d.sync += [run_spiked.eq(0), wait.eq(0)]
            m.d.comb += draining.eq(1)
            with m.If(finishes(output_spiked)):
                m.next = "FINISH"
            with m.Elif(advances(spiked)):
                m.d.comb += layers.advance.eq(1)
                m.d.sync += fresh.eq(at_first)
                m.next = "FILL"
            with m.Elif(next_known):  # (the step moves: ``moves`` above)
                m.d.comb += layers.restart.eq(1)
                m.d.sync += fresh.eq(0)
                m.next = first_run
            with m.Else():  # the next input event has not come yet
                m.d.comb += layers.restart.eq(1)
                m.d.sync += fresh.eq(0)
                m.next = "NEXT_STEP"
        with m.State("FILL"):  # the next layer's first event, from the queue
            m.d.comb += [busy.eq(1), source.capture.eq(1)]
            m.d.comb += seq.count.eq(1)
            if conv_run is None:
                m.next = "RUN"
            else:
                with m.If(layers.conv):
                    m.next = "CONV_ADD"
                with m.Else():
                    m.next = "RUN"
        with m.State("FINISH"):  # the decision unit settles
            m.d.comb += busy.eq(1)
            m.d.comb += seq.count.eq(1)
            m.d.sync += wait.eq(wait + 1)
            with m.If(wait == finish - 1):
                m.next = "DONE"
        with m.State("NEXT_STEP"):  # waiting for the input stream (not counted: a stall)
            m.d.comb += [busy.eq(1), source.capture.eq(1), waiting.eq(1)]
            with m.If(next_known):  # (the step moves)
                m.next = first_run
        if conv_run is not None:
            # Every position is checked at t = 0 (a neuron may start above its threshold) and,
            # for ramp, at every step (every potential moves); else the ones the adds touched.
            sweep = at_first | (params.kernel is Kernel.RAMP)
            conv_run.states(m, layers=layers, source=source, seq=seq, step=step, sweep=sweep, busy=busy, now=now)
        with m.State("DONE"):
            m.d.comb += results.valid.eq(~seq.counted)
            with m.If(results.ready & ~seq.counted):
                m.d.comb += layers.restart.eq(1)
                m.next = "FLUSH"
        with m.State("FLUSH"):  # the input events of this inference not taken, to its end marker
            m.d.comb += source.capture.eq(1)
            with m.If(source.input_held & source.input_end):
                m.d.comb += source.end_take.eq(1)
                m.next = "IDLE"
            with m.Elif(source.input_held):
                m.d.comb += source.take.eq(1)
    return seq


@dataclass(frozen=True)
class _ConvRun:
    """A conv layer's run at a step: its units, built outside the FSM, and its states."""

    units: ConvPasses
    sweep: Signal     # the checks go over every position
    swept: Signal     # the position a sweep is at
    position: Signal  # the position being checked
    check_row: Signal  # its first row of neuron state

    @classmethod
    def build(cls, m: Module, params: CoreParams, layout: MemoryLayout, layers: Layers,
              source: SteppedSource) -> _ConvRun:
        units = conv_passes(m, params, layout, layer=layers.layer, source=source)
        sweep, swept, position = Signal(), Signal.like(units.position), Signal.like(units.position)
        m.d.comb += position.eq(Mux(sweep, swept, units.touched.positions.payload))
        return cls(units, sweep, swept, position, check_row(m, params, layout, layers.layer, position))

    def states(self, m: Module, *, layers: Layers, source: SteppedSource, seq: Sequencer, step: Signal,
               sweep, busy: Signal, now) -> None:
        """``CONV_ADD`` takes the layer's events of ``step`` into its kernel-offset unit and
        issues a pass per offset in range; one cycle turns (the touched list settles);
        ``CONV_CHECK`` ends the step at each touched position, or at every position where
        ``sweep``; ``now``: the held event is at ``step``. The cycles are
        ``sw/cycles.py: conv_run_cycles``."""
        _conv_states(m, self, layers=layers, source=source, seq=seq, step=step, sweep_now=sweep, busy=busy,
                     now=now)


def _conv_states(m: Module, run: _ConvRun, *, layers: Layers, source: SteppedSource, seq: Sequencer,
                 step: Signal, sweep_now, busy: Signal, now) -> None:
    layer, fold = layers.layer, seq.fold
    units, sweep, swept, position = run.units, run.sweep, run.swept, run.position
    touched = units.touched
    last_fold = seq.last_fold
    owed = Signal()   # an event went in and has not had its cycle: it reached no output
    started = Signal()  # an event of this run went in
    known = source.valid | source.end

    with m.State("CONV_ADD"):
        m.d.comb += [busy.eq(1), source.capture.eq(1),
                     units.feed.eq(source.valid & ~source.bad & now),
                     # (Outside the If chain below, which tests `fed`: `fed` follows `done`.)
                     units.done.eq(units.offered & last_fold)]
        with m.If(units.fed):
            m.d.comb += source.take.eq(1)
            m.d.sync += started.eq(1)
            with m.If(layer == 0):
                m.d.comb += seq.input_spike.eq(1)
        with m.If(units.offered):
            m.d.comb += [seq.issue.eq(1), seq.op.add.eq(1), seq.op.end_of_step.eq(0), seq.op.fresh.eq(0),
                         seq.op.step.eq(step), seq.weight_row.eq(units.weight_row + fold),
                         seq.state_row.eq(units.state_row + fold), seq.position.eq(units.position)]
            m.d.comb += seq.count.eq(1)
            m.d.sync += owed.eq(units.fed)
            with m.If(fold == 0):
                m.d.comb += [touched.mark.eq(1), touched.mark_position.eq(units.position)]
            with m.If(last_fold):
                m.d.comb += seq.fold_restart.eq(1)
            with m.Else():
                m.d.comb += seq.fold_advance.eq(1)
        with m.Elif(units.fed):  # the unit was idle: the event's first cycle
            m.d.sync += owed.eq(1)
            # Counted for the run's first event, or as the cycle owed by one that reached no
            # output; else the unit only idled because the event came late (a stall: with
            # events back to back, it goes in with the last pass of the one before).
            with m.If(~started | owed):
                m.d.comb += seq.count.eq(1)
        with m.Elif(source.valid & source.bad):  # dropped, not counted: the host broke the input contract
            m.d.comb += source.take.eq(1)
            m.d.sync += seq.error.eq(1)
        with m.Elif(owed & known):  # the cycle of an event that reached no output
            m.d.comb += seq.count.eq(1)
            m.d.sync += owed.eq(0)
        with m.Elif(known):  # the step's adds are done: the turn
            m.d.comb += seq.count.eq(1)
            m.d.sync += [sweep.eq(sweep_now), swept.eq(0), started.eq(0)]
            m.d.comb += touched.restart.eq(sweep_now)
            m.next = "CONV_CHECK"

    with m.State("CONV_CHECK"):
        m.d.comb += [busy.eq(1), source.capture.eq(1)]
        m.d.comb += seq.count.eq(1)
        with m.If(sweep | touched.positions.valid):
            m.d.comb += [seq.issue.eq(1), seq.op.add.eq(0), seq.op.end_of_step.eq(1), seq.op.fresh.eq(0),
                         seq.op.step.eq(step), seq.state_row.eq(run.check_row + fold),
                         seq.position.eq(position)]
            with m.If(sweep & (fold == 0)):
                m.d.comb += [touched.clear.eq(1), touched.clear_position.eq(swept)]
            with m.If(last_fold):
                m.d.comb += seq.fold_restart.eq(1)
                with m.If(sweep):
                    m.d.sync += swept.eq(swept + 1)
                    with m.If(swept == units.positions - 1):
                        m.next = "SETTLE"
                with m.Else():
                    m.d.comb += touched.positions.ready.eq(1)
                    with m.If(touched.last):
                        m.next = "SETTLE"
            with m.Else():
                m.d.comb += seq.fold_advance.eq(1)
        with m.Else():  # no position touched
            m.next = "SETTLE"
