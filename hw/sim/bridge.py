"""cocotb bridge: the UART pins of the simulated accelerator behind a TCP socket.

The bytes a client sends go onto ``rx`` bit by bit at the link's baud rate; every byte the
design sends on ``tx`` is decoded and written back to the client. So the unchanged driver
talks to the simulated board at ``socket://127.0.0.1:PORT`` exactly as to a board's
serial port. The test listens on a free port, writes it to ``FIRSTSPIKE_BRIDGE_PORT_FILE``
and ends when the client disconnects (or none connects within a minute).
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

CLOCK_NS = 10
ACCEPT_SECONDS = 60


class SerialPins:
    """Drives ``rx`` and decodes ``tx`` at ``divisor`` clock cycles per bit (8N1)."""

    def __init__(self, dut, divisor: int):
        self.dut, self.bit_ns = dut, divisor * CLOCK_NS
        dut.rx.value = 1

    async def send(self, byte: int) -> None:
        for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
            self.dut.rx.value = bit
            await Timer(self.bit_ns, unit="ns")

    async def receive(self) -> int:
        await FallingEdge(self.dut.tx)
        await Timer(self.bit_ns + self.bit_ns // 2, unit="ns")  # the middle of data bit 0
        byte = 0
        for i in range(8):
            byte |= int(self.dut.tx.value) << i
            await Timer(self.bit_ns, unit="ns")
        return byte


@cocotb.test()
async def bridge(dut):
    manifest = json.loads(Path(os.environ["FIRSTSPIKE_MANIFEST"]).read_text())
    pins = SerialPins(dut, manifest["link"]["divisor"])
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
            await Timer(pins.bit_ns, unit="ns")
    listener.close()
    connection.setblocking(True)

    async def device_to_client():
        while True:
            byte = await pins.receive()
            connection.sendall(bytes((byte,)))

    cocotb.start_soon(device_to_client())
    idle_ns = 4 * pins.bit_ns
    while True:
        readable, _, _ = select.select([connection], [], [], 0)
        if not readable:
            await Timer(idle_ns, unit="ns")
            continue
        try:
            data = connection.recv(65536)
        except OSError:
            break
        if not data:
            break
        for byte in data:
            await pins.send(byte)
    await Timer(20 * pins.bit_ns, unit="ns")  # let a reply in progress finish
    connection.close()
