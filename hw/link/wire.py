"""The link's field tables (:mod:`firstspike.sw.link.fields`) as Amaranth layouts."""

from __future__ import annotations

from amaranth.lib import data

from firstspike.sw.link.fields import WireLayout

__all__ = ["struct_layout"]


def struct_layout(wire: WireLayout) -> data.StructLayout:
    """The same fields in the same order: a value of this layout, as bits, is the wire's
    bytes with byte ``k`` at bits ``8k ... 8k+7`` (every field is whole little-endian bytes)."""
    fields: dict[str, data.ShapeCastable | int] = {}
    for f in wire.fields:
        fields[f.name] = 8 * f.size if f.count == 1 else data.ArrayLayout(8 * f.size, f.count)
    layout = data.StructLayout(fields)
    assert layout.size == 8 * wire.size
    return layout
