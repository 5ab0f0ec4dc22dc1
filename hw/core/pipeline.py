"""The pipeline behind the sequencer: stage 1 addresses the weight memory with the fold
being issued; while the row is read (two cycles on the layered schedule, four on the
stepped: no path runs from a block RAM through the multiplexer between them into the
lanes, nor from the address sum to the block RAMs) the fold's record is carried along
and, a cycle before its weights arrive, addresses the state, threshold and initial rows.
Stage 2 runs the lane array on what the memories read and writes the new state back,
reports the spikes (to the queue, the trace and the counters) and feeds the decision unit.

Stage 2 is two: on the layered schedule (:func:`lane_stage`) 2a runs the whole lane array
into a register and 2b writes back; on the stepped (:func:`stepped_lane_stage`) 2a adds the
row of weights exactly (:class:`~firstspike.hw.lanes.LaneAdd`), 2b ends the step (saturate,
compare, fire: :class:`~firstspike.hw.lanes.LaneEnd`) and writes back, and 2c, a register
on, hands the spikes to the queue, the trace and the sequencer (the comparison and the
queue's push were one path).

A fold revisited the cycle after (a layer of one fold; a conv layer's position the next
event reaches again) reads its row before 2b has written it: it takes the new state from
the register in flight instead. Two cycles behind, the state memory's read port is
transparent for its write port, so the read returns the row being written: no stall.

With conv layers a row of neuron state also holds the parity of the inference that last
wrote it: a row from an earlier inference starts fresh, so a position's first add at
``t = 0`` needs no sweep of fresh rows before it (every row is written at ``t = 0``: the
first step checks every position of every layer).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

from amaranth import C, Cat, Module, Mux, Signal, Value, signed
from amaranth.lib.memory import ReadPort, WritePort

from firstspike.sw.cycles import LAYERED_WEIGHT_READ, STEPPED_REPORT, stepped_weight_read
from firstspike.sw.params import CoreParams
from firstspike.sw.topology import Conv2d, fan_out

from ..banks import PortView
from ..lanes import operation_layout, state_layout
from .layouts import unpack_row
from .sequencer import Layers, Sequencer

__all__ = ["Memories", "Spikes", "issue_stage", "lane_stage", "stepped_lane_stage"]


@dataclass(frozen=True)
class Memories:
    """The read and write ports of the four memories. The weights' read port is a
    :class:`~firstspike.hw.banks.BankedMemory`'s (``addr``, ``data`` four cycles later) on
    the stepped schedule, a plain one's otherwise."""

    weights_r: ReadPort | PortView
    thresholds_r: ReadPort
    initial_r: ReadPort
    states_r: ReadPort
    states_w: WritePort


def issue_stage(m: Module, memories: Memories, *, seq: Sequencer) -> None:
    """Stage 1: the fold's row of weights, as the sequencer addresses it. The other memories
    answer in a cycle, so they are addressed as the weights arrive (the lane stages)."""
    m.d.comb += memories.weights_r.addr.eq(seq.weight_row)


