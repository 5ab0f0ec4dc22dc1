"""The TTFS core: memories, the lane array, the spike queue, the decision unit and the
sequencer that runs the schedule of docs/cycles.md.

One inference: input spike events stream in, in time order, ending with an ``end``
marker; layers run one after another on the one lane array; the result streams out.
Every pass over a layer is ``F = ceil(n_out / P)`` cycles, one fold of ``P`` neurons a
cycle, in a pipeline: cycle 1 reads memory, cycle 2 computes and writes back, cycles 3
and 4 update the decision (output layer only).
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.cycles import inference_overhead, layer_overhead, passes_span_steps, uses_spike_table
from firstspike.sw.layout import MemoryLayout, Target
from firstspike.sw.model import Model
from firstspike.sw.params import CoreParams, Kernel

from .decision import DecisionUnit
from .lanes import LaneArray, operation_layout, state_layout
from .queue import SpikeQueue
from .refusal import refuse
from .table import SpikeTable

__all__ = ["TTFSCore", "event_layout", "result_layout", "trace_layout", "write_layout", "read_layout"]

COUNTER_BITS = 32


def _bits(n: int) -> int:
    """Unsigned bits for 0 ... n-1 (at least one)."""
    return max(1, (n - 1).bit_length())


def event_layout(params: CoreParams) -> data.StructLayout:
    """One input spike (``end = 0``), or the end of an inference's input (``end = 1``)."""
    return data.StructLayout({
        "index": unsigned(_bits(params.n_inputs)),
        "step": unsigned(params.time_bits),
        "end": unsigned(1),
    })


def result_layout(params: CoreParams) -> data.StructLayout:
    return data.StructLayout({
        "decision": unsigned(_bits(params.n_outputs)),
        "fired": unsigned(1),
        "error": unsigned(1),  # an input event was out of range or out of time order
        "cycles": unsigned(COUNTER_BITS),
        "input_spikes": unsigned(16),
        "layer_spikes": data.ArrayLayout(unsigned(16), params.n_layers),
        "output_fired": unsigned(params.n_outputs),
        "output_times": data.ArrayLayout(unsigned(params.time_bits), params.n_outputs),
    })


def trace_layout(params: CoreParams) -> data.StructLayout:
    """Spikes as they happen: layer, fold, which of the fold's lanes fired and when."""
    return data.StructLayout({
        "layer": unsigned(_bits(params.n_layers)),
        "fold": unsigned(_bits(max(params.folds(k) for k in range(params.n_layers)))),
        "fire": unsigned(params.lanes),
        "times": data.ArrayLayout(unsigned(params.time_bits), params.lanes),
    })


def read_layout(params: CoreParams) -> data.StructLayout:
    """A host read of one memory row (to verify a load)."""
    layout = MemoryLayout(params)
    return data.StructLayout({
        "target": unsigned(2),
        "address": unsigned(_bits(max(layout.weight_rows, layout.neuron_rows))),
    })


def write_layout(params: CoreParams) -> data.StructLayout:
    layout = MemoryLayout(params)
    return data.StructLayout({
        "target": unsigned(2),
        "address": unsigned(_bits(max(layout.weight_rows, layout.neuron_rows))),
        "data": unsigned(max(layout.weight_width, layout.neuron_width)),
    })


