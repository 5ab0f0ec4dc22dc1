"""The spike queue between layers: spike records in, one event per ``take`` out.

A layer's check of one fold can fire up to ``P`` neurons in one cycle. They are queued as
one record (fold, step, fire mask); the next layer reads records back in order and takes
their set bits one at a time, lowest lane first, so its events come out in (step, index)
order without a bubble between records.
"""

from __future__ import annotations

from amaranth import C, Cat, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.params import CoreParams

__all__ = ["SpikeQueue", "at_most_one_set", "at_most_two_set", "record_layout", "queue_depth", "event_source_members",
           "records_to_events"]


def _positions(params: CoreParams) -> int:
    """The most positions of a layer whose spikes are queued (1: dense layers only)."""
    return max([params.positions(k) for k in range(params.n_layers - 1)], default=1)


def record_layout(params: CoreParams) -> data.StructLayout:
    """A fold's spikes at one step: which lanes fired, and (conv layers) at which position."""
    widest = max(params.folds(k) for k in range(params.n_layers))
    return data.StructLayout({
        "position": unsigned(max(1, (_positions(params) - 1).bit_length())),
        "fold": unsigned(max(1, (widest - 1).bit_length())),
        "step": unsigned(params.time_bits),
        "fire": unsigned(params.lanes),
    })


def queue_depth(params: CoreParams) -> int:
    """Records held at once: at most one a neuron of the layer being read, plus one a
    neuron of the layer being written; on the stepped schedule one a fold of one layer's
    run (the next layer reads them before the layer runs again): a conv layer's, one a fold
    of each position it checks."""
    if params.stepped:
        return max([2] + [params.positions(k) * params.folds(k) for k in range(params.n_layers - 1)])
    hidden = params.layer_sizes[1:-1]
    if not hidden:
        return 2
    pairs = [hidden[k] + (hidden[k + 1] if k + 1 < len(hidden) else 0) for k in range(len(hidden))]
    return max(2, max(pairs))


def event_source_members(params: CoreParams) -> dict:
    """The members through which the next layer takes events: ``valid``, ``index`` (a conv
    layer's channel), ``position`` (a conv layer's), ``step``, ``take``, ``exhausted``."""
    widest = max(params.folds(k) for k in range(params.n_layers))
    return {
        "valid": Out(1),
        "index": Out(range(max(2, widest * params.lanes))),
        "position": Out(range(max(2, _positions(params)))),
        "step": Out(params.time_bits),
        "take": In(1),
        "exhausted": Out(1),
    }


def lowest_set(bits: Value, width: int) -> tuple[Value, Value]:
    """``(any bit set, index of the lowest set bit)`` of ``bits[:width]``, as a balanced
    tree: a chain of ``width`` priority muxes is ``width`` levels deep."""
    if width == 1:
        return bits[0], C(0, 1)
    half = 1 << ((width - 1).bit_length() - 1)  # the largest power of two below width
    low_any, low_index = lowest_set(bits[:half], half)
    high_any, high_index = lowest_set(bits[half:], width - half)
    return low_any | high_any, Mux(low_any, low_index, half + high_index)


def at_most_one_set(bits: Value, width: int) -> tuple[Value, Value]:
    """``(any bit set, at most one bit set)`` of ``bits[:width]``, as a balanced tree (no
    carry chain: ``bits & (bits - 1) == 0`` is one ``width`` bits long)."""
    if width == 1:
        return bits[0], C(1, 1)
    half = width // 2
    low_any, low_one = at_most_one_set(bits[:half], half)
    high_any, high_one = at_most_one_set(bits[half:], width - half)
    return low_any | high_any, low_one & high_one & ~(low_any & high_any)


def at_most_two_set(bits: Value, width: int) -> Value:
    """Whether at most two bits of ``bits[:width]`` are set: a balanced tree of counts
    saturating at 3 (2 bits: each node one LUT a bit), with no carry chain. (A count that
    cannot pass 3 is not compared: the lint refuses constant comparisons.)"""
    def count(low: int, high: int) -> tuple[Value, int]:
        if high - low == 1:
            return bits[low].as_unsigned(), 1
        middle = (low + high) // 2
        (a, most_a), (b, most_b) = count(low, middle), count(middle, high)
        total = a + b
        if most_a + most_b <= 3:
            return total, most_a + most_b
        return Mux(total > 3, 3, total)[:2], 3
    total, most = count(0, width)
    return C(1, 1) if most <= 2 else total <= 2