@dataclass(frozen=True)
class Stage:
    """What a fold carries down the pipeline: registered once per stage."""

    valid: Signal
    op: Signal
    fold: Signal
    row: Signal       # its row of neuron state
    position: Signal  # a conv layer's position (0 for dense)
    lanes: Signal     # the lanes that hold a neuron
    final: Signal     # the layer's last pass
    last: Signal      # the output layer
    layer: Signal
    neuron_row: Signal  # its row of thresholds and initial potentials

    @classmethod
    def behind_issue(cls, m: Module, params: CoreParams, seq: Sequencer, layers: Layers, name: str) -> Stage:
        """The stage after issue (stage 1): the fold the sequencer issued last cycle."""
        stage = cls(Signal(name=f"{name}_valid"), Signal(operation_layout(params), name=f"{name}_op"),
                    Signal.like(seq.fold, name=f"{name}_fold"), Signal.like(seq.state_row, name=f"{name}_row"),
                    Signal.like(seq.position, name=f"{name}_position"), Signal(params.lanes, name=f"{name}_lanes"),
                    Signal(name=f"{name}_final"), Signal(name=f"{name}_last"),
                    Signal.like(layers.layer, name=f"{name}_layer"),
                    Signal(len(layers.neuron_base) + 1, name=f"{name}_neuron_row"))
        m.d.sync += [stage.valid.eq(seq.issue), stage.op.eq(seq.op), stage.fold.eq(seq.fold),
                     stage.row.eq(seq.state_row), stage.position.eq(seq.position), stage.lanes.eq(seq.lanes_valid),
                     stage.final.eq(seq.final), stage.last.eq(layers.is_last), stage.layer.eq(layers.layer),
                     stage.neuron_row.eq(layers.neuron_base + seq.fold)]
        return stage

    def behind(self, m: Module, name: str) -> Stage:
        """The next stage: this one's fold, a cycle later."""
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__}
        stage = Stage(**{f: Signal.like(v, name=f"{name}_{f}") for f, v in fields.items()})
        m.d.sync += [getattr(stage, f).eq(v) for f, v in fields.items()]
        return stage


@dataclass(frozen=True)
class Spikes:
    """What stage 2 reports to the sequencer this cycle. ``any`` and ``output`` are
    ``fired`` and a condition of registers (``handed``, ``last``): the sequencer can work
    out what it would do either way before the fold's late ``fired`` chooses."""

    any: Signal     # a lane fired whose spike the next layer takes (all but skipped conv positions)
    output: Signal  # an output neuron fired
    fired: Signal   # a lane of the fold fired
    handed: Signal  # the next layer takes the fold's spikes
    last: Signal    # the fold is the output layer's

    @classmethod
    def create(cls, prefix: str) -> Spikes:
        return cls(*(Signal(name=f"{prefix}_{name}") for name in ("spiked", "output_spiked", "fired", "handed",
                                                                    "last")))

    def eq(self, other: Spikes) -> list:
        return [mine.eq(theirs) for mine, theirs in zip(astuple(self), astuple(other))]


def reached_positions(params: CoreParams, layer: int) -> int:
    """Bit ``q`` set: the spikes of ``layer``'s position ``q`` reach a neuron of the next
    layer (its pooling does not drop them, its stride does not skip them)."""
    shape, size = params.layer_shape(layer + 1), params.layer_sizes[layer + 1]
    positions = params.positions(layer)
    reached = (fan_out(shape, size) > 0).reshape(-1, positions)
    assert (reached == reached[0]).all()  # a matter of position, not channel
    return sum(1 << q for q in range(positions) if reached[0, q])


def write_back(m: Module, params: CoreParams, memories: Memories, *, valid, row, state, clear) -> Value | None:
    """Write ``state`` (a row of lanes) back at ``row`` where ``valid``. With conv layers a
    row also holds the parity of the inference that wrote it (flipped by ``clear``); returns
    whether the row being read is stale (from an earlier inference: it starts fresh)."""
    m.d.comb += [memories.states_w.addr.eq(row), memories.states_w.en.eq(valid)]
    if params.fully_connected:
        m.d.comb += memories.states_w.data.eq(Cat(*state))
        return None
    epoch = Signal()  # the parity of the inference running
    with m.If(clear):
        m.d.sync += epoch.eq(~epoch)
    m.d.comb += memories.states_w.data.eq(Cat(*state, epoch))
    return memories.states_r.data[-1] != epoch


