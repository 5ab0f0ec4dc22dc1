"""Refusing bad parameters in a Component's constructor."""

from __future__ import annotations

from typing import NoReturn

__all__ = ["refuse"]


def refuse(elaboratable: object, error: Exception) -> NoReturn:
    """Raise ``error`` from ``elaboratable``'s constructor.

    Amaranth warns about every elaboratable that is created but never elaborated; one
    whose constructor refused its parameters never can be, so the warning is silenced.
    """
    elaboratable._MustUse__silence = True  # type: ignore[attr-defined]
    raise error
