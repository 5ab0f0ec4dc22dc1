"""A TCP proxy that damages what passes through it: bit flips and dropped bytes, in both
directions, for testing that the link survives a noisy wire."""

from __future__ import annotations

import select
import socket
import threading

import numpy as np


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
