"""What an inference costs on the wire: the spike code against the information in an input,
whole frames both ways, and the inferences/s a line rate carries (``firstspike bench-link``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..arith import NO_SPIKE
from ..params import CoreParams
from .framing import Frame, encode_frame
from .messages import REPLY, Command, Result
from .spikecode import encode_spikes

__all__ = ["LinkCost", "information_bits", "link_cost", "UART_BITS_PER_BYTE"]

UART_BITS_PER_BYTE = 10  # start, 8 data, stop


def information_bits(spike_times: np.ndarray, time_steps: int) -> float:
    """The bits it takes to say which ``n`` of the ``N`` inputs spike and at which of ``T``
    steps: ``log2 C(N, n) + n · log2 T``, the bound any code of this input meets at best."""
    n_in = len(spike_times)
    n = int(np.count_nonzero(np.asarray(spike_times) != NO_SPIKE))
    choose = math.lgamma(n_in + 1) - math.lgamma(n + 1) - math.lgamma(n_in - n + 1)
    return choose / math.log(2) + n * math.log2(time_steps)


@dataclass(frozen=True)
class LinkCost:
    samples: int
    spikes: float            # input spikes per sample, mean
    payload_bytes: float     # the spike code alone, mean
    bound_bytes: float       # information_bits / 8, mean
    ratio: float             # payload_bytes / bound_bytes
    request_bytes: float     # the INFER frame on the wire (flag, stuffing, header, CRC)
    reply_bytes: float
    baud: int
    inferences_per_second: float  # the line's bound

    def as_dict(self) -> dict:
        return asdict(self)


def link_cost(params: CoreParams, spike_times: np.ndarray, baud: int) -> LinkCost:
    """Bytes per inference for ``spike_times [samples, n_in]``, and the rate ``baud`` carries,
    counting both directions' bytes in turn (a bound that holds without overlap)."""
    t = params.time_steps
    payloads = [encode_spikes(row, t) for row in spike_times]
    requests = [len(encode_frame(Frame(Command.INFER, 0, p))) for p in payloads]
    reply = len(encode_frame(Frame(Command.INFER | REPLY, 0, Result(
        0, False, False, 0, 0, (0,) * params.n_layers, np.full(params.n_outputs, -1), 0).pack())))
    payload = float(np.mean([len(p) for p in payloads]))
    bound = float(np.mean([information_bits(row, t) for row in spike_times])) / 8
    request = float(np.mean(requests))
    return LinkCost(len(spike_times), float(np.mean(np.count_nonzero(spike_times != NO_SPIKE, axis=1))),
                    payload, bound, payload / bound if bound else math.inf, request, float(reply), baud,
                    baud / UART_BITS_PER_BYTE / (request + reply))
