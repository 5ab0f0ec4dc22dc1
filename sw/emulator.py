"""A protocol-level emulator of the accelerator, backed by the golden model.

It speaks the link protocol byte for byte (docs/protocol.md): the driver cannot tell it
from a board except by speed. It serves fast driver tests and is the reference for the
gateware's command handling. ``serve()`` puts it behind a TCP socket, so the unchanged
driver reaches it at ``socket://127.0.0.1:PORT``.
"""

from __future__ import annotations

import socket
import threading

from .golden import simulate
from .layout import MemoryLayout, Target
from .link import messages
from .link.framing import FaultKind, Frame, FrameDecoder, FrameFault, encode_frame
from .link.messages import (
    COMMITTED,
    NACK,
    REGION_BYTES,
    REPLY,
    SPIKE_CODE_NACKS,
    Command,
    Info,
    Nack,
    Result,
    default_max_payload,
)
from .link.spikecode import SpikeCodeError, decode_spikes
from .model import Layer, Model

__all__ = ["DeviceEmulator", "serve", "EmulatorServer"]



_FAULT_CODES = {FaultKind.BAD_CRC: Nack.BAD_CRC, FaultKind.TOO_LONG: Nack.BAD_LENGTH,
                FaultKind.CUT_SHORT: Nack.FRAMING, FaultKind.BAD_ESCAPE: Nack.FRAMING}


