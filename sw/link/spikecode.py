"""The INFER payload: one inference's input spikes as a short, time-ordered bit string.

Spikes go in (step, index) order, the order the core takes them, so the device forwards
them as they are decoded. Bits are read from each byte low bit first, bytes in order:

* a header: ``k_count`` (3 bits), ``k_gap`` (3 bits), then ``S``, the number of steps
  that follow (``T.bit_length()`` bits, at most ``T``);
* per step ``t < S``: the number of spikes ``n_t`` (Rice code, parameter ``k_count``),
  then ``n_t`` gaps (Rice, ``k_gap``): a spike of input ``base + gap``, then
  ``base = base + gap + 1`` (``base`` is 0 at each step's start);
* zero bits up to the byte's end, and nothing after.

A Rice code with parameter ``k`` sends ``v`` as ``v >> k`` one bits, a zero bit, then the
``k`` low bits of ``v`` (low first). The encoder picks each ``k`` that makes the payload
shortest. Measured against the information in an input (which ``n`` of ``N`` inputs
spike, and at which of ``T`` steps: ``log2 C(N, n) + n · log2 T`` bits), docs/protocol.md.

A payload is refused (``SpikeCodeError.which``) at its first fault in reading order:
``"step"`` where ``S > T``; ``"index"`` for an input not below ``N``; ``"repeat"`` for an
input that spiked before (an input spikes at most once, and the core would take both);
``"code"`` where the bits end inside a value, a padding bit is set, or bytes follow.
"""

from __future__ import annotations

import numpy as np

from ..arith import NO_SPIKE
from ..params import CoreParams

__all__ = ["encode_spikes", "decode_spikes", "SpikeCodeError", "K_BITS", "max_encoded_bytes", "steps_bits",
           "rice_bits", "Bits"]

K_BITS = 3  # bits of each Rice parameter: 0 ... 7


class SpikeCodeError(ValueError):
    """A payload that cannot be an input of this core; ``which`` is ``"step"``, ``"index"``,
    ``"repeat"`` or ``"code"``."""

    def __init__(self, message: str, which: str):
        super().__init__(message)
        self.which = which


def steps_bits(time_steps: int) -> int:
    """Bits of the header's step count ``S`` (``0 … T``)."""
    return time_steps.bit_length()


def rice_bits(values: np.ndarray, k: int) -> int:
    """Bits of ``values`` in the Rice code with parameter ``k``."""
    return int(np.sum((np.asarray(values, np.int64) >> k) + 1 + k))


def _steps(spike_times: np.ndarray) -> list[np.ndarray]:
    """Per step up to the last spike's, the sorted inputs that spike at it."""
    times = np.asarray(spike_times)
    index = np.flatnonzero(times != NO_SPIKE)
    if not len(index):
        return []
    return [index[times[index] == t] for t in range(int(times[index].max()) + 1)]


def _best_k(values: np.ndarray) -> int:
    return min(range(1 << K_BITS), key=lambda k: rice_bits(values, k))


class Bits:
    """A bit string written low bit first into bytes (the encoder's, and tests' for
    payloads it would never write)."""

    def __init__(self) -> None:
        self.value, self.length = 0, 0

    def put(self, value: int, bits: int) -> None:
        self.value |= (value & ((1 << bits) - 1)) << self.length
        self.length += bits

    def rice(self, value: int, k: int) -> None:
        self.put((1 << (value >> k)) - 1, (value >> k) + 1)  # the ones, then the zero
        self.put(value, k)

    def bytes(self) -> bytes:
        return self.value.to_bytes((self.length + 7) // 8, "little")


def encode_spikes(spike_times: np.ndarray, time_steps: int) -> bytes:
    """The payload for one sample's spike times ``[n_in]`` (``NO_SPIKE`` = none) on a core
    with ``time_steps`` steps (it sizes the header's step count)."""
    steps = _steps(spike_times)
    counts = np.array([len(s) for s in steps], np.int64)
    gaps = [np.diff(s, prepend=-1) - 1 for s in steps]
    k_count = _best_k(counts)
    k_gap = _best_k(np.concatenate(gaps)) if gaps else 0
    out = Bits()
    out.put(k_count, K_BITS)
    out.put(k_gap, K_BITS)
    out.put(len(steps), steps_bits(time_steps))
    for count, step_gaps in zip(counts, gaps):
        out.rice(int(count), k_count)
        for gap in step_gaps:
            out.rice(int(gap), k_gap)
    return out.bytes()


class _Reader:
    def __init__(self, payload: bytes):
        self.value, self.length, self.at = int.from_bytes(payload, "little"), 8 * len(payload), 0

    def bit(self) -> int:
        if self.at >= self.length:
            raise SpikeCodeError(f"the spike code ends inside a value (bit {self.at})", "code")
        self.at += 1
        return (self.value >> (self.at - 1)) & 1

    def field(self, bits: int) -> int:
        return sum(self.bit() << j for j in range(bits))

    def rice(self, k: int) -> int:
        ones = 0
        while self.bit():
            ones += 1
        return (ones << k) | self.field(k)


def decode_spikes(payload: bytes, params: CoreParams) -> np.ndarray:
    """Spike times ``int16 [n_in]``; :class:`SpikeCodeError` names the payload's first fault."""
    times = np.full(params.n_inputs, NO_SPIKE, np.int16)
    bits = _Reader(payload)
    k_count, k_gap = bits.field(K_BITS), bits.field(K_BITS)
    steps = bits.field(steps_bits(params.time_steps))
    if steps > params.time_steps:
        raise SpikeCodeError(f"the spike code has {steps} steps, more than T = {params.time_steps}", "step")
    for step in range(steps):
        base = 0
        for _ in range(bits.rice(k_count)):
            index = base + bits.rice(k_gap)
            if index >= params.n_inputs:
                raise SpikeCodeError(f"step {step}: input {index} is not below {params.n_inputs}", "index")
            if times[index] != NO_SPIKE:
                raise SpikeCodeError(f"step {step}: input {index} already spiked at step {times[index]}", "repeat")
            times[index] = step
            base = index + 1
    if bits.length - bits.at >= 8 or bits.value >> bits.at:
        raise SpikeCodeError(f"the spike code goes on after its last step (bit {bits.at} of {bits.length})",
                             "code")
    return times


def max_encoded_bytes(params: CoreParams) -> int:
    """A bound on the payload of any valid input: the encoder's choice of parameters costs
    at most what ``k = 2**K_BITS - 1`` would for every count and gap (each at most ``N``)."""
    k, n = (1 << K_BITS) - 1, params.n_inputs
    per_value = (n >> k) + 1 + k
    bits = 2 * K_BITS + steps_bits(params.time_steps) + (params.time_steps + n) * per_value
    return (bits + 7) // 8
