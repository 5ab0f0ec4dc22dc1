"""cocotb bridge: the UART pins of the simulated accelerator behind a TCP socket.

The bytes a client sends go onto ``rx`` bit by bit at the link's baud rate; every byte the
design sends on ``tx`` is decoded and written back to the client. So the unchanged driver
talks to the simulated board at ``socket://127.0.0.1:PORT`` exactly as to a board's
serial port. The test listens on a free port, writes it to ``FIRSTSPIKE_BRIDGE_PORT_FILE``
and ends when the client disconnects (or none connects within a minute).
``FIRSTSPIKE_LINE_FAULTS`` (JSON, :class:`firstspike.hw.sim.board.LineFaults`) puts a
host clock off by a few percent and noise on the pins; the faults put on the line are
counted into ``FIRSTSPIKE_LINE_REPORT``.
"""

from __future__ import annotations

import json
import os
import random
import select
import socket
import time
from collections import Counter
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

CLOCK_NS = 10
ACCEPT_SECONDS = 60


class SerialPins:
    """Drives ``rx`` and decodes ``tx`` (8N1) as the host's UART does: at ``cycles_per_bit``
    clock cycles per bit, off by ``faults["baud_error"]`` (a fraction: the host's bit is that much
    longer), and with the line faults of ``faults`` (firstspike.hw.sim.board.LineFaults)
    put on ``rx``, each counted in ``counts``."""

    def __init__(self, dut, cycles_per_bit: float, faults: dict | None = None):
        faults = faults or {}
        self.dut = dut
        self.board_bit_ps = round(cycles_per_bit * CLOCK_NS * 1000)  # the board's own bit time
        self.bit_ps = round(cycles_per_bit * CLOCK_NS * 1000 * (1 + faults.get("baud_error", 0.0)))
        self.faults = faults
        self.rng = random.Random(faults.get("seed", 0))
        self.counts: Counter[str] = Counter()
        dut.rx.value = 1

    def _chance(self, name: str) -> bool:
        hit = self.rng.random() < self.faults.get(name, 0.0)
        self.counts[name] += hit
        return hit

    async def send(self, byte: int) -> None:
        bits = [0] + [(byte >> i) & 1 for i in range(8)] + [1]
        if self._chance("flip"):  # noise long enough to change a data bit
            bits[self.rng.randrange(1, 9)] ^= 1
        if self._chance("stop"):  # a stop bit that never comes: a framing error
            bits[9] = 0
        glitch_at = self.rng.randrange(10) if self._chance("glitch") else None
        for position, bit in enumerate(bits):
            self.dut.rx.value = bit
            if position == glitch_at:  # a pulse of an eighth of a bit, somewhere in the bit
                before = self.rng.randrange(self.bit_ps * 7 // 8)
                await Timer(before, unit="ps")
                self.dut.rx.value = bit ^ 1
                await Timer(self.bit_ps // 8, unit="ps")
                self.dut.rx.value = bit
                await Timer(self.bit_ps - before - self.bit_ps // 8, unit="ps")
            else:
                await Timer(self.bit_ps, unit="ps")
        if self._chance("idle_glitch"):  # a spike on the idle line, between bytes
            self.dut.rx.value = 0
            await Timer(self.bit_ps // 8, unit="ps")
            self.dut.rx.value = 1
            await Timer(self.bit_ps, unit="ps")

    async def receive(self) -> int:
        await FallingEdge(self.dut.tx)
        await Timer(self.bit_ps + self.bit_ps // 2, unit="ps")  # the middle of data bit 0
        byte = 0
        for i in range(8):
            byte |= int(self.dut.tx.value) << i
            await Timer(self.bit_ps, unit="ps")
        return byte


@cocotb.test()
async def bridge(dut):
    manifest = json.loads(Path(os.environ["FIRSTSPIKE_MANIFEST"]).read_text())
    faults = json.loads(os.environ.get("FIRSTSPIKE_LINE_FAULTS", "{}"))
    pins = SerialPins(dut, manifest["link"]["cycles_per_bit"], faults)
    Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()  # cocotb 2: the clock runs its own task
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port_file = Path(os.environ["FIRSTSPIKE_BRIDGE_PORT_FILE"])
    port_file.write_text(str(listener.getsockname()[1]))
    deadline = time.monotonic() + ACCEPT_SECONDS
    connection = None
    while connection is None:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            if time.monotonic() > deadline:
                dut._log.warning("no client connected")
                return
            time.sleep(0.001)
            await Timer(pins.board_bit_ps, unit="ps")
    listener.close()
    connection.setblocking(True)

    async def device_to_client():
        while True:
            byte = await pins.receive()
            connection.sendall(bytes((byte,)))

    cocotb.start_soon(device_to_client())
    idle_ps = 4 * pins.board_bit_ps
    while True:
        readable, _, _ = select.select([connection], [], [], 0)
        if not readable:
            await Timer(idle_ps, unit="ps")
            continue
        try:
            data = connection.recv(65536)
        except OSError:
            break
        if not data:
            break
        for byte in data:
            await pins.send(byte)
    await Timer(20 * pins.board_bit_ps, unit="ps")  # let a reply in progress finish
    connection.close()
    report = os.environ.get("FIRSTSPIKE_LINE_REPORT")
    if report:
        Path(report).write_text(json.dumps(dict(pins.counts)))
