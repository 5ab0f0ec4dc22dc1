"""The spike table between layers for the ramp kernel: spikes in any order in, events in
(step, index) order out.

A ramp pass integrates all the empty steps since the previous pass at once, so one fold
can fire lanes at several steps, and a later fold at earlier steps than an earlier one:
the spikes no longer arrive in time order. The table keeps one bit per (step, fold) of
the layer being written ("fold ``f`` has a spike at step ``t``") and each fold's spike
times in a small memory; once the layer has ended, the next layer reads the bits in
(step, fold) order, one memory row per bit, and takes the row's lanes that fired at that
step one at a time, like :class:`~firstspike.hw.queue.SpikeQueue`.
"""

from __future__ import annotations

from amaranth import Cat, Module, Signal, unsigned
from amaranth.lib import data, fifo, memory, wiring
from amaranth.lib.wiring import In

from firstspike.sw.cycles import TABLE_READ_AHEAD
from firstspike.sw.params import CoreParams

from .queue import event_source_members, lowest_set, record_layout, records_to_events

__all__ = ["SpikeTable"]


def _lowest(m: Module, bits, width: int, name: str) -> tuple[Signal, Signal]:
    """``(any, index)`` of the lowest set bit."""
    index = Signal(range(max(2, width)), name=name)
    found = Signal(name=f"{name}_any")
    any_set, lowest = lowest_set(bits, width)
    m.d.comb += [index.eq(lowest), found.eq(any_set)]
    return found, index


class SpikeTable(wiring.Component):
    """Ports
    -----
    push, fold, fire, fired, times:
        A fold of the layer being written: the lanes that fire now (``fire``), and every
        lane's latch (``fired``) and spike time (``times``) after this update.
    switch, reading:
        A layer has ended; ``reading`` says whether a next layer will read its spikes.
    valid, index, step, take, exhausted:
        As :class:`~firstspike.hw.queue.SpikeQueue`'s.
    """

    def __init__(self, params: CoreParams):
        self.params = params
        self.folds = max(params.folds(k) for k in range(params.n_layers - 1))
        widest = max(params.folds(k) for k in range(params.n_layers))
        p = params.lanes
        super().__init__({
            "push": In(1),
            "fold": In(range(max(2, widest))),
            "fire": In(p),
            "fired": In(p),
            "times": In(unsigned(params.time_bits)).array(p),
            "switch": In(1),
            "reading": In(1),
            **event_source_members(params),
        })
        #: Records read from the table ahead of the event port (an attribute for the bounds
        #: proof, tests/formal/bounds.py).
        self.ahead = fifo.SyncFIFOBuffered(width=record_layout(params).size, depth=TABLE_READ_AHEAD)

    def elaborate(self, platform):
        m = Module()
        params = self.params
        p, steps, folds = params.lanes, params.time_steps, self.folds
        # Layer k + 1 reads layer k's bank while it writes its own: two banks when a
        # hidden layer feeds another hidden layer.
        banks = 2 if params.n_layers > 2 else 1
        entry = data.StructLayout({"fired": unsigned(1), "time": unsigned(params.time_bits)})
        row_layout = data.ArrayLayout(entry, p)
        rows = memory.Memory(shape=row_layout, depth=banks * folds, init=[])
        m.submodules.rows = rows
        rows_w, rows_r = rows.write_port(), rows.read_port()
        table = [Signal(steps * folds, name=f"bank{b}") for b in range(banks)]
        write_bank = Signal(range(max(2, banks)))
        read_bank = Signal(range(max(2, banks)))
        m.d.comb += read_bank.eq(write_bank ^ 1 if banks == 2 else 0)
        enabled = Signal()

        # -- writing: set the (step, fold) bits of this fold's new spikes ---------------
        marks = Signal(steps * folds)
        for t in range(steps):
            at_t = Cat(self.fire[lane] & (self.times[lane] == t) for lane in range(p)) != 0
            m.d.comb += marks.bit_select(t * folds + self.fold, 1).eq(self.push & at_t)
        m.d.comb += [
            rows_w.addr.eq(write_bank * folds + self.fold),
            rows_w.en.eq(self.push),
            *(rows_w.data[lane].fired.eq(self.fired[lane]) for lane in range(p)),
            *(rows_w.data[lane].time.eq(self.times[lane]) for lane in range(p)),
        ]

        # -- reading: the lowest (step, fold) bit, its row, its lanes at that step -------
        bits = Signal(steps * folds)
        with m.Switch(read_bank):
            for b in range(banks):
                with m.Case(b):
                    m.d.comb += bits.eq(table[b])
        busy_steps = Signal(steps)
        m.d.comb += busy_steps.eq(Cat(bits[t * folds:(t + 1) * folds] != 0 for t in range(steps)))
        any_step, step = _lowest(m, busy_steps, steps, "next_step")
        _, fold = _lowest(m, bits.word_select(step, folds), folds, "next_fold")  # a busy step has a fold

        m.submodules.ahead = ahead = self.ahead
        in_flight = Signal()
        issue = Signal()
        m.d.comb += [
            issue.eq(enabled & any_step & (ahead.level + in_flight < TABLE_READ_AHEAD)),
            rows_r.addr.eq(read_bank * folds + fold),
        ]
        taken = Signal(steps * folds)
        with m.If(issue):
            m.d.comb += taken.bit_select(step * folds + fold, 1).eq(1)
        read_step, read_fold = Signal.like(step), Signal.like(fold)
        m.d.sync += [in_flight.eq(issue), read_step.eq(step), read_fold.eq(fold)]
        record = Signal(record_layout(params))
        m.d.comb += [
            record.fold.eq(read_fold),
            record.step.eq(read_step),
            record.fire.eq(Cat(rows_r.data[lane].fired & (rows_r.data[lane].time == read_step)
                               for lane in range(p))),
            ahead.w_en.eq(in_flight),
            ahead.w_data.eq(record.as_value()),
        ]
        load = records_to_events(m, self, params, ahead.r_rdy, ahead.r_data)
        m.d.comb += ahead.r_en.eq(load)
        m.d.comb += self.exhausted.eq(~self.valid & ~any_step & ~in_flight & ~ahead.r_rdy)

        for b in range(banks):
            with m.If(write_bank == b):
                m.d.sync += table[b].eq((table[b] | marks) & ~taken if banks == 1 else table[b] | marks)
            with m.Elif(read_bank == b):
                m.d.sync += table[b].eq(table[b] & ~taken)
        with m.If(self.switch):
            m.d.sync += enabled.eq(self.reading)
            if banks == 2:
                m.d.sync += write_bank.eq(write_bank ^ 1)
        return m