def lane_stage(m: Module, params: CoreParams, memories: Memories, *, layers: Layers, seq: Sequencer,
               lanes, queue, decision, trace, tabled: bool) -> tuple[Spikes, Stage]:
    """Stages 2a and 2b of the layered schedule: 2a (when the weights arrive,
    :data:`~firstspike.sw.cycles.LAYERED_WEIGHT_READ` cycles after issue; the other memories
    are read the cycle before) runs the lane array into a register; 2b writes the new row
    back and reports its spikes (the decision unit one register on). A fold in 2a whose row
    2b holds (a fold revisited the cycle after: a layer of one fold) takes 2b's register,
    the row's new state, instead of what the memory read before 2b wrote it; two cycles
    behind, the state memory's transparent read port gives the row being written.

    Returns the spikes, and the stage that addresses the state, threshold and initial rows.
    """
    assert params.fully_connected  # conv layers run on the stepped schedule
    p = params.lanes
    state = state_layout(params)
    addressing = _flight(m, params, memories, seq, layers, LAYERED_WEIGHT_READ)
    a = addressing.behind(m, "stage2a")
    b = a.behind(m, "stage2b")
    read = [Signal(state, name=f"stage2a_read_{lane}") for lane in range(p)]
    b_state = [Signal(state, name=f"stage2b_state_{lane}") for lane in range(p)]
    b_time = [Signal(params.time_bits, name=f"stage2b_time_{lane}") for lane in range(p)]
    b_potential = [Signal(signed(params.potential_bits), name=f"stage2b_potential_{lane}") for lane in range(p)]
    b_fire = Signal(p, name="stage2b_fire")
    # The row in flight in 2b is this fold's row (compared a stage early). Consecutive
    # issues address the same row only in a layer of one fold (a pass runs a layer's folds
    # in order, the next pass from its first): without one, no forwarding is built.
    forward = Signal()
    if any(params.folds(k) == 1 for k in range(params.n_layers)):
        m.d.sync += forward.eq(a.valid & (a.row == addressing.row))
    m.d.comb += [
        lanes.op.eq(a.op),
        lanes.lanes_valid.eq(a.lanes),
        *unpack_row(lanes.weights, memories.weights_r.data),
        *unpack_row(lanes.thresholds, memories.thresholds_r.data),
        *unpack_row(lanes.initial, memories.initial_r.data),
        *unpack_row(read, memories.states_r.data),
        *(lanes.state_in[lane].eq(read[lane]) for lane in range(p)),
        lanes.forward.eq(forward),
        *(lanes.forwarded[lane].eq(b_state[lane]) for lane in range(p)),
    ]
    m.d.sync += [
        *(b_state[lane].eq(lanes.state_out[lane]) for lane in range(p)),
        *(b_time[lane].eq(lanes.time[lane]) for lane in range(p)),
        *(b_potential[lane].eq(lanes.potential[lane]) for lane in range(p)),
        b_fire.eq(lanes.fire),
    ]
    write_back(m, params, memories, valid=b.valid, row=b.row, state=b_state, clear=decision.clear)
    return _report(m, params, valid=b.valid, last=b.last, layer=b.layer, position=b.position, fold=b.fold,
                   op=b.op, lanes_valid=b.lanes, final=b.final, fire=b_fire, times=b_time,
                   potentials=b_potential, fired=[s.fired for s in b_state],
                   spike_times=[s.time for s in b_state], seq=seq, queue=queue, decision=decision,
                   trace=trace, tabled=tabled), addressing


def _flight(m: Module, params: CoreParams, memories: Memories, seq: Sequencer, layers: Layers,
            weight_read: int) -> Stage:
    """The fold's record in flight while its weights are read (``weight_read`` cycles),
    ending with the stage that addresses the other memories (they answer in a cycle), a
    cycle before the weights arrive."""
    assert weight_read >= 2
    flight = [Stage.behind_issue(m, params, seq, layers, "stage1b")]
    for k in range(weight_read - 2):
        flight.append(flight[-1].behind(m, f"stage1{'cdefgh'[k]}"))
    addressing = flight[-1]
    m.d.comb += [memories.thresholds_r.addr.eq(addressing.neuron_row),
                 memories.initial_r.addr.eq(addressing.neuron_row),
                 memories.states_r.addr.eq(addressing.row)]
    return addressing


def _popcount(bits: list) -> Value:
    """The number of set ``bits`` as a balanced tree of adders: a chain of ``P`` adders is
    ``P`` levels deep (and, at P = 200, deeper than Yosys' recursion can follow)."""
    if len(bits) == 1:
        return bits[0].as_unsigned()
    half = len(bits) // 2
    return _popcount(bits[:half]) + _popcount(bits[half:])


