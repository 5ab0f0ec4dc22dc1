"""TTFS encoding: an intensity becomes the time of one input spike.

Brighter is earlier. With ``x`` in ``[0, x_max]`` and ``T`` time steps::

    s = floor((x_max - x) * (T - 1) / x_max + 1/2)    for x > 0
    s = NO_SPIKE                                       for x == 0

so ``x_max`` spikes at step 0, the faintest non-zero value near ``T - 1``, and zero
never spikes. See docs/encoding-and-data.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arith import NO_SPIKE
from .errors import SpikeInputError

__all__ = ["LatencyEncoding"]


@dataclass(frozen=True)
class LatencyEncoding:
    """Linear intensity-to-latency code; ``x_max`` is the brightest value (e.g. 16, 255)."""

    x_max: float
    kind: str = "linear-latency"

    def __post_init__(self) -> None:
        if self.kind != "linear-latency":
            raise ValueError(f"encoding kind must be 'linear-latency', not {self.kind!r}")
        if not np.isfinite(self.x_max) or self.x_max <= 0:
            raise ValueError(f"encoding x_max must be a positive finite number, not {self.x_max!r}")

    def encode(self, x: np.ndarray, time_steps: int) -> np.ndarray:
        """Spike times for intensities.

        Parameters
        ----------
        x:
            Intensities, any shape, in ``[0, x_max]``.
        time_steps:
            ``T``; times come out in ``0 ... T-1``.

        Returns
        -------
        ``int16`` array of the same shape; :data:`~firstspike.sw.arith.NO_SPIKE` for zero.
        """
        x = np.asarray(x, dtype=np.float64)
        bad = ~np.isfinite(x) | (x < 0) | (x > self.x_max)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise SpikeInputError(
                f"intensity at index {where} is {float(x[where])!r}; it must lie in [0, {self.x_max:g}]"
            )
        times = np.floor((self.x_max - x) * (time_steps - 1) / self.x_max + 0.5)
        return np.where(x > 0, times, NO_SPIKE).astype(np.int16)