def _unpack_row(lanes, row) -> list:
    """Assignments of one memory row's consecutive slices to per-lane signals."""
    width = len(row) // len(lanes)
    return [lane.eq(row[k * width:(k + 1) * width]) for k, lane in enumerate(lanes)]


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
        if model is not None and model.params.with_lanes(params.lanes) != params:
            differ = [f"{name} {getattr(model.params, name)!r} vs {getattr(params, name)!r}"
                      for name in model.params.__dataclass_fields__
                      if name != "lanes" and getattr(model.params, name) != getattr(params, name)]
            refuse(self, ValueError(f"the model's parameters differ from the core's: {', '.join(differ)}"))
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

    def _bad_event(self, index, event_step, step):
        """An input event the core must not process: out of range or out of time order.
        (Range checks that the field width already guarantees are left out.)"""
        params = self.params
        bad = event_step < step
        if params.n_inputs < 1 << len(self.events.payload.index):
            bad |= index >= params.n_inputs
        if params.time_steps < 1 << len(self.events.payload.step):
            bad |= event_step > params.time_steps - 1
        return bad

    def _memory(self, m: Module, name: str, width: int, depth: int, target: Target | None):
        init = self.layout.words(self.model, target) if self.model is not None and target is not None else []
        mem = memory.Memory(shape=unsigned(width), depth=depth, init=init)
        m.submodules[name] = mem
        return mem

    def elaborate(self, platform):
        m = Module()
        params, layout = self.params, self.layout
        p, n_layers = params.lanes, params.n_layers
        ramp = params.kernel is Kernel.RAMP
        skips = passes_span_steps(params)  # a pass spans the empty steps
        tabled = uses_spike_table(params)
        overhead = layer_overhead(params)
        settle = inference_overhead(params)  # more for the last layer: the decision settles
        last_step = params.time_steps - 1
        state = state_layout(params)

        # -- memories ------------------------------------------------------------------
        weights = self._memory(m, "weights", layout.weight_width, layout.weight_rows, Target.WEIGHTS)
        thresholds = self._memory(m, "thresholds", layout.neuron_width, layout.neuron_rows, Target.THRESHOLDS)
        initial = self._memory(m, "initial", layout.neuron_width, layout.neuron_rows, Target.INITIAL_POTENTIALS)
        states = self._memory(m, "states", state.size * p, layout.neuron_rows, None)
        weights_w, thresholds_w, initial_w = (mem.write_port() for mem in (weights, thresholds, initial))
        states_w = states.write_port()
        weights_r = weights.read_port(transparent_for=(weights_w,))
        thresholds_r = thresholds.read_port(transparent_for=(thresholds_w,))
        initial_r = initial.read_port(transparent_for=(initial_w,))
        states_r = states.read_port(transparent_for=(states_w,))

        m.submodules.lanes = lanes = LaneArray(params)
        m.submodules.queue = queue = SpikeTable(params) if tabled else SpikeQueue(params)
        m.submodules.decision = decision = DecisionUnit(params)
        # The result is read in DONE, after the last LAYER_END's `overhead + settle` cycles.
        assert 1 + decision.latency <= overhead + settle

        # -- per-layer constants -------------------------------------------------------
        layer = Signal(range(max(2, n_layers)))
        folds = Signal(range(max(layout.folds) + 1))
        neuron_base = Signal(range(max(2, layout.neuron_rows)))
        n_out = Signal(range(max(params.layer_sizes) + 1))
        is_last = Signal()
        with m.Switch(layer):
            for k in range(n_layers):
                with m.Case(k):
                    m.d.comb += [
                        folds.eq(layout.folds[k]),
                        neuron_base.eq(layout.neuron_base[k]), n_out.eq(params.layer_sizes[k + 1]),
                        is_last.eq(k == n_layers - 1),
                    ]

        # -- the event source: the input stream for layer 0, the queue after that ------
        # Behind a register that also works out the event's first weight row, so neither
        # the queue's lane search nor the row multiply sits in front of the memory address.
        in_valid, in_end = Signal(), Signal()
        in_index = Signal(range(max(max(params.layer_sizes[:-1]), max(layout.folds) * p) + 1))
        in_step = Signal(params.time_bits)
        in_row = Signal(range(max(2, layout.weight_rows)))
        in_take = Signal()
        with m.If(layer == 0):
            event = self.events.payload
            m.d.comb += [
                in_valid.eq(self.events.valid), in_end.eq(event.end),
                in_index.eq(event.index), in_step.eq(event.step),
                self.events.ready.eq(in_take),
            ]
        with m.Else():
            m.d.comb += [
                in_valid.eq(queue.valid), in_index.eq(queue.index), in_step.eq(queue.step),
                queue.take.eq(in_take),
            ]
        with m.Switch(layer):
            for k in range(n_layers):
                with m.Case(k):
                    m.d.comb += in_row.eq(layout.weight_base[k] + in_index * layout.folds[k])

        held, held_end = Signal(), Signal()
        src_index = Signal.like(in_index)
        src_step = Signal.like(in_step)
        src_row = Signal.like(in_row)
        src_valid, src_end = Signal(), Signal()
        src_take = Signal()       # the held event is used (or dropped)
        end_take = Signal()       # the held end marker is used
        capture = Signal()        # the sequencer lets the register fill
        step = Signal(params.time_bits)  # the step whose end is pending
        m.d.comb += [
            src_valid.eq(held & ~held_end),
            src_end.eq(Mux(layer == 0, held & held_end, ~held & queue.exhausted)),
            # Not past an end marker: what follows belongs to the next inference.
            in_take.eq(capture & in_valid & (~held | src_take)),
        ]
        with m.If(in_take):
            m.d.sync += [held.eq(1), held_end.eq(in_end & (layer == 0)), src_index.eq(in_index),
                         src_step.eq(in_step), src_row.eq(in_row)]
        with m.Elif(src_take | end_take):
            m.d.sync += held.eq(0)
        src_bad = Signal()
        m.d.comb += src_bad.eq(self._bad_event(src_index, src_step, step))

        # -- the sequencer -------------------------------------------------------------
        fold = Signal(range(max(2, max(layout.folds))))
        in_pass = Signal()
        pass_op = Signal(operation_layout(params))
        pass_row = Signal.like(src_row)
        pass_final = Signal()
        pass_takes = Signal()
        fresh = Signal()
        cycles = Signal(COUNTER_BITS)
        input_spikes = Signal(16)
        layer_spikes = Signal(data.ArrayLayout(unsigned(16), n_layers))
        error = Signal()
        wait = Signal(range(overhead + settle + 1))
        finishing = Signal()  # the layer ending is the last

        # The op a new pass would do now, decided from the source and the pending step.
        new_op = Signal(operation_layout(params))
        new_final, new_takes, new_ready, new_advance = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [new_op.fresh.eq(fresh), new_op.step.eq(step), new_op.span.eq(1)]
        with m.If(src_valid & (layer == 0) & src_bad):
            pass  # handled in the RUN state: dropped with the error flag
        with m.Elif(src_valid):
            with m.If(src_step == step):
                m.d.comb += [new_op.add.eq(1), new_takes.eq(1), new_ready.eq(1)]
            if skips:
                with m.Else():  # the ends of steps `step` ... src_step - 1, then the event
                    m.d.comb += [new_op.end_of_step.eq(1), new_op.span.eq(src_step - step), new_op.add.eq(1),
                                 new_takes.eq(1), new_ready.eq(1), new_advance.eq(1)]
            elif ramp:
                with m.Elif(src_step == step + 1):
                    m.d.comb += [new_op.end_of_step.eq(1), new_op.add.eq(1), new_takes.eq(1),
                                 new_ready.eq(1), new_advance.eq(1)]
                with m.Else():  # an empty step in between: integrate it on its own
                    m.d.comb += [new_op.end_of_step.eq(1), new_ready.eq(1), new_advance.eq(1)]
            else:
                with m.Else():
                    m.d.comb += [new_op.end_of_step.eq(1), new_op.add.eq(1), new_takes.eq(1),
                                 new_ready.eq(1), new_advance.eq(1)]
        with m.Elif(src_end):
            m.d.comb += [new_op.end_of_step.eq(1), new_ready.eq(1)]
            if skips:
                m.d.comb += [new_op.span.eq(params.time_steps - step), new_final.eq(1)]
            elif ramp:
                m.d.comb += [new_final.eq(step == last_step), new_advance.eq(step != last_step)]
            else:
                m.d.comb += new_final.eq(1)

        op = Signal(operation_layout(params))
        final = Signal()
        issue = Signal()
        m.d.comb += [
            op.eq(Mux(in_pass, pass_op, new_op)),
            final.eq(Mux(in_pass, pass_final, new_final)),
        ]
        last_fold = fold == folds - 1

        # Stage 1: addresses.
        m.d.comb += [
            weights_r.addr.eq(Mux(in_pass, pass_row, src_row) + fold),
            thresholds_r.addr.eq(neuron_base + fold),
            initial_r.addr.eq(neuron_base + fold),
            states_r.addr.eq(neuron_base + fold),
        ]

        # Stage 2 registers.
        s2_valid, s2_final, s2_last = Signal(), Signal(), Signal()
        s2_op = Signal(operation_layout(params))
        s2_fold = Signal.like(fold)
        s2_row = Signal.like(neuron_base)
        s2_lanes = Signal(p)
        s2_layer = Signal.like(layer)
        lanes_valid = Signal(p)
        m.d.comb += lanes_valid.eq(Cat(fold * p + lane < n_out for lane in range(p)))

        idle = Signal()
        with m.FSM(name="sequencer"):
            with m.State("IDLE"):
                m.d.comb += [self.write.ready.eq(1), idle.eq(1), capture.eq(1)]
                with m.If(self.events.valid | held):
                    m.d.sync += [
                        layer.eq(0), step.eq(0), fold.eq(0), in_pass.eq(0), fresh.eq(1), cycles.eq(0),
                        input_spikes.eq(0), layer_spikes.eq(0), error.eq(0),
                    ]
                    m.d.comb += decision.clear.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [self.busy.eq(1), capture.eq(1)]
                bad = ~in_pass & src_valid & (layer == 0) & src_bad
                with m.If(bad):
                    # Not processed, and not counted: the host broke the input contract.
                    m.d.comb += src_take.eq(1)
                    m.d.sync += error.eq(1)
                with m.Elif(in_pass | new_ready):
                    m.d.comb += issue.eq(1)
                    m.d.sync += cycles.eq(cycles + 1)
                    with m.If(~in_pass):
                        m.d.sync += [pass_op.eq(new_op), pass_row.eq(src_row), pass_final.eq(new_final),
                                     pass_takes.eq(new_takes), in_pass.eq(1)]
                        with m.If(new_advance):
                            m.d.sync += step.eq(Mux(new_takes, src_step, step + 1))
                    with m.If(last_fold):
                        m.d.sync += [fold.eq(0), in_pass.eq(0), fresh.eq(0)]
                        with m.If(Mux(in_pass, pass_takes, new_takes)):
                            m.d.comb += src_take.eq(1)
                            with m.If(layer == 0):
                                m.d.sync += input_spikes.eq(input_spikes + 1)
                        with m.If(final):
                            with m.If(layer == 0):
                                m.d.comb += end_take.eq(1)
                            m.d.sync += wait.eq(0)
                            m.next = "LAYER_END"
                    with m.Else():
                        m.d.sync += fold.eq(fold + 1)
            with m.State("LAYER_END"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [cycles.eq(cycles + 1), wait.eq(wait + 1)]
                with m.If(wait == 0):
                    m.d.comb += queue.switch.eq(1)  # after stage 2 pushed the last record
                    m.d.sync += finishing.eq(is_last)
                # The next layer one cycle early, so that its first event is held by RUN.
                with m.If((wait == overhead - 2) & ~finishing):
                    m.d.sync += [layer.eq(layer + 1), step.eq(0), fresh.eq(1)]
                with m.If(finishing):
                    with m.If(wait == overhead + settle - 1):
                        m.next = "DONE"
                with m.Elif(wait == overhead - 1):
                    m.d.comb += capture.eq(1)
                    m.next = "RUN"
            with m.State("DONE"):
                m.d.comb += self.results.valid.eq(1)
                with m.If(self.results.ready):
                    m.d.sync += layer.eq(0)  # IDLE's register takes input events
                    m.next = "IDLE"

        # Stage 2: compute, write back, report spikes.
        m.d.sync += [
            s2_valid.eq(issue), s2_op.eq(op), s2_fold.eq(fold), s2_row.eq(neuron_base + fold),
            s2_lanes.eq(lanes_valid), s2_final.eq(final), s2_last.eq(is_last), s2_layer.eq(layer),
        ]
        m.d.comb += [
            lanes.op.eq(s2_op),
            lanes.lanes_valid.eq(s2_lanes),
            *_unpack_row(lanes.weights, weights_r.data),
            *_unpack_row(lanes.thresholds, thresholds_r.data),
            *_unpack_row(lanes.initial, initial_r.data),
            *_unpack_row(lanes.state_in, states_r.data),
            states_w.addr.eq(s2_row),
            states_w.data.eq(Cat(*lanes.state_out)),
            states_w.en.eq(s2_valid),
        ]
        spiked = s2_valid & (lanes.fire != 0)
        m.d.comb += [
            queue.push.eq(spiked & ~s2_last),
            self.trace.valid.eq(spiked),
            self.trace.payload.layer.eq(s2_layer),
            self.trace.payload.fold.eq(s2_fold),
            self.trace.payload.fire.eq(lanes.fire),
            *(self.trace.payload.times[lane].eq(lanes.time[lane]) for lane in range(p)),
        ]
        if tabled:
            m.d.comb += [
                queue.fold.eq(s2_fold), queue.fire.eq(lanes.fire),
                *(queue.fired[lane].eq(lanes.state_out[lane].fired) for lane in range(p)),
                *(queue.times[lane].eq(lanes.state_out[lane].time) for lane in range(p)),
                queue.reading.eq(~is_last),
            ]
        else:
            m.d.comb += [queue.record.fold.eq(s2_fold), queue.record.step.eq(s2_op.step),
                         queue.record.fire.eq(lanes.fire)]
        popcount = sum(lanes.fire[lane] for lane in range(p))
        with m.Switch(s2_layer):
            for k in range(n_layers):
                with m.Case(k):
                    with m.If(s2_valid):
                        m.d.sync += layer_spikes[k].eq(layer_spikes[k] + popcount)
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

        # -- results ---------------------------------------------------------------------
        result = self.results.payload
        m.d.comb += [
            result.decision.eq(decision.decision), result.fired.eq(decision.fired), result.error.eq(error),
            result.cycles.eq(cycles), result.input_spikes.eq(input_spikes), result.layer_spikes.eq(layer_spikes),
            result.output_fired.eq(decision.output_fired), result.output_times.eq(decision.output_times),
        ]

        # -- host reads of the memories (between inferences) -----------------------------------
        read = self.read.payload
        reading = Signal()        # the row's data arrives from the read port this cycle
        read_target = Signal(2)
        m.d.comb += self.read.ready.eq(idle & ~reading & ~self.read_data.valid)
        with m.If(self.read.valid & self.read.ready):
            m.d.comb += [weights_r.addr.eq(read.address), thresholds_r.addr.eq(read.address),
                         initial_r.addr.eq(read.address)]
        m.d.sync += [reading.eq(self.read.valid & self.read.ready), read_target.eq(read.target)]
        with m.If(self.read_data.ready):
            m.d.sync += self.read_data.valid.eq(0)
        with m.If(reading):
            m.d.sync += [self.read_data.valid.eq(1),
                         self.read_data.payload.eq(Mux(read_target == Target.WEIGHTS, weights_r.data,
                                                       Mux(read_target == Target.THRESHOLDS, thresholds_r.data,
                                                           initial_r.data)))]

        # -- run-time loading ----------------------------------------------------------------
        write = self.write.payload
        accept = self.write.valid & self.write.ready
        for port, target in ((weights_w, Target.WEIGHTS), (thresholds_w, Target.THRESHOLDS),
                             (initial_w, Target.INITIAL_POTENTIALS)):
            m.d.comb += [port.addr.eq(write.address), port.data.eq(write.data),
                         port.en.eq(accept & (write.target == target))]
        return m