def _report(m: Module, params: CoreParams, *, valid, last, layer, position, fold, op, lanes_valid, final,
            fire, times, potentials, fired, spike_times, seq: Sequencer, queue, decision, trace,
            tabled: bool) -> Spikes:
    """What the stage that writes back reports: spikes to the queue (those the next layer
    takes), the trace and the counters; the decision unit's inputs one register on."""
    spikes = _hand_on(m, params, valid=valid, last=last, layer=layer, position=position, fold=fold, op=op,
                      fire=fire, times=times, fired=fired, spike_times=spike_times, queue=queue, trace=trace,
                      tabled=tabled)
    _count_and_decide(m, params, valid=valid, last=last, layer=layer, fold=fold, lanes_valid=lanes_valid,
                      final=final, fire=fire, times=times, potentials=potentials, seq=seq, decision=decision)
    return spikes


def _hand_on(m: Module, params: CoreParams, *, valid, last, layer, position, fold, op, fire, times, fired,
             spike_times, queue, trace, tabled: bool, fire_groups: Value | None = None) -> Spikes:
    """A fold's spikes to the queue (those the next layer takes), the trace and the
    sequencer. ``fire_groups``: ``fire``'s lanes or-ed in groups a stage before (see
    :func:`_fire_groups`), so the test for any spike is shallower."""
    p, n_layers = params.lanes, params.n_layers
    handed = Signal()
    m.d.comb += handed.eq(1)
    with m.Switch(layer):
        for k in range(n_layers - 1):
            if isinstance(params.layer_shape(k), Conv2d):
                with m.Case(k):
                    reached = C(reached_positions(params, k), params.positions(k))
                    m.d.comb += handed.eq(reached.bit_select(position, 1))
    spiked = valid & ((fire if fire_groups is None else fire_groups) != 0)
    spikes = Spikes.create("stage2")
    m.d.comb += [spikes.any.eq(spiked & handed), spikes.output.eq(spiked & last), spikes.fired.eq(spiked),
                 spikes.handed.eq(handed), spikes.last.eq(last)]
    m.d.comb += [
        queue.push.eq(spiked & handed & ~last),
        trace.valid.eq(spiked),
        trace.payload.layer.eq(layer),
        trace.payload.position.eq(position),
        trace.payload.fold.eq(fold),
        trace.payload.fire.eq(fire),
        *(trace.payload.times[lane].eq(times[lane]) for lane in range(p)),
    ]
    if tabled:
        m.d.comb += [
            queue.fold.eq(fold), queue.fire.eq(fire),
            *(queue.fired[lane].eq(fired[lane]) for lane in range(p)),
            *(queue.times[lane].eq(spike_times[lane]) for lane in range(p)),
            queue.reading.eq(~last),
        ]
    else:
        m.d.comb += [queue.record.fold.eq(fold), queue.record.position.eq(position),
                     queue.record.step.eq(op.step), queue.record.fire.eq(fire)]
    return spikes


