"""Coordinates from flat indices without dividers: ``(c, y, x)`` of a map index, ``(y, x)``
of a position.

A quotient by a constant is a multiply and a shift, ``floor(i / d) = (i · m) >> s`` with
``m = ceil(2^s / d)``; :func:`divide` picks the smallest ``s`` for which that holds for
every ``i`` the value can hold, and checks all of them here, in Python, before it builds
anything (an exhaustive check, not a proof to trust).
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, Signal, Value

from firstspike.sw.topology import MapShape

__all__ = ["times", "divide", "unravel", "position_coordinates"]


def _multiplier(divisor: int, limit: int) -> tuple[int, int]:
    """``(m, s)`` with ``(i · m) >> s == i // divisor`` for all ``0 <= i < limit``."""
    values = np.arange(limit, dtype=object)
    want = values // divisor
    for shift in range(max(1, limit.bit_length()) + divisor.bit_length() + 1):
        multiplier = -(-(1 << shift) // divisor)
        if all((values * multiplier) >> shift == want):
            return multiplier, shift
    raise AssertionError(f"no multiplier divides 0 ... {limit - 1} by {divisor}")  # unreachable


def times(value: Value, constant: int) -> Value:
    """``value · constant`` as shifted adds (a small constant needs no multiplier block)."""
    terms = [value << bit for bit in range(constant.bit_length()) if constant >> bit & 1]
    return sum(terms[1:], terms[0]) if terms else value * 0


def divide(m: Module, value: Value, divisor: int, limit: int, name: str) -> tuple[Signal, Signal]:
    """``(value // divisor, value % divisor)`` for ``0 <= value < limit``, combinational: one
    multiplier for the quotient, shifted adds for the remainder."""
    quotient = Signal(range(max(2, -(-limit // divisor))), name=f"{name}_quotient")
    remainder = Signal(range(max(2, divisor)), name=f"{name}_remainder")
    if limit <= divisor:  # the quotient is always 0
        m.d.comb += [quotient.eq(0), remainder.eq(value)]
    elif divisor == 1:
        m.d.comb += [quotient.eq(value), remainder.eq(0)]
    elif divisor & (divisor - 1) == 0:
        bits = divisor.bit_length() - 1
        m.d.comb += [quotient.eq(value >> bits), remainder.eq(value[:bits])]
    else:
        multiplier, shift = _multiplier(divisor, limit)
        m.d.comb += [quotient.eq((value * multiplier) >> shift), remainder.eq(value - times(quotient, divisor))]
    return quotient, remainder


def unravel(m: Module, index: Value, shape: MapShape, name: str) -> tuple[Value, Value, Value]:
    """``(c, y, x)`` of flat index ``index`` of ``shape`` (channel-major)."""
    channel, rest = divide(m, index, shape.height * shape.width, shape.size, f"{name}_c")
    y, x = divide(m, rest, shape.width, shape.height * shape.width, f"{name}_y")
    return channel, y, x


def position_coordinates(m: Module, position: Value, shape: MapShape, name: str) -> tuple[Value, Value]:
    """``(y, x)`` of position ``y · W + x`` of ``shape``."""
    return divide(m, position, shape.width, shape.height * shape.width, name)
