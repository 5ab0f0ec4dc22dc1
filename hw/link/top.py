"""The accelerator behind its link: the core, the frame receiver and transmitter, the
command handler, and (for a board) the UART.

:class:`LinkedCore` takes and gives bytes as streams (simulation drives these directly);
:class:`UARTAccelerator` puts a UART in front of it: the ``rx``/``tx`` pins of a board.
"""

from __future__ import annotations

from fractions import Fraction

from amaranth import Module, Value
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from firstspike.sw.errors import NotOnTheCore
from firstspike.sw.link.messages import default_max_payload
from firstspike.sw.model import Model

from ..core import TTFSCore
from ..refusal import refuse
from .commands import CommandHandler
from .framer import FrameReceiver, FrameTransmitter
from .uart import UARTRx, UARTTx

__all__ = ["LinkedCore", "UARTAccelerator"]


def register_stage(m: Module, name: str, source, sink) -> None:
    """``source`` → ``sink`` (streams) through a two-entry buffered FIFO: a register
    between them that keeps full throughput."""
    width = len(Value.cast(source.payload))
    m.submodules[name] = buffer = fifo.SyncFIFOBuffered(width=width, depth=2)
    m.d.comb += [
        buffer.w_data.eq(source.payload), buffer.w_en.eq(source.valid), source.ready.eq(buffer.w_rdy),
        sink.payload.eq(buffer.r_data), sink.valid.eq(buffer.r_rdy), buffer.r_en.eq(sink.ready),
    ]


class LinkedCore(wiring.Component):
    """The core answering the link protocol on byte streams.

    ``idle_timeout`` is in clock cycles; by default the time of 64 bytes on the line.
    """

    def __init__(self, model: Model, lanes: int, *, clock_hz: int, baud: int, max_payload: int | None = None,
                 idle_timeout: int | None = None):
        self.params = model.params.with_lanes(lanes)
        try:
            self.params.require_on_the_core("the core")
        except NotOnTheCore as error:
            refuse(self, error)
        self.model = model
        self.clock_hz, self.baud = clock_hz, baud
        self.max_payload = max_payload or default_max_payload(self.params)
        self.idle_timeout = idle_timeout or 64 * 10 * max(1, clock_hz // baud)
        super().__init__({"bytes_in": In(stream.Signature(8)), "bytes_out": Out(stream.Signature(8)),
                          "line_error": In(1), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = TTFSCore(self.params, self.model)
        m.submodules.receiver = receiver = FrameReceiver(self.max_payload, self.idle_timeout)
        m.submodules.transmitter = transmitter = FrameTransmitter(self.max_payload)
        m.submodules.handler = handler = CommandHandler(self.params, max_payload=self.max_payload,
                                                        clock_hz=self.clock_hz, baud=self.baud, model=self.model)
        wiring.connect(m, wiring.flipped(self.bytes_in), receiver.bytes_in)
        wiring.connect(m, transmitter.bytes_out, wiring.flipped(self.bytes_out))
        connect(m, receiver.frames, handler.frames)
        connect(m, receiver.faults, handler.faults)
        connect(m, handler.reply, transmitter.frames)
        # A register stage between the handler's reply multiplexers and the transmitter's
        # CRC: without it the two make the longest combinational path of the design.
        register_stage(m, "reply_buffer", handler.reply_payload, transmitter.payload)
        # And one between the handler's event decoding (a receiver-bank byte plus a base)
        # and the core's weight-address multiply: together they were the longest path.
        register_stage(m, "event_buffer", handler.events, core.events)
        connect(m, core.results, handler.results)
        connect(m, handler.write, core.write)
        connect(m, handler.read, core.read)
        connect(m, core.read_data, handler.read_data)
        m.d.comb += [
            receiver.release.eq(handler.release), receiver.release_bank.eq(handler.release_bank),
            receiver.read_bank.eq(handler.read_bank), receiver.read_address.eq(handler.read_address),
            handler.read_byte.eq(receiver.read_data), self.busy.eq(core.busy),
            receiver.line_error.eq(self.line_error),
        ]
        return m


class UARTAccelerator(wiring.Component):
    """:class:`LinkedCore` on a UART: ``rx`` and ``tx`` are the board's serial pins."""

    def __init__(self, model: Model, lanes: int, *, clock_hz: int, baud: int, **options):
        self.linked = LinkedCore(model, lanes, clock_hz=clock_hz, baud=baud, **options)
        # Clock cycles per bit; a fraction is met on average (hw/link/uart.py).
        self.divisor = Fraction(clock_hz, baud)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.linked = linked = self.linked
        m.submodules.uart_rx = rx = UARTRx(self.divisor)
        m.submodules.uart_tx = tx = UARTTx(self.divisor)
        # A register stage between the UART's byte and the frame receiver's decoding.
        register_stage(m, "rx_buffer", rx.data, linked.bytes_in)
        # And one between the transmitter and the UART: the UART's ready no longer runs back
        # through the transmitter's byte choice into the reply buffer.
        register_stage(m, "tx_buffer", linked.bytes_out, tx.data)
        # A byte the UART lost ends the frame it belonged to (NACK FRAMING), so the host
        # resends at once instead of waiting for its timeout.
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), self.busy.eq(linked.busy),
                     linked.line_error.eq(rx.framing_error | rx.overrun)]
        return m
