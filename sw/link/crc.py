"""The link's CRC: CRC-16/IBM-3740 (also known as CRC-16/CCITT-FALSE).

Width 16, polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR; check
value 0x29B1 for b"123456789". The gateware uses ``amaranth.lib.crc.catalog.CRC16_IBM_3740``,
the same parameters (a test holds the two to each other).
"""

from __future__ import annotations

__all__ = ["crc16", "CRC16_POLYNOMIAL", "CRC16_INITIAL", "CATALOG_NAME"]

CRC16_POLYNOMIAL = 0x1021
CRC16_INITIAL = 0xFFFF
CATALOG_NAME = "CRC16_IBM_3740"


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        value = byte << 8
        for _ in range(8):
            value = ((value << 1) ^ CRC16_POLYNOMIAL) if value & 0x8000 else value << 1
        table.append(value & 0xFFFF)
    return tuple(table)


_TABLE = _table()


def crc16(data: bytes, value: int = CRC16_INITIAL) -> int:
    """CRC of ``data``; pass a previous result as ``value`` to continue over more bytes."""
    for byte in data:
        value = ((value << 8) & 0xFFFF) ^ _TABLE[(value >> 8) ^ byte]
    return value
