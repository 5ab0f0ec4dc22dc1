"""A TCP proxy that damages what passes through it: bit flips and dropped bytes, in both
directions, for testing that the link survives a noisy wire."""

from __future__ import annotations

import select
import socket
import threading

import numpy as np


class DamagingProxy:
    """Listens on a free port (``url``) and relays one client to ``target`` (a socket://
    URL), damaging a chunk with probability ``rate``."""

    def __init__(self, target: str, *, seed: int = 0, rate: float = 0.1):
        host, port = target.removeprefix("socket://").split(":")
        self.target = (host, int(port))
        self.rng, self.rate = np.random.default_rng(seed), rate
        self.damaged = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def damage(self, data: bytes) -> bytes:
        if len(data) < 2 or self.rng.random() >= self.rate:
            return data
        self.damaged += 1
        data = bytearray(data)
        position = int(self.rng.integers(0, len(data)))
        if self.rng.random() < 0.5:
            data[position] ^= 1 << int(self.rng.integers(0, 8))
        else:
            del data[position]
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

    def __enter__(self) -> "DamagingProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
