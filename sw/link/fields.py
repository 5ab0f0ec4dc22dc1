"""The link's fixed layouts, each written once as a table of fields.

A :class:`WireLayout` is a run of little-endian unsigned fields of whole bytes. The host
reads its ``struct`` format; the gateware builds its Amaranth layout from the same table
(:func:`firstspike.hw.link.wire.struct_layout`): Amaranth packs a struct's fields from the
least significant bit up, which is little-endian byte order when every field is whole bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

__all__ = ["WireField", "WireLayout", "HEADER", "REGION", "result_reply"]

_CODES = {1: "B", 2: "H", 4: "I"}


@dataclass(frozen=True)
class WireField:
    """``count`` unsigned little-endian values of ``size`` bytes each (1, 2 or 4)."""

    name: str
    size: int
    count: int = 1

    def __post_init__(self) -> None:
        if self.size not in _CODES or self.count < 1:
            raise ValueError(f"field {self.name!r}: size must be 1, 2 or 4 bytes and count at least 1")


@dataclass(frozen=True)
class WireLayout:
    fields: tuple[WireField, ...]

    @cached_property
    def struct(self) -> struct.Struct:
        return struct.Struct("<" + "".join(f"{f.count}{_CODES[f.size]}" for f in self.fields))

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return self.struct.size

    def offset(self, name: str) -> int:
        """Byte offset of field ``name``."""
        at = 0
        for f in self.fields:
            if f.name == name:
                return at
            at += f.size * f.count
        raise KeyError(name)

    def pack(self, **values: int | tuple[int, ...] | list[int]) -> bytes:
        """Fields by name; a field of ``count > 1`` takes a sequence."""
        flat: list[int] = []
        for f in self.fields:
            value = values[f.name]
            if f.count == 1:
                flat.append(int(cast(int, value)))
            else:
                flat.extend(int(v) for v in cast("Sequence[int]", value))
        return self.struct.pack(*flat)

    def unpack(self, data: bytes) -> dict[str, Any]:
        """Fields by name (a tuple for ``count > 1``); ValueError if ``data`` is not exactly one layout."""
        if len(data) != self.size:
            raise ValueError(f"expected {self.size} bytes, found {len(data)}")
        flat = self.struct.unpack(data)
        out: dict[str, Any] = {}
        at = 0
        for f in self.fields:
            out[f.name] = flat[at] if f.count == 1 else tuple(flat[at:at + f.count])
            at += f.count
        return out


#: A frame's header, before the payload (the CRC follows the payload).
HEADER = WireLayout((WireField("type", 1), WireField("sequence", 1), WireField("length", 2)))

#: The head of a LOAD or READ payload: which memory, its first row, how many rows.
REGION = WireLayout((WireField("target", 1), WireField("address", 4), WireField("count", 1)))


def result_reply(n_layers: int, n_outputs: int) -> WireLayout:
    """An INFER reply: flags (bit 0 fired, bit 1 input error), class, the step the class
    was final at, cycles, input spikes, spikes per layer, then each output's spike time
    (0xFFFF: did not fire)."""
    return WireLayout((WireField("flags", 1), WireField("decision", 2), WireField("decision_step", 2),
                       WireField("cycles", 4),
                       WireField("input_spikes", 2), WireField("layer_spikes", 2, n_layers),
                       WireField("output_times", 2, n_outputs)))
