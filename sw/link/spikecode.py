"""The INFER payload: one inference's input spikes as a short, time-ordered byte string.

Spikes go in (step, index) order, which is the order the core takes them, so the device
forwards them as they are decoded. Each byte is a token:

* ``0xFF`` — next step: ``step += 1``, ``base = 0`` (the first step is 0);
* ``0xFE`` — skip: ``base += 254``, no spike;
* ``g`` in ``0 … 0xFD`` — a spike of input ``base + g`` at ``step``; then ``base = base + g + 1``.

Steps after the last spike are not sent. A typical input costs a byte per spike plus one
per step up to the last spike: a digits test image (33 spikes, T = 16) 46.6 bytes on
average, a Fashion-MNIST test image (396 spikes, T = 32) 449 bytes, against 64 and 784
bytes for one byte per input, and 2-3 bytes per spike as (index, step) pairs.
"""

from __future__ import annotations

import numpy as np

from ..arith import NO_SPIKE
from ..params import CoreParams

__all__ = ["encode_spikes", "decode_spikes", "SpikeCodeError", "NEXT_STEP", "SKIP", "max_encoded_bytes"]

NEXT_STEP = 0xFF
SKIP = 0xFE
GAP_LIMIT = 0xFE  # gaps 0 ... 0xFD are one token


class SpikeCodeError(ValueError):
    """A token stream that names an input or step outside the core; ``which`` is
    ``"index"`` or ``"step"``."""

    def __init__(self, message: str, which: str):
        super().__init__(message)
        self.which = which


def encode_spikes(spike_times: np.ndarray) -> bytes:
    """Tokens for one sample's spike times ``[n_in]`` (``NO_SPIKE`` = none)."""
    times = np.asarray(spike_times)
    index = np.flatnonzero(times != NO_SPIKE)
    order = np.lexsort((index, times[index]))
    out = bytearray()
    step, base = 0, 0
    for i in index[order]:
        t = int(times[i])
        if t > step:
            out += bytes((NEXT_STEP,)) * (t - step)
            step, base = t, 0
        gap = int(i) - base
        while gap >= GAP_LIMIT:
            out.append(SKIP)
            gap -= 254
        out.append(gap)
        base = int(i) + 1
    return bytes(out)


def decode_spikes(tokens: bytes, params: CoreParams) -> np.ndarray:
    """Spike times ``int16 [n_in]``; :class:`SpikeCodeError` names the first spike out of range."""
    times = np.full(params.n_inputs, NO_SPIKE, np.int16)
    step, base = 0, 0
    for position, token in enumerate(tokens):
        if token == NEXT_STEP:
            step, base = step + 1, 0
        elif token == SKIP:
            base += 254
        else:
            index = base + token
            if index >= params.n_inputs:
                raise SpikeCodeError(f"token {position}: input {index} is not below {params.n_inputs}", "index")
            if step >= params.time_steps:
                raise SpikeCodeError(f"token {position}: step {step} is not below T = {params.time_steps}", "step")
            times[index] = step
            base = index + 1
    return times


def max_encoded_bytes(params: CoreParams) -> int:
    """The longest encoding of any valid input: every step token, every input, every skip."""
    return params.time_steps - 1 + params.n_inputs + params.n_inputs // 254 + 1
