"""Frames on the byte stream: HDLC-style byte stuffing around a header, payload and CRC.

On the wire a frame is ``FLAG`` followed by the stuffed bytes of

    type (1) | sequence (1) | length (2, little-endian) | payload (length) | CRC-16 (2, little-endian)

with the CRC (:mod:`.crc`) over type, sequence, length and payload. Stuffing replaces each
``FLAG`` (0x7E) or ``ESCAPE`` (0x7D) byte inside a frame by ``ESCAPE, byte ^ 0x20``, so a
``FLAG`` only ever starts a frame: a receiver that lost bytes is back in step at the next
frame, whatever the lost bytes were.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .crc import crc16
from .fields import HEADER

__all__ = ["FLAG", "ESCAPE", "HEADER_BYTES", "Frame", "FrameFault", "FaultKind", "encode_frame",
           "FrameDecoder"]

FLAG = 0x7E
ESCAPE = 0x7D
HEADER_BYTES = HEADER.size  # type, sequence, length (sw/link/fields.py)
CRC_BYTES = 2


@dataclass(frozen=True)
class Frame:
    type: int
    sequence: int
    payload: bytes = b""


class FaultKind(Enum):
    BAD_CRC = "bad CRC"
    TOO_LONG = "length over the maximum"
    CUT_SHORT = "frame cut short by a new start byte"
    BAD_ESCAPE = "escape byte followed by a byte that is never escaped"


@dataclass(frozen=True)
class FrameFault:
    """A frame that could not be received; ``type`` and ``sequence`` as far as they were read."""

    kind: FaultKind
    type: int | None = None
    sequence: int | None = None


def _stuff(data: bytes) -> bytes:
    out = bytearray()
    for byte in data:
        if byte in (FLAG, ESCAPE):
            out += bytes((ESCAPE, byte ^ 0x20))
        else:
            out.append(byte)
    return bytes(out)


def encode_frame(frame: Frame) -> bytes:
    if not (0 <= frame.type <= 0xFF and 0 <= frame.sequence <= 0xFF):
        raise ValueError(f"type and sequence must be bytes, not {frame.type}, {frame.sequence}")
    if len(frame.payload) > 0xFFFF:
        raise ValueError(f"a payload holds at most 65535 bytes, not {len(frame.payload)}")
    body = HEADER.pack(type=frame.type, sequence=frame.sequence, length=len(frame.payload)) + frame.payload
    return bytes((FLAG,)) + _stuff(body + crc16(body).to_bytes(2, "little"))


class FrameDecoder:
    """Turns received bytes into :class:`Frame` and :class:`FrameFault` items.

    Bytes before the first ``FLAG`` and after a fault are skipped until the next ``FLAG``.
    A frame whose length exceeds ``max_payload`` is refused as soon as its header is in.
    :meth:`reset` drops a partial frame (the idle timeout calls it).
    """

    def __init__(self, max_payload: int = 0xFFFF):
        self.max_payload = max_payload
        self.reset()

    def reset(self) -> None:
        self._body: bytearray | None = None  # None: hunting for a FLAG
        self._escaped = False

    @property
    def in_frame(self) -> bool:
        return self._body is not None

    def feed(self, data: bytes) -> list[Frame | FrameFault]:
        items: list[Frame | FrameFault] = []
        for byte in data:
            if byte == FLAG:
                if self._body:
                    items.append(self._fault(FaultKind.CUT_SHORT))
                self._body, self._escaped = bytearray(), False
                continue
            if self._body is None:
                continue
            if self._escaped:
                self._escaped = False
                if byte ^ 0x20 not in (FLAG, ESCAPE):
                    items.append(self._fault(FaultKind.BAD_ESCAPE))
                    self._body = None
                    continue
                byte ^= 0x20
            elif byte == ESCAPE:
                self._escaped = True
                continue
            self._body.append(byte)
            item = self._check()
            if item is not None:
                items.append(item)
                self._body = None
        return items

    def _fault(self, kind: FaultKind) -> FrameFault:
        body = self._body or b""
        at_type, at_sequence = HEADER.offset("type"), HEADER.offset("sequence")
        return FrameFault(kind, body[at_type] if len(body) > at_type else None,
                          body[at_sequence] if len(body) > at_sequence else None)

    def _check(self) -> Frame | FrameFault | None:
        body = self._body
        if body is None or len(body) < HEADER_BYTES:
            return None
        length = int(HEADER.unpack(bytes(body[:HEADER_BYTES]))["length"])
        if length > self.max_payload:
            return self._fault(FaultKind.TOO_LONG)
        if len(body) < HEADER_BYTES + length + CRC_BYTES:
            return None
        end = HEADER_BYTES + length
        if crc16(bytes(body[:end])) != int.from_bytes(body[end:end + CRC_BYTES], "little"):
            return self._fault(FaultKind.BAD_CRC)
        header = HEADER.unpack(bytes(body[:HEADER_BYTES]))
        return Frame(int(header["type"]), int(header["sequence"]), bytes(body[HEADER_BYTES:end]))
