"""Kernel offsets: where one input spike of a convolution goes (docs/arithmetic.md, "Layer shapes").

An input spike at ``(c, y, x)`` of a conv layer's input map reaches the output positions
``(oy, ox)`` with ``oy·sy = y' + py − dy`` (``y'`` the row after pooling, ``y // p``) for
the kernel offsets ``dy`` in range, and likewise for ``x``. For each such offset the
:class:`KernelOffsets` unit emits one pass: the weight slot ``(c·kh + dy)·kw + dx`` (a row
of ``K`` weights) and the output position ``oy·Wo + ox`` (a row of ``K`` neurons), one a
cycle, so the work follows the spikes.

The offsets in range along one axis depend only on the input's coordinate: a table per
axis, worked out here in Python, gives the first offset, how many there are (they step by
the stride) and the first offset's output coordinate. Inputs that pooling drops, or that
reach no output, give no pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from firstspike.sw.topology import Conv2d

from .refusal import refuse
from .unravel import times

__all__ = ["AxisTable", "axis_table", "KernelOffsets", "event_layout", "pass_layout"]


@dataclass(frozen=True)
class AxisTable:
    """Per input coordinate along one axis: the first kernel offset in range, how many
    there are (stepping by the stride), and the output coordinate of the first."""

    first: tuple[int, ...]
    count: tuple[int, ...]
    out: tuple[int, ...]


def axis_table(size: int, pool: int, kernel: int, stride: int, padding: int, outputs: int) -> AxisTable:
    """The table for an axis of ``size`` inputs read through ``pool`` (1: none)."""
    first, count, out = [], [], []
    for coordinate in range(size):
        seen = coordinate // pool
        offsets = [d for d in range(kernel)
                   if (seen + padding - d) % stride == 0 and 0 <= (seen + padding - d) // stride < outputs
                   and seen + padding - d >= 0]
        if coordinate >= (size // pool) * pool or not offsets:
            offsets = []
        first.append(offsets[0] if offsets else 0)
        count.append(len(offsets))
        out.append((seen + padding - offsets[0]) // stride if offsets else 0)
    return AxisTable(tuple(first), tuple(count), tuple(out))


def event_layout(shape: Conv2d) -> data.StructLayout:
    c, h, w = shape.input_map.as_tuple()
    return data.StructLayout({"channel": range(c), "y": range(h), "x": range(w)})


def pass_layout(shape: Conv2d) -> data.StructLayout:
    c, (kh, kw), out = shape.input_map.channels, shape.kernel, shape.output_map
    return data.StructLayout({
        "slot": range(c * kh * kw),
        "position": range(out.height * out.width),
        "last": 1,  # the event's last pass
    })


def _lookup(m: Module, table: tuple[int, ...], index, shape) -> Signal:
    value = Signal(shape)
    with m.Switch(index):
        for i, entry in enumerate(table):
            with m.Case(i):
                m.d.comb += value.eq(entry)
    return value


class KernelOffsets(wiring.Component):
    """Input spikes of a conv layer in, one pass per kernel offset in range out.

    Ports
    -----
    events:
        ``(channel, y, x)`` of the input map (before pooling).
    passes:
        ``(slot, position, last)``; a new event is taken in the cycle its predecessor's
        last pass is, so passes follow each other without a gap.
    """

    def __init__(self, shape: Conv2d):
        if not isinstance(shape, Conv2d):
            refuse(self, TypeError(f"KernelOffsets needs a Conv2d shape, not {shape!r}"))
        self.shape = shape
        super().__init__({
            "events": In(stream.Signature(event_layout(shape))),
            "passes": Out(stream.Signature(pass_layout(shape))),
        })

    def elaborate(self, platform):
        m = Module()
        shape = self.shape
        c, h, w = shape.input_map.as_tuple()
        (kh, kw), (sy, sx), (py, px) = shape.kernel, shape.stride, shape.padding
        out = shape.output_map
        pool = shape.pool.size if shape.pool is not None else 1
        rows = axis_table(h, pool, kh, sy, py, out.height)
        cols = axis_table(w, pool, kw, sx, px, out.width)

        event = self.events.payload
        first_y = _lookup(m, rows.first, event.y, range(kh))
        count_y = _lookup(m, rows.count, event.y, range(kh + 1))
        out_y = _lookup(m, rows.out, event.y, range(out.height))
        first_x = _lookup(m, cols.first, event.x, range(kw))
        count_x = _lookup(m, cols.count, event.x, range(kw + 1))
        out_x = _lookup(m, cols.out, event.x, range(out.width))

        slot_shape, position_shape = range(c * kh * kw), range(out.height * out.width)
        busy = Signal()
        slot, position = Signal(slot_shape), Signal(position_shape)
        row_slot, row_position = Signal(slot_shape), Signal(position_shape)  # the current offset row's first
        i, j = Signal(range(kh + 1)), Signal(range(kw + 1))
        rows_left, cols = Signal(range(kh + 1)), Signal(range(kw + 1))
        last_col = j == cols - 1
        last = last_col & (i == rows_left - 1)

        m.d.comb += [
            self.passes.valid.eq(busy),
            self.passes.payload.slot.eq(slot),
            self.passes.payload.position.eq(position),
            self.passes.payload.last.eq(last),
            self.events.ready.eq(~busy | (self.passes.ready & last)),
        ]
        with m.If(self.passes.valid & self.passes.ready):
            with m.If(last_col):
                m.d.sync += [
                    i.eq(i + 1), j.eq(0),
                    # Down one kernel row (sy rows of the kernel), up one output row.
                    slot.eq(row_slot + sy * kw), row_slot.eq(row_slot + sy * kw),
                    position.eq(row_position - out.width), row_position.eq(row_position - out.width),
                ]
            with m.Else():
                m.d.sync += [j.eq(j + 1), slot.eq(slot + sx), position.eq(position - 1)]
            with m.If(last):
                m.d.sync += busy.eq(0)
        with m.If(self.events.valid & self.events.ready):
            start_slot = times(times(event.channel, kh) + first_y, kw) + first_x
            start_position = times(out_y, out.width) + out_x
            m.d.sync += [
                busy.eq((count_y != 0) & (count_x != 0)),
                slot.eq(start_slot), row_slot.eq(start_slot),
                position.eq(start_position), row_position.eq(start_position),
                i.eq(0), j.eq(0), rows_left.eq(count_y), cols.eq(count_x),
            ]
        return m
