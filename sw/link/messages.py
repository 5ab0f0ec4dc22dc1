"""The link's messages: command and reply types, NACK codes and payload layouts.

Every multi-byte field is little-endian. A reply has the request's type with bit 7 set and
the request's sequence number; a refused request gets a ``NACK`` frame whose payload is
``code, request type``. docs/protocol.md has the tables.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..arith import NO_SPIKE
from ..layout import MemoryLayout, Target
from ..params import CoreParams, DecisionRule, Kernel, Schedule
from ..topology import Conv2d, Dense, LayerShape, MapShape, Pooling, PoolKind
from .fields import REGION, result_reply
from .spikecode import max_encoded_bytes

__all__ = ["PROTOCOL_VERSION", "SPIKE_CODE_NACKS", "info_shapes_bytes", "Command", "REPLY", "NACK", "Nack", "Info",
           "Result", "row_bytes", "pack_load", "unpack_load", "pack_read", "unpack_read", "pack_rows", "unpack_rows"]

PROTOCOL_VERSION = 5
REPLY = 0x80
NACK = 0xFF


class Command(IntEnum):
    INFO = 0x01         # -> Info
    LOAD = 0x02         # target, address, count, rows -> echo of target, address, count
    READ = 0x03         # target, address, count -> rows
    COMMIT = 0x04       # model sha256 (32 bytes) -> empty; INFO reports it until the next LOAD
    INFER = 0x05        # spike code (spikecode) -> Result, when the inference is done
    READ_RESULT = 0x06  # empty -> the last Result again
    RESET = 0x07        # empty -> empty; the receiver back to hunting; memories, hash, last result kept
    ECHO = 0x08         # anything -> the same bytes


class Nack(IntEnum):
    BAD_CRC = 1
    BAD_LENGTH = 2      # over the maximum payload, or the wrong size for the command
    UNKNOWN_TYPE = 3
    INDEX_RANGE = 4     # a spike's input index is not below n_inputs
    TIME_RANGE = 5      # a spike's step is not below T
    BUSY = 6            # no room for another inference; retry after a Result
    BAD_ADDRESS = 7     # LOAD/READ rows outside the memory
    BAD_TARGET = 8
    NO_RESULT = 9       # READ_RESULT before any inference
    FRAMING = 10        # frame cut short or a bad escape
    BAD_CODE = 11       # the spike code ends inside a value, or goes on after its last step
    SPIKE_REPEAT = 12   # an input spikes twice


#: The NACK for each fault of a spike code (``SpikeCodeError.which``).
SPIKE_CODE_NACKS = {"step": Nack.TIME_RANGE, "index": Nack.INDEX_RANGE, "repeat": Nack.SPIKE_REPEAT,
                    "code": Nack.BAD_CODE}


_INFO_HEAD = struct.Struct("<BB")                 # version, n_layers
_INFO_TAIL = struct.Struct("<HBBBHBIIH32sB")      # T, kernel, weight bits, potential bits, lanes,
#                                                   decision, clock Hz, baud, max payload, sha256, flags
_KERNELS = {Kernel.STEP: 0, Kernel.RAMP: 1}
_DECISIONS = {DecisionRule.FIRST_SPIKE: 0}
COMMITTED = 0x01  # Info.flags: the model hash was set by COMMIT (or at generation) and nothing since
STEPPED = 0x02    # Info.flags: the core runs the stepped schedule (it answers at the decision step)
SHAPED = 0x04     # Info.flags: layer shapes follow (a network with conv or pooled layers)
# A layer's shape: kind (0 dense, 1 conv2d), pool size (0: none), pool kind (0 sum, 1 max),
# input map C, H, W (0: not given), channels, kernel kh, kw, stride sy, sx, padding py, px.
_SHAPE = struct.Struct("<BBBHHHHBBBBBB")
_POOLS = {PoolKind.SUM: 0, PoolKind.MAX: 1}


def info_shapes_bytes(params: CoreParams) -> int:
    """Bytes of layer shapes at the end of ``params``' INFO reply (after the flags)."""
    return 0 if params.fully_connected else params.n_layers * _SHAPE.size