def _count_and_decide(m: Module, params: CoreParams, *, valid, last, layer, fold, lanes_valid, final, fire,
                      times, potentials, seq: Sequencer, decision) -> None:
    """The spike counters and the decision unit's inputs, each a register behind the lanes."""
    p, n_layers = params.lanes, params.n_layers
    # The spike counters count a register behind the lanes (the popcount and the sum would
    # otherwise follow the threshold comparison in one cycle); over more than one lane the
    # popcount is a register before the add, and over more than four lanes the lanes' counts
    # in groups of four a register before that (an adder tree and a 16-bit add would be one
    # path). They settle no later than the decision, whose latency grows with the lanes.
    counted = Signal(name="counted_valid")
    counted_fire, counted_layer = Signal(p, name="counted_fire"), Signal.like(layer, name="counted_layer")
    m.d.sync += [counted.eq(valid), counted_fire.eq(fire), counted_layer.eq(layer)]
    terms: list = [counted_fire[lane] for lane in range(p)]
    count_valid, count_layer = counted, counted_layer

    def behind(value, name: str) -> Signal:
        register = Signal.like(value, name=name)
        m.d.sync += register.eq(value)
        return register

    stages = (p > 1) + (p > FIRE_GROUP)
    assert 1 + decision.latency >= 2 + stages
    if p > FIRE_GROUP:
        groups = [Signal(range(FIRE_GROUP + 1), name=f"count_group_{g}") for g in range(0, p, FIRE_GROUP)]
        m.d.sync += [group.eq(_popcount(terms[g:g + FIRE_GROUP])) for group, g in zip(groups, range(0, p, FIRE_GROUP))]
        terms = list(groups)
        count_valid, count_layer = behind(count_valid, "count_groups_valid"), behind(count_layer, "count_groups_layer")
    if p > 1:
        total = Signal(range(p + 1), name="count")
        m.d.sync += total.eq(_popcount(terms))
        terms = [total]
        count_valid, count_layer = behind(count_valid, "count_valid"), behind(count_layer, "count_layer")
    count = _popcount(terms)
    with m.Switch(count_layer):
        for k in range(n_layers):
            with m.Case(k):
                with m.If(count_valid):
                    m.d.sync += seq.layer_spikes[k].eq(seq.layer_spikes[k] + count)
    # The decision unit behind a register: the lane arithmetic and the decision's
    # comparison trees would otherwise be one long path. It takes only the lanes that hold
    # output neurons.
    m.d.sync += [
        decision.valid.eq(valid & last),
        decision.final.eq(final),
        decision.fold.eq(fold),
        *(decision.times[lane].eq(times[lane]) for lane in range(decision.width)),
        decision.fire.eq(fire[:decision.width]),
        decision.lanes_valid.eq(lanes_valid[:decision.width]),
        *(decision.potential[lane].eq(potentials[lane]) for lane in range(decision.width)),
    ]