def records_to_events(m: Module, port, params: CoreParams, available, record, direct=None,
                      current: data.View | None = None, on_last: Signal | None = None,
                      single: Value | None = None) -> Signal:
    """One event per ``take`` from records: the set bits of the current record, lowest lane
    first, the next record loaded as the last bit is taken, so no cycle is lost between
    records. ``port`` has ``valid``, ``index``, ``step``, ``take``; the record source
    offers ``record`` when ``available``. ``direct``: ``(valid, record)`` loaded instead
    when it is valid (the caller makes sure nothing else is due then). Returns the
    source's read enable. ``current`` and ``on_last``: the registers to use (made here if
    not given). ``single``: whether ``record`` has at most one bit set, if its source
    keeps that beside it (else worked out here, behind the source's read).

    Whether the current record is on its last bit is a register beside it, worked out as
    the record or its rest is loaded: the test ``rest == 0`` (a carry chain over the
    lanes) would otherwise sit between the take and the next record's load."""
    p = params.lanes
    if not isinstance(record, data.View):  # (a FIFO's raw data)
        record = data.View(record_layout(params), record)
    current = Signal(record_layout(params)) if current is None else current
    on_last = Signal() if on_last is None else on_last  # at most one bit set: the next take empties it
    lane = Signal(range(max(2, p)))
    m.d.comb += lane.eq(lowest_set(current.fire, p)[1])
    rest = Signal(p)
    m.d.comb += [
        rest.eq(current.fire & (current.fire - 1)),
        port.index.eq(current.fold * p + lane),
        port.position.eq(current.position),
        port.step.eq(current.step),
    ]
    with m.If(port.take):
        # (at most one of ``rest``'s bits set: at most two of the record's, with no
        # subtraction in front of the tree)
        m.d.sync += [current.fire.eq(rest), on_last.eq(at_most_two_set(current.fire, p))]
        with m.If(on_last):
            m.d.sync += port.valid.eq(0)
    need = ~port.valid | (port.take & on_last)
    load = Signal()
    m.d.comb += load.eq(need & available)
    loaded = [(load, record, single)] + ([(*direct, None)] if direct is not None else [])
    for when, what, one in loaded:  # (the direct record, assigned last, wins)
        with m.If(when):
            m.d.sync += [current.eq(what), on_last.eq(at_most_one_set(what.fire, p)[1] if one is None else one),
                         port.valid.eq(1)]
    return load


class SpikeQueue(wiring.Component):
    """Ports
    -----
    push, record:
        Append a record (never refused: the depth covers the worst case).
    switch:
        A layer has ended: the records pushed since the last switch become the ones read.
    valid, index, step, take:
        The current event; ``take`` moves to the next one.
    exhausted:
        Every record of the layer being read has been taken.
    """

    def __init__(self, params: CoreParams):
        self.params = params
        layout = record_layout(params)
        super().__init__({
            "push": In(1),
            "record": In(layout),
            "switch": In(1),
            **event_source_members(params),
        })
        depth = queue_depth(params)
        # Each record goes in with whether it has at most one bit set (its last is then its
        # first), worked out as it is pushed rather than behind the FIFO's read.
        if params.stepped:
            # A run's records, one a fold at most, read by the next layer at the same step: a
            # shallow FIFO whose entries can be read the cycle after they are written.
            self.buffer: fifo.SyncFIFO = fifo.SyncFIFO(width=layout.size + 1, depth=depth)
        else:
            self.buffer = fifo.SyncFIFOBuffered(width=layout.size + 1, depth=depth)
        #: Records pushed since the last switch, and records of the layer being read not yet
        #: loaded (attributes for the bounds proof, tests/formal/bounds.py).
        self.pushed = Signal(range(depth + 1))
        self.remaining = Signal(range(depth + 1))
        self.drained = Signal(init=1)  # remaining == 0
        # ``pushed == 0`` and ``pushed == 1`` in registers beside the count (the bypass, the
        # read enable and the switch's counts wait on them; the comparisons were two LUT
        # levels of the iCEBreaker build's longest path).
        self.none_pushed = Signal(init=1)
        self.one_pushed = Signal()
        #: The record being handed out and whether it is on its last bit (for the proof too).
        self.current = Signal(layout)
        self.on_last = Signal()

    def elaborate(self, platform):
        m = Module()
        params = self.params
        m.submodules.fifo = buffer = self.buffer
        pushed, remaining = self.pushed, self.remaining
        none_pushed, one_pushed = self.none_pushed, self.one_pushed
        # A layer's only record, pushed as the layer ends, would reach the FIFO's output two
        # cycles later, one after the next layer's first event is due: it goes straight to
        # the event port instead (at a switch the port and the FIFO hold nothing to read).
        bypass = Signal()
        size = self.record.shape().size
        m.d.comb += [bypass.eq(self.switch & self.push & none_pushed),
                     buffer.w_en.eq(self.push & ~bypass),
                     buffer.w_data.eq(Cat(self.record.as_value(), at_most_one_set(self.record.fire, params.lanes)[1]))]
        # ``remaining == 0`` kept in a register of its own, worked out beside the count rather
        # than behind it: the sequencer's next operation and the load wait on it.
        drained = self.drained
        # At a switch the port and the records of the layer being read are used up, so the
        # first of the new ones may load in the same cycle.
        readable = ~drained | (self.switch & ~none_pushed)
        load = records_to_events(m, self, params, buffer.r_rdy & readable, buffer.r_data[:size],
                                 direct=(bypass, self.record), current=self.current, on_last=self.on_last,
                                 single=buffer.r_data[size])
        m.d.comb += [buffer.r_en.eq(load), self.exhausted.eq(~self.valid & drained)]

        # The counts' sums are formed from registers, the late ``load`` only chooses between them.
        arriving = Signal.like(pushed)
        m.d.comb += arriving.eq(pushed + self.push)
        with m.If(self.switch):
            m.d.sync += [remaining.eq(Mux(bypass, 0, Mux(load, arriving - 1, arriving))), pushed.eq(0),
                         none_pushed.eq(1), one_pushed.eq(0),
                         drained.eq(bypass | Mux(self.push, load & none_pushed,
                                                 Mux(load, one_pushed, none_pushed)))]
        with m.Else():
            m.d.sync += [pushed.eq(arriving), remaining.eq(Mux(load, remaining - 1, remaining)),
                         none_pushed.eq(none_pushed & ~self.push),
                         one_pushed.eq(Mux(self.push, none_pushed, one_pushed)),
                         drained.eq(Mux(load, remaining == 1, remaining == 0))]
        return m