def _pack_shape(shape: LayerShape) -> bytes:
    pool = shape.pool
    c, h, w = shape.input_map.as_tuple() if shape.input_map is not None else (0, 0, 0)
    if isinstance(shape, Conv2d):
        return _SHAPE.pack(1, pool.size if pool else 0, _POOLS[pool.kind] if pool else 0, c, h, w, shape.channels,
                           *shape.kernel, *shape.stride, *shape.padding)
    return _SHAPE.pack(0, pool.size if pool else 0, _POOLS[pool.kind] if pool else 0, c, h, w, shape.outputs,
                       0, 0, 0, 0, 0, 0)


def _unpack_shape(record: bytes) -> LayerShape:
    kind, pool_size, pool_kind, c, h, w, channels, kh, kw, sy, sx, py, px = _SHAPE.unpack(record)
    kinds = {v: k for k, v in _POOLS.items()}
    if kind not in (0, 1) or pool_kind not in kinds:
        raise ValueError(f"unknown layer kind {kind} or pool kind {pool_kind} in an INFO reply")
    pool = Pooling(pool_size, kinds[pool_kind]) if pool_size else None
    input_map = MapShape(c, h, w) if c else None
    if kind == 1:
        if input_map is None:
            raise ValueError("a conv2d layer without its input map in an INFO reply")
        return Conv2d(input_map, channels, (kh, kw), (sy, sx), (py, px), pool)
    return Dense(channels, input_map, pool)


@dataclass(frozen=True)
class Info:
    params: CoreParams
    clock_hz: int
    baud: int
    max_payload: int
    model_sha256: bytes
    flags: int = 0
    version: int = PROTOCOL_VERSION

    @property
    def committed(self) -> bool:
        return bool(self.flags & COMMITTED)

    def pack(self) -> bytes:
        p = self.params
        shaped = not p.fully_connected
        return (_INFO_HEAD.pack(self.version, p.n_layers)
                + struct.pack(f"<{p.n_layers + 1}H", *p.layer_sizes)
                + _INFO_TAIL.pack(p.time_steps, _KERNELS[p.kernel], p.weight_bits, p.potential_bits, p.lanes,
                                  _DECISIONS[p.decision], self.clock_hz, self.baud, self.max_payload,
                                  self.model_sha256,
                                  self.flags | (STEPPED if p.stepped else 0) | (SHAPED if shaped else 0))
                + (b"".join(_pack_shape(shape) for shape in p.shapes) if shaped else b""))

    @classmethod
    def unpack(cls, payload: bytes) -> Info:
        version, n_layers = _INFO_HEAD.unpack_from(payload)
        if version != PROTOCOL_VERSION:
            raise ValueError(f"the device speaks protocol version {version}, this driver {PROTOCOL_VERSION}: "
                             f"rebuild the device with this FirstSpike")
        sizes_format = f"<{n_layers + 1}H"
        fixed = _INFO_HEAD.size + struct.calcsize(sizes_format) + _INFO_TAIL.size
        flags = payload[fixed - 1] if len(payload) >= fixed else 0
        shapes_size = n_layers * _SHAPE.size if flags & SHAPED else 0
        if len(payload) != fixed + shapes_size:
            raise ValueError(f"an INFO reply for {n_layers} layers has the wrong length ({len(payload)} bytes)")
        sizes = struct.unpack_from(sizes_format, payload, _INFO_HEAD.size)
        (steps, kernel, wb, pb, lanes, decision, clock, baud, max_payload, sha, flags) = _INFO_TAIL.unpack_from(
            payload, _INFO_HEAD.size + struct.calcsize(sizes_format))
        shapes = tuple(_unpack_shape(payload[fixed + k * _SHAPE.size:fixed + (k + 1) * _SHAPE.size])
                       for k in range(n_layers if flags & SHAPED else 0))
        kernels = {v: k for k, v in _KERNELS.items()}
        decisions = {v: k for k, v in _DECISIONS.items()}
        if kernel not in kernels or decision not in decisions:
            raise ValueError(f"unknown kernel {kernel} or decision rule {decision} in an INFO reply")
        params = CoreParams(tuple(sizes), steps, kernel=kernels[kernel], weight_bits=wb, potential_bits=pb,
                            lanes=lanes, decision=decisions[decision],
                            schedule=Schedule.STEPPED if flags & STEPPED else Schedule.LAYERED, shapes=shapes)
        return cls(params, clock, baud, max_payload, sha, flags & ~SHAPED, version)


