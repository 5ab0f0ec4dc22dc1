"""The TTFS core: memories, the lane array, the spike queue, the decision unit and the
sequencer that runs the schedule of docs/cycles.md.

One inference: input spike events stream in, in time order, ending with an ``end``
marker; layers run one after another on the one lane array; the result streams out.
Every pass over a layer is ``F = ceil(n_out / P)`` cycles, one fold of ``P`` neurons a
cycle, in a pipeline (:mod:`.pipeline`): the memories are read, the lanes compute, the
new state is written back and the decision updated (output layer only).

The parts, each in its own module: :mod:`.source` (the event held for the next pass),
:mod:`.sequencer` (the schedule and the counters), :mod:`.pipeline` (the issue stage,
then the lanes and the write-back), :mod:`.host` (row reads and writes between
inferences); :mod:`.layouts` holds the ports' payloads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from amaranth import Module, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out

from firstspike.sw.cycles import (
    LAYERED_DRAIN,
    LAYERED_WEIGHT_READ,
    inference_overhead,
    layer_overhead,
    stepped_weight_read,
    uses_spike_table,
)
from firstspike.sw.errors import NotOnTheCore
from firstspike.sw.layout import MemoryLayout, Target
from firstspike.sw.model import Model
from firstspike.sw.params import CoreParams

from ..banks import BankedMemory, PortView
from ..decision import DecisionUnit
from ..lanes import LaneAdd, LaneArray, LaneEnd, state_layout
from ..queue import SpikeQueue
from ..refusal import refuse
from ..table import SpikeTable
from .host import host_reads, host_writes
from .layouts import event_layout, read_layout, result_layout, trace_layout, write_layout
from .pipeline import Memories, Spikes, issue_stage, lane_stage, stepped_lane_stage
from .sequencer import layer_select, sequence
from .source import event_source
from .stepped import stepped_sequence, stepped_source

__all__ = ["TTFSCore", "CoreInternals"]


@dataclass(frozen=True)
class CoreInternals:
    """Inner signals of an elaborated core, for the bounds proof (tests/formal/bounds.py)
    to state properties of: the layer running, a fold issued (with its operation) and the
    rows it reads, the state row written back, and the spike queue (or table)."""

    layer: Signal
    issue: Signal
    op: Signal
    weight_row: Signal
    neuron_row: Signal
    state_row: Signal
    rows_read: Signal   # the neuron and state rows are addressed for a fold (after issue,
    rows_layer: Signal  # a cycle before its weights arrive), of this layer
    state_write: WritePort
    queue: SpikeQueue | SpikeTable
    fold: Signal        # the fold being issued, the layer's fold count, and the register
    folds: Signal       # that says it is the last
    last_fold: Signal


class TTFSCore(wiring.Component):
    """The accelerator core for one :class:`~firstspike.sw.params.CoreParams`.

    Ports
    -----
    events:
        Input spikes in (step, index) order, then an ``end`` marker.
    results:
        One :func:`result_layout` per inference.
    trace:
        Every fold with a spike, every layer, as it happens (``valid`` and ``payload``;
        it cannot stall the core, so a monitor must sample every cycle).
    write:
        Loads weights, thresholds or initial potentials (:class:`~firstspike.sw.layout.Target`)
        row by row in the packing of :class:`~firstspike.sw.layout.MemoryLayout`;
        accepted only between inferences.
    read, read_data:
        A row of weights, thresholds or initial potentials back to the host (to verify a
        load); taken only between inferences, the row follows on ``read_data``.
    busy:
        An inference is in progress.
    """

    def __init__(self, params: CoreParams, model: Model | None = None):
        if model is not None and replace(model.params, lanes=params.lanes, schedule=params.schedule) != params:
            differ = [f"{name} {getattr(model.params, name)!r} vs {getattr(params, name)!r}"
                      for name in model.params.__dataclass_fields__
                      if name != "lanes" and getattr(model.params, name) != getattr(params, name)]
            refuse(self, ValueError(f"the model's parameters differ from the core's: {', '.join(differ)}"))
        try:
            params.require_on_the_core("the core")
        except NotOnTheCore as error:
            refuse(self, error)
        self.params = params
        self.model = model
        self.layout = MemoryLayout(params)
        super().__init__({
            "events": In(stream.Signature(event_layout(params))),
            "results": Out(stream.Signature(result_layout(params))),
            # Not a stream: nothing may stall the core, so there is no ready.
            "trace": Out(wiring.Signature({"valid": Out(1), "payload": Out(trace_layout(params))})),
            "write": In(stream.Signature(write_layout(params))),
            "read": In(stream.Signature(read_layout(params))),
            "read_data": Out(stream.Signature(max(MemoryLayout(params).weight_width,
                                                  MemoryLayout(params).neuron_width))),
            "busy": Out(1),
        })

    def _memory(self, m: Module, name: str, width: int, depth: int, target: Target | None):
        init = self.layout.words(self.model, target) if self.model is not None and target is not None else []
        mem = memory.Memory(shape=unsigned(width), depth=depth, init=init)
        m.submodules[name] = mem
        return mem

    def elaborate(self, platform):
        m = Module()
        params, layout = self.params, self.layout
        state = state_layout(params)
        tabled = uses_spike_table(params)

        if params.stepped:  # read through registers: hw/banks.py
            init = layout.words(self.model, Target.WEIGHTS) if self.model is not None else []
            m.submodules.weights = banked = BankedMemory(layout.weight_width, layout.weight_rows, init)
            assert banked.latency == stepped_weight_read(params)
            weights_r, weights_w = banked.reader, banked.writer
        else:
            weights = self._memory(m, "weights", layout.weight_width, layout.weight_rows, Target.WEIGHTS)
            weights_w = weights.write_port()
            # Not transparent (as the banks are not): weights are written only while the core
            # is idle, so no bypass multiplexer need follow the block RAMs' own. A register
            # behind their multiplexer: LAYERED_WEIGHT_READ.
            read = weights.read_port()
            held = Signal.like(read.data, name="weights_read")
            m.d.sync += held.eq(read.data)
            weights_r = PortView(read.addr, held)
        thresholds = self._memory(m, "thresholds", layout.neuron_width, layout.neuron_rows, Target.THRESHOLDS)
        initial = self._memory(m, "initial", layout.neuron_width, layout.neuron_rows, Target.INITIAL_POTENTIALS)
        # (With conv layers a row also holds the parity of the inference that wrote it: hw/core/pipeline.py.)
        epoch = 0 if params.fully_connected else 1
        states = self._memory(m, "states", state.size * params.lanes + epoch, layout.state_rows, None)
        thresholds_w, initial_w = (mem.write_port() for mem in (thresholds, initial))
        states_w = states.write_port()
        memories = Memories(weights_r=weights_r,
                            thresholds_r=thresholds.read_port(transparent_for=(thresholds_w,)),
                            initial_r=initial.read_port(transparent_for=(initial_w,)),
                            states_r=states.read_port(transparent_for=(states_w,)), states_w=states_w)

        m.submodules.queue = queue = SpikeTable(params) if tabled else SpikeQueue(params)
        m.submodules.decision = decision = DecisionUnit(params)
        # The result is read in DONE, after the last LAYER_END's `overhead + settle` cycles.
        assert LAYERED_DRAIN + decision.latency <= layer_overhead(params) + inference_overhead(params)

        layers = layer_select(m, params, layout)
        step = Signal(params.time_bits, name="step")  # the step whose end is pending
        reported = Spikes.create("reported")  # from stage 2, for the stepped sequencer
        ports = dict(queue=queue, decision=decision, events=self.events, results=self.results, write=self.write,
                     busy=self.busy)
        if params.stepped:
            source = stepped_source(m, params, layout, layer=layers.layer, events=self.events, queue=queue,
                                    pending_step=step)
            seq = stepped_sequence(m, params, layout, layers=layers, source=source, step=step, spikes=reported,
                                   **ports)
        else:
            source = event_source(m, params, layout, layer=layers.layer, events=self.events, queue=queue,
                                  pending_step=step)
            seq = sequence(m, params, layout, layers=layers, source=source, step=step, **ports)
        issue_stage(m, memories, seq=seq)
        if params.stepped:  # the lane stage in two: hw/core/pipeline.py
            m.submodules.lanes_add = add = LaneAdd(params)
            m.submodules.lanes_end = end = LaneEnd(params)
            spikes, addressing = stepped_lane_stage(m, params, memories, layers=layers, seq=seq, add=add, end=end,
                                                    queue=queue, decision=decision, trace=self.trace)
        else:
            m.submodules.lanes = lanes = LaneArray(params)
            spikes, addressing = lane_stage(m, params, memories, layers=layers, seq=seq, lanes=lanes, queue=queue,
                                decision=decision, trace=self.trace, tabled=tabled)
        m.d.comb += reported.eq(spikes)
        self.internals = CoreInternals(layer=layers.layer, issue=seq.issue, op=seq.op,
                                       weight_row=memories.weights_r.addr, neuron_row=memories.thresholds_r.addr,
                                       state_row=memories.states_r.addr, rows_read=addressing.valid,
                                       rows_layer=addressing.layer,
                                       state_write=memories.states_w, queue=queue,
                                       fold=seq.fold, folds=layers.folds, last_fold=seq.last_fold)

        result = self.results.payload
        m.d.comb += [
            result.decision.eq(decision.decision), result.decision_step.eq(decision.step),
            result.fired.eq(decision.fired), result.error.eq(seq.error),
            result.cycles.eq(seq.cycles), result.input_spikes.eq(seq.input_spikes),
            result.layer_spikes.eq(seq.layer_spikes),
            result.output_fired.eq(decision.output_fired), result.output_times.eq(decision.output_times),
        ]
        host_busy = host_reads(m, read=self.read, read_data=self.read_data, idle=seq.idle, starting=seq.starting,
                               weights_r=memories.weights_r, thresholds_r=memories.thresholds_r,
                               initial_r=memories.initial_r,
                               weight_latency=stepped_weight_read(params) if params.stepped
                               else LAYERED_WEIGHT_READ)
        landing = host_writes(m, write=self.write, weights_w=weights_w, thresholds_w=thresholds_w,
                              initial_w=initial_w)
        m.d.comb += seq.hold.eq(host_busy | landing)
        return m