def stepped_lane_stage(m: Module, params: CoreParams, memories: Memories, *, layers: Layers, seq: Sequencer,
                       add, end, queue, decision, trace) -> tuple[Spikes, Stage]:
    """Stages 2a and 2b of the stepped schedule.

    2a (when the weights arrive, :func:`~firstspike.sw.cycles.stepped_weight_read` cycles after
    issue; the other memories are read the cycle before) adds the fold's row of weights to
    the state it read; 2b (the next) ends the step where the op says so and writes the row
    back, the counters and the decision unit taking its results into their registers; 2c
    reports the spikes to the queue, the trace and the sequencer. A fold issued
    the cycle after another on the same row (a one-fold layer's next event, a conv
    position the next offset reaches again) reads its row before 2b has written it: it
    takes 2a's register instead, which is already the row's new state, because the
    schedule never issues such a fold behind one that ends a step (an end of step is
    followed by DRAIN). Two cycles behind, the state memory's transparent read port gives
    the row being written. No stall, so the cycle contract has only the longer DRAIN
    (:func:`~firstspike.sw.cycles.stepped_drain`: the weights' read and 2c).

    Returns the spikes, and the stage that addresses the state, threshold and initial rows.
    """
    p = params.lanes
    state = state_layout(params)
    # The weights come stepped_weight_read() cycles after issue; the other memories, a cycle
    # after their address, are addressed the cycle before, from the fold's record in flight.
    addressing = _flight(m, params, memories, seq, layers, stepped_weight_read(params))
    a = addressing.behind(m, "stage2a")
    b = a.behind(m, "stage2b")
    b_state = [Signal(state, name=f"stage2b_state_{lane}") for lane in range(p)]
    b_thresholds = [Signal(signed(params.potential_bits), name=f"stage2b_threshold_{lane}") for lane in range(p)]
    m.d.sync += [b_state[lane].eq(add.state_out[lane]) for lane in range(p)]
    thresholds = Signal.like(memories.thresholds_r.data)
    m.d.sync += thresholds.eq(memories.thresholds_r.data)
    m.d.comb += unpack_row(b_thresholds, thresholds)

    forward = Signal()  # the row in flight in 2b is this fold's row (compared a stage early)
    m.d.sync += forward.eq(a.valid & (a.row == addressing.row) & ~a.op.end_of_step)
    row_bits = len(memories.states_w.data)
    lane_bits = row_bits - (0 if params.fully_connected else 1)
    read = [Signal(state, name=f"stage2a_read_{lane}") for lane in range(p)]
    m.d.comb += [
        add.op.eq(a.op),
        *unpack_row(add.weights, memories.weights_r.data),
        *unpack_row(add.initial, memories.initial_r.data),
        *unpack_row(read, memories.states_r.data[:lane_bits]),
        *(add.state_in[lane].eq(Mux(forward, b_state[lane], read[lane])) for lane in range(p)),
        end.op.eq(b.op), end.lanes_valid.eq(b.lanes),
        *(end.state_in[lane].eq(b_state[lane]) for lane in range(p)),
        *(end.thresholds[lane].eq(b_thresholds[lane]) for lane in range(p)),
    ]
    stale = write_back(m, params, memories, valid=b.valid, row=b.row, state=end.state_out, clear=decision.clear)
    if stale is not None:  # (a forwarded row is this inference's)
        m.d.comb += add.op.fresh.eq(a.op.fresh | (~forward & stale))
    # The counters and the decision take 2b's results into registers of their own; the
    # queue, the trace and the sequencer take them from 2d, two registers on (REPORT): 2c
    # holds the fire bits or-ed in groups, 2d whether any fired. (The lanes spread over the
    # die; whether a fold spiked, worked out beside them into one register, reaches the
    # queue's counts and the sequencer as one net: from 2c's groups it was the 97.6 MHz
    # ULX3S build's longest path, 10.2 ns.)
    _count_and_decide(m, params, valid=b.valid, last=b.last, layer=b.layer, fold=b.fold, lanes_valid=b.lanes,
                      final=b.final, fire=end.fire, times=end.time, potentials=end.potential, seq=seq,
                      decision=decision)
    assert STEPPED_REPORT == 2
    c = b.behind(m, "stage2c")
    c_fire = Signal(p, name="stage2c_fire")
    c_times = [Signal(params.time_bits, name=f"stage2c_time_{lane}") for lane in range(p)]
    c_groups = _fire_groups(m, end.fire, p, "stage2c_fire_groups")
    m.d.sync += [c_fire.eq(end.fire), *(c_times[lane].eq(end.time[lane]) for lane in range(p))]
    d = c.behind(m, "stage2d")
    d_fire = Signal(p, name="stage2d_fire")
    d_times = [Signal(params.time_bits, name=f"stage2d_time_{lane}") for lane in range(p)]
    d_any = Signal(name="stage2d_any_fired")
    m.d.sync += [d_fire.eq(c_fire), *(d_times[lane].eq(c_times[lane]) for lane in range(p)), d_any.eq(c_groups != 0)]
    spikes = _hand_on(m, params, valid=d.valid, last=d.last, layer=d.layer, position=d.position, fold=d.fold,
                      op=d.op, fire=d_fire, times=d_times, fired=None, spike_times=None, queue=queue, trace=trace,
                      tabled=False, fire_groups=d_any)
    return spikes, addressing


#: Lanes or-ed together a stage early by :func:`_fire_groups`: one LUT (4 inputs) each.
FIRE_GROUP = 4


def _fire_groups(m: Module, fire: Value, p: int, name: str) -> Signal:
    """A register of ``fire`` or-ed in groups of :data:`FIRE_GROUP` lanes, beside the
    register of ``fire`` itself: whether a fold spiked is then a tree over ``P / 4`` bits
    (the sequencer's decision at the end of a step and the queue's bypass wait on it)."""
    groups = Signal((p + FIRE_GROUP - 1) // FIRE_GROUP, name=name)
    m.d.sync += groups.eq(Cat(fire[g:g + FIRE_GROUP] != 0 for g in range(0, p, FIRE_GROUP)))
    return groups