RESULT_FIRED, RESULT_INPUT_ERROR = 0x01, 0x02  # bits of the result's flags (sw/link/fields.py)
NO_TIME = 0xFFFF


@dataclass(frozen=True)
class Result:
    """One inference's result as the device reports it."""

    decision: int
    fired: bool
    input_error: bool
    cycles: int
    input_spikes: int
    layer_spikes: tuple[int, ...]
    output_times: np.ndarray  # int [n_out], NO_SPIKE where an output did not fire
    decision_step: int        # the first output spike's step, or T-1 where none fired

    def pack(self) -> bytes:
        flags = (RESULT_FIRED if self.fired else 0) | (RESULT_INPUT_ERROR if self.input_error else 0)
        times = [NO_TIME if t == NO_SPIKE else int(t) for t in self.output_times]
        return result_reply(len(self.layer_spikes), len(times)).pack(
            flags=flags, decision=self.decision, decision_step=self.decision_step, cycles=self.cycles,
            input_spikes=self.input_spikes,
            layer_spikes=self.layer_spikes, output_times=times)

    @classmethod
    def unpack(cls, payload: bytes, params: CoreParams) -> Result:
        try:
            v = result_reply(params.n_layers, params.n_outputs).unpack(payload)
        except ValueError:
            raise ValueError(f"a result for {params.n_layers} layers and {params.n_outputs} outputs has the wrong "
                             f"length ({len(payload)} bytes)") from None
        times = np.array([NO_SPIKE if t == NO_TIME else t for t in v["output_times"]], np.int64)
        return cls(v["decision"], bool(v["flags"] & RESULT_FIRED), bool(v["flags"] & RESULT_INPUT_ERROR),
                   v["cycles"], v["input_spikes"], v["layer_spikes"], times, v["decision_step"])


# -- memory rows ---------------------------------------------------------------------------

_REGION = REGION.struct  # target, first row, row count (sw/link/fields.py)


def row_bytes(layout: MemoryLayout, target: Target) -> int:
    width = layout.weight_width if target is Target.WEIGHTS else layout.neuron_width
    return (width + 7) // 8


def memory_rows(layout: MemoryLayout, target: Target) -> int:
    return layout.weight_rows if target is Target.WEIGHTS else layout.neuron_rows


def pack_rows(words: list[int], size: int) -> bytes:
    return b"".join(word.to_bytes(size, "little") for word in words)


def unpack_rows(data: bytes, size: int) -> list[int]:
    return [int.from_bytes(data[i:i + size], "little") for i in range(0, len(data), size)]


def pack_load(layout: MemoryLayout, target: Target, address: int, words: list[int]) -> bytes:
    return _REGION.pack(target, address, len(words)) + pack_rows(words, row_bytes(layout, target))


def pack_read(target: Target, address: int, count: int) -> bytes:
    return _REGION.pack(target, address, count)


def unpack_region(payload: bytes) -> tuple[int, int, int]:
    """``(target, address, count)`` from the head of a LOAD or READ payload (ValueError if short)."""
    if len(payload) < _REGION.size:
        raise ValueError("shorter than a region header")
    return _REGION.unpack_from(payload)


def unpack_load(payload: bytes) -> tuple[int, int, int, bytes]:
    target, address, count = unpack_region(payload)
    return target, address, count, payload[_REGION.size:]


def unpack_read(payload: bytes) -> tuple[int, int, int]:
    if len(payload) != _REGION.size:
        raise ValueError("a READ payload is exactly a region header")
    return unpack_region(payload)


REGION_BYTES = _REGION.size


def default_max_payload(params: CoreParams) -> int:
    """A device's largest payload unless told otherwise: room for any INFER and for loads
    of a useful size (at least 1 KiB)."""
    return max(max_encoded_bytes(params), 1024)
