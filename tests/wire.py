"""What tests put on the wire: a TCP proxy that damages what passes through it (bit flips
and dropped bytes, in both directions), and the table of malformed requests with the NACK
each must get, replayed against the emulator and against the simulated board."""

from __future__ import annotations

import select
import socket
import threading
import time

import numpy as np

from firstspike.sw.link.framing import Frame, FrameDecoder, encode_frame
from firstspike.sw.link.messages import Command, Nack
from firstspike.sw.link.spikecode import K_BITS, Bits, steps_bits


def raw_spike_code(steps: list[list[int]], *, time_steps: int = 16, k_count: int = 2, k_gap: int = 3,
                   step_count: int | None = None, pad: int = 0, extra: bytes = b"") -> bytes:
    """A spike code as written, whether or not it is valid: per step its gaps (the count is
    their number), ``step_count`` in the header (default: the steps given), ``pad`` in the
    bits up to the byte's end, ``extra`` bytes after."""
    bits = Bits()
    bits.put(k_count, K_BITS)
    bits.put(k_gap, K_BITS)
    bits.put(len(steps) if step_count is None else step_count, steps_bits(time_steps))
    for gaps in steps:
        bits.rice(len(gaps), k_count)
        for gap in gaps:
            bits.rice(gap, k_gap)
    bits.put(pad, -bits.length % 8)
    return bits.bytes() + extra


def frame_with_bad_crc(frame: Frame) -> bytes:
    wire = bytearray(encode_frame(frame))
    wire[-1] ^= 0x01 if wire[-1] not in (0x7F, 0x7C) else 0x02
    return bytes(wire)


#: Requests a device must refuse, each with its NACK code (sequence 7), for a device with
#: the digits model's shape (64 inputs, T = 16).
MALFORMED_REQUESTS = [
    (frame_with_bad_crc(Frame(Command.ECHO, 7, b"hello")), Nack.BAD_CRC),
    (encode_frame(Frame(0x42, 7)), Nack.UNKNOWN_TYPE),
    (encode_frame(Frame(Command.INFO, 7, b"x")), Nack.BAD_LENGTH),
    (encode_frame(Frame(Command.INFER, 7, raw_spike_code([[5, 58]]))), Nack.INDEX_RANGE),   # input 64
    (encode_frame(Frame(Command.INFER, 7, raw_spike_code([[]] * 16 + [[0]]))), Nack.TIME_RANGE),
    (encode_frame(Frame(Command.INFER, 7, raw_spike_code([[1, 2], [], [4]]))), Nack.SPIKE_REPEAT),  # input 4
    (encode_frame(Frame(Command.INFER, 7, raw_spike_code([[1]], extra=b"\0"))), Nack.BAD_CODE),
    (encode_frame(Frame(Command.LOAD, 7, bytes((9, 0, 0, 0, 0, 1)) + bytes(16))), Nack.BAD_TARGET),
    (encode_frame(Frame(Command.READ, 7, bytes((0, 0xFF, 0xFF, 0, 0, 1)))), Nack.BAD_ADDRESS),
    (encode_frame(Frame(Command.READ_RESULT, 7)), Nack.NO_RESULT),
    (encode_frame(Frame(Command.ECHO, 7, bytes(4000))), Nack.BAD_LENGTH),
]


def exchange(connection: socket.socket, data: bytes, replies: int, timeout: float = 2.0) -> list:
    """Send raw ``data``; the next ``replies`` frames (or faults) that come back."""
    connection.sendall(data)
    decoder, items, deadline = FrameDecoder(), [], time.monotonic() + timeout
    connection.settimeout(timeout)
    while len(items) < replies and time.monotonic() < deadline:
        items += decoder.feed(connection.recv(4096))
    return items


def connect(url: str, timeout: float = 2.0) -> socket.socket:
    host, port = url.removeprefix("socket://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


class DamagingProxy:
    """Listens on a free port (``url``) and relays one client to ``target`` (a socket://
    URL), damaging one byte every ``mean_gap`` bytes on average (gaps drawn at random).

    Counting bytes rather than TCP chunks keeps the damage rate the same however the
    stream happens to be chunked (a loaded machine sends many small chunks)."""

    def __init__(self, target: str, *, seed: int = 0, mean_gap: int = 200):
        host, port = target.removeprefix("socket://").split(":")
        self.target = (host, int(port))
        self.rng, self.mean_gap = np.random.default_rng(seed), mean_gap
        self._until_damage = self._gap()
        self.damaged = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _gap(self) -> int:
        return int(self.rng.geometric(1.0 / self.mean_gap))

    def damage(self, data: bytes) -> bytes:
        data = bytearray(data)
        position = self._until_damage - 1
        while position < len(data):
            self.damaged += 1
            if self.rng.random() < 0.5:
                data[position] ^= 1 << int(self.rng.integers(0, 8))
            else:
                del data[position]
            position += self._gap()
        self._until_damage = position - len(data) + 1
        return bytes(data)

    def _run(self) -> None:
        client, _ = self._listener.accept()
        upstream = socket.create_connection(self.target)
        peers = {client: upstream, upstream: client}
        with client, upstream:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(self.damage(data))

    def close(self) -> None:
        self._listener.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> DamagingProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
