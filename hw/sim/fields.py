"""A port's payload as an integer, packed and unpacked with the manifest's field offsets
(hw/generate.py): what every testbench, Python or Verilog-driving, reads the ports with."""

from __future__ import annotations

__all__ = ["Fields"]


class Fields:
    """Packs and unpacks one port's payload with the manifest's field offsets."""

    def __init__(self, port: dict):
        self.fields = port["fields"]

    def pack(self, **values: int) -> int:
        word = 0
        for name, value in values.items():
            offset, width = self.fields[name]
            word |= (int(value) & ((1 << width) - 1)) << offset
        return word

    def get(self, word: int, name: str) -> int:
        offset, width = self.fields[name]
        return (word >> offset) & ((1 << width) - 1)