class DeviceEmulator:
    """The device's side of the link for ``model`` on ``lanes`` lanes.

    :meth:`receive` takes bytes from the wire and returns the bytes the device sends back.
    """

    def __init__(self, model: Model, lanes: int, *, clock_hz: int = 100_000_000, baud: int = 3_000_000,
                 max_payload: int | None = None):
        self.params = model.params.with_lanes(lanes)
        self.params.require_on_the_core("the core")
        self.layout = MemoryLayout(self.params)
        self.encoding = model.encoding
        self.clock_hz, self.baud = clock_hz, baud
        self.max_payload = max_payload or default_max_payload(self.params)
        self.memories = {target: self.layout.words(model, target) for target in Target}
        self.model_sha256 = bytes.fromhex(model.digest())
        self.flags = COMMITTED
        self.decoder = FrameDecoder(self.max_payload)
        self.last_result: tuple[int, bytes] | None = None
        self.inferences = 0

    # -- the wire ----------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        out = bytearray()
        for item in self.decoder.feed(data):
            if isinstance(item, FrameFault):
                out += self._nack(item.sequence or 0, item.type or 0, _FAULT_CODES[item.kind])
            else:
                out += self._handle(item)
        return bytes(out)

    def idle_timeout(self) -> None:
        """The link was quiet too long: drop a partial frame."""
        self.decoder.reset()

    # -- commands ----------------------------------------------------------------------
    def _reply(self, request: Frame, payload: bytes = b"") -> bytes:
        return encode_frame(Frame(request.type | REPLY, request.sequence, payload))

    def _nack(self, sequence: int, request_type: int, code: Nack) -> bytes:
        return encode_frame(Frame(NACK, sequence, bytes((code, request_type))))

    def _handle(self, frame: Frame) -> bytes:
        try:
            command = Command(frame.type)
        except ValueError:
            return self._nack(frame.sequence, frame.type, Nack.UNKNOWN_TYPE)
        self._sequence = frame.sequence
        try:
            return self._reply(frame, getattr(self, f"_{command.name.lower()}")(frame.payload))
        except _Refusal as refusal:
            return self._nack(frame.sequence, frame.type, refusal.code)

    def _info(self, payload: bytes) -> bytes:
        _expect(not payload, Nack.BAD_LENGTH)
        return Info(self.params, self.clock_hz, self.baud, self.max_payload, self.model_sha256, self.flags).pack()

    def _region(self, payload: bytes, unpack) -> tuple:
        """The region a LOAD or READ names, checked: ``(target, address, count, rest...)``."""
        try:
            target, address, count, *rest = unpack(payload)
        except ValueError:
            raise _Refusal(Nack.BAD_LENGTH) from None
        _expect(target in tuple(Target), Nack.BAD_TARGET)
        target = Target(target)
        _expect(count > 0 and address + count <= messages.memory_rows(self.layout, target), Nack.BAD_ADDRESS)
        return (target, address, count, *rest)

    def _load(self, payload: bytes) -> bytes:
        target, address, count, rows = self._region(payload, messages.unpack_load)
        size = messages.row_bytes(self.layout, target)
        _expect(len(rows) == count * size, Nack.BAD_LENGTH)
        width = self.layout.weight_width if target is Target.WEIGHTS else self.layout.neuron_width
        for k, word in enumerate(messages.unpack_rows(rows, size)):
            self.memories[target][address + k] = word & ((1 << width) - 1)
        self.model_sha256, self.flags = bytes(32), self.flags & ~COMMITTED
        return payload[:REGION_BYTES]

    def _read(self, payload: bytes) -> bytes:
        target, address, count = self._region(payload, messages.unpack_read)
        size = messages.row_bytes(self.layout, target)
        _expect(count * size <= self.max_payload, Nack.BAD_LENGTH)
        return messages.pack_rows(self.memories[target][address:address + count], size)

    def _commit(self, payload: bytes) -> bytes:
        _expect(len(payload) == 32, Nack.BAD_LENGTH)
        self.model_sha256, self.flags = payload, self.flags | COMMITTED
        return b""

    def model(self) -> Model:
        """The network the memories hold now."""
        weights = self.layout.unpack(self.memories[Target.WEIGHTS], Target.WEIGHTS)
        thresholds = self.layout.unpack(self.memories[Target.THRESHOLDS], Target.THRESHOLDS)
        initial = self.layout.unpack(self.memories[Target.INITIAL_POTENTIALS], Target.INITIAL_POTENTIALS)
        return Model(self.params, tuple(Layer(w, t, b) for w, t, b in zip(weights, thresholds, initial)),
                     self.encoding)

    def _infer(self, payload: bytes) -> bytes:
        try:
            times = decode_spikes(payload, self.params)
        except SpikeCodeError as error:
            raise _Refusal(SPIKE_CODE_NACKS[error.which]) from None
        golden = simulate(self.model(), times[None, :])
        result = Result(int(golden.decision[0]), bool(golden.fired[0]), False,
                        int(golden.cycles(self.params.lanes)[0]), int(golden.spike_counts[0, 0]),
                        tuple(int(c) for c in golden.spike_counts[0, 1:]), golden.spike_times[-1][0],
                        int(golden.decision_step[0]))
        self.last_result = (self._sequence, result.pack())
        self.inferences += 1
        return self.last_result[1]

    def _read_result(self, payload: bytes) -> bytes:
        _expect(not payload, Nack.BAD_LENGTH)
        if self.last_result is None:
            raise _Refusal(Nack.NO_RESULT)
        sequence, result = self.last_result
        return bytes((sequence,)) + result

    def _reset(self, payload: bytes) -> bytes:
        self.decoder.reset()
        return b""

    def _echo(self, payload: bytes) -> bytes:
        return payload


class _Refusal(Exception):
    def __init__(self, code: Nack):
        self.code = code


def _expect(condition: bool, code: Nack) -> None:
    if not condition:
        raise _Refusal(code)


class EmulatorServer:
    """The emulator behind a TCP socket, one connection at a time, in a background thread."""

    def __init__(self, device: DeviceEmulator, host: str = "127.0.0.1", port: int = 0,
                 idle_timeout: float = 0.5):
        self.device = device
        self.idle_timeout = idle_timeout
        self._listener = socket.create_server((host, port))
        self.port = self._listener.getsockname()[1]
        self.url = f"socket://{host}:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="firstspike-emulator", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                connection.settimeout(self.idle_timeout)
                while not self._stop.is_set():
                    try:
                        data = connection.recv(65536)
                    except TimeoutError:
                        self.device.idle_timeout()
                        continue
                    except OSError:
                        break
                    if not data:
                        break
                    reply = self.device.receive(data)
                    if reply:
                        try:
                            connection.sendall(reply)
                        except OSError:
                            break

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=2)

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve(model: Model, lanes: int, **options) -> EmulatorServer:
    """Start an emulator for ``model`` on a free local port; ``.url`` is where to connect."""
    return EmulatorServer(DeviceEmulator(model, lanes), **options)
