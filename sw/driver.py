"""The host driver: one API for the accelerator on a board, in RTL simulation, or emulated.

The transport is pyserial's ``serial_for_url``: ``/dev/ttyUSB1`` (a board), ``socket://host:port``
(the simulation bridge or the emulator). Every wait is bounded; requests are retried after a
NACK for a damaged frame, a garbled reply or a timeout (every command is safe to repeat: an
inference is a pure function of the memories and the input, so a late reply to an earlier
copy is as good as the newest's). The wait for a reply is the larger of ``timeout`` and the
time replies have taken (smoothed, plus four times its variation, as TCP's retransmission
timeout), and each timeout in a row doubles it (up to
:data:`MAX_BACKOFF` times): a device, or a simulation, slower than the timeout assumed is still
heard. After a retry the driver re-reads INFO and refuses to go on if the device no longer
holds the model it loaded.

    with Accelerator.open("socket://127.0.0.1:4567") as accelerator:
        accelerator.load_model(model)           # or .attach(model) if it was built in
        result = accelerator.infer(spike_times)  # int [n_in], -1 = no spike
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import replace

import numpy as np

from .errors import FirstSpikeError
from .layout import MemoryLayout, Target
from .link.framing import Frame, FrameDecoder, FrameFault, encode_frame
from .link.messages import (
    NACK,
    REGION_BYTES,
    REPLY,
    Command,
    Info,
    Nack,
    Result,
    memory_rows,
    pack_load,
    pack_read,
    row_bytes,
    unpack_rows,
)
from .link.spikecode import encode_spikes
from .model import Model
from .spikes import check_spike_times

__all__ = ["Accelerator", "LinkError", "LinkTimeout", "DeviceRefused", "ModelMismatch", "MAX_BACKOFF"]

#: The rates a device is usually built for (``firstspike build --baud``), tried in this order
#: when it does not answer at the rate it was opened at.
USUAL_BAUDS = (3_000_000, 115_200, 1_000_000, 2_000_000, 921_600, 460_800, 230_400, 9_600)
#: URL schemes whose "baud rate" means nothing (sockets to a simulation or an emulator).
_NO_BAUD = ("socket://", "loop://", "rfc2217://", "spy://")

#: NACKs that a repeat can cure. The driver only sends well-sized frames, so BAD_LENGTH
#: means the length field was damaged on the way (the device judges it before the CRC).
RETRYABLE = {Nack.BAD_CRC, Nack.FRAMING, Nack.BUSY, Nack.BAD_LENGTH}
#: The longest wait for a reply, in multiples of ``timeout`` (timeouts in a row double it).
MAX_BACKOFF = 8


class LinkError(FirstSpikeError):
    """The link failed: no device, a broken connection, or replies that never came right."""


class LinkTimeout(LinkError):
    """The device did not answer in time, even after retries."""


class DeviceRefused(LinkError):
    """The device answered a request with a NACK that retrying cannot fix."""

    def __init__(self, command: int, code: int):
        name = Nack(code).name if code in tuple(Nack) else f"code {code}"
        label = Command(command).name if command in tuple(Command) else f"type {command:#04x}"
        super().__init__(f"the device refused {label}: {name}")
        self.command, self.code = command, code


class ModelMismatch(LinkError):
    """The device does not hold the model the driver was told it holds (``held``: what it
    holds instead, e.g. ``"model 00402397bc7d"``, when that is the problem)."""

    def __init__(self, message: str, *, held: str | None = None):
        super().__init__(message)
        self.held = held


class Accelerator:
    """A connected accelerator. Use :meth:`open`; close it (or use ``with``) when done."""

    def __init__(self, port, *, timeout: float = 2.0, retries: int = 3, check_baud: bool = False,
                 clock_hz: int | None = None):
        """``check_baud``: ``port`` is a serial line whose rate matters: a device that does not
        answer at it is looked for at the usual rates, and one that says another rate in INFO
        is noted in :attr:`disagreements`, as is a clock other than ``clock_hz``."""
        self.port = port
        self.timeout, self.retries = timeout, retries
        self._decoder = FrameDecoder()
        self._pending: list[Frame | FrameFault] = []
        self._sequence = 0
        self._sent_at: dict[int, float] = {}  # sequence -> when it was sent
        self._reply_time: tuple[float, float] | None = None  # smoothed seconds to a reply, its variation
        self._model_sha256: bytes | None = None
        self._needs_check = False
        self.retried = 0  # requests sent again (for reports)
        self.retry_causes: Counter[str] = Counter()  # why: "NACK FRAMING", "timeout", "garbled reply", ...
        self.bytes_sent = self.bytes_received = 0
        #: Where the device's INFO disagrees with what the driver was told (baud, clock).
        self.disagreements: list[str] = []
        try:
            self._info = self.info()
        except LinkError as error:
            found = self._answering_baud() if check_baud else None
            if found is None:
                raise
            raise LinkError(f"no reply at {port.baudrate:,} baud, but the device answers at {found:,} baud: "
                            f"open it at that rate (--baud {found}), or rebuild it for {port.baudrate:,} "
                            f"(firstspike build --baud {port.baudrate})") from error
        self._layout = MemoryLayout(self._info.params)
        if check_baud and self._info.baud != port.baudrate:
            self.disagreements.append(f"the device says {self._info.baud:,} baud; the port is at "
                                      f"{port.baudrate:,} (close enough to talk, not the same)")
        if clock_hz is not None and self._info.clock_hz != clock_hz:
            self.disagreements.append(f"the device says its core runs at {self._info.clock_hz / 1e6:g} MHz, "
                                      f"not the {clock_hz / 1e6:g} MHz it was said to")

    def _answering_baud(self) -> int | None:
        """The first usual rate other than the port's at which the device answers INFO
        (the port is left at its own rate)."""
        told, saved = self.port.baudrate, (self.timeout, self.retries)
        self.timeout, self.retries = 0.25, 0
        try:
            for baud in USUAL_BAUDS:
                if baud == told:
                    continue
                self.port.baudrate = baud
                self._resync()
                try:
                    self.info()
                except LinkError:
                    continue
                return baud
            return None
        finally:
            self.port.baudrate = told
            self.timeout, self.retries = saved
            self._resync()

    @classmethod
    def open(cls, url: str, *, baudrate: int = 3_000_000, timeout: float = 2.0, retries: int = 3,
             clock_hz: int | None = None) -> Accelerator:
        """Connect to ``url``; on a serial line, a device answering at another of the usual
        rates is named in the error, and INFO's baud and clock are checked (``disagreements``)."""
        import serial  # pyserial

        try:
            port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.02, write_timeout=timeout)
        except (serial.SerialException, ValueError) as error:
            raise LinkError(f"cannot open {url}: {error}") from None
        try:
            return cls(port, timeout=timeout, retries=retries, check_baud=not url.startswith(_NO_BAUD),
                       clock_hz=clock_hz)
        except BaseException:
            port.close()
            raise

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> Accelerator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def params(self):
        return self._info.params

    # -- frames --------------------------------------------------------------------------
    def _send(self, command: int, payload: bytes) -> int:
        self._sequence = (self._sequence + 1) & 0xFF
        data = encode_frame(Frame(command, self._sequence, payload))
        try:
            self.port.write(data)
        except Exception as error:  # pyserial raises its own and OS errors
            raise LinkError(f"cannot send to the device: {error}") from None
        self.bytes_sent += len(data)
        self._sent_at[self._sequence] = time.monotonic()
        return self._sequence

    def _next(self, deadline: float) -> Frame | FrameFault | None:
        """The next received item, or None at the deadline."""
        while not self._pending:
            if time.monotonic() >= deadline:
                return None
            try:
                data = self.port.read(max(1, self.port.in_waiting))
            except Exception as error:
                raise LinkError(f"cannot read from the device: {error}") from None
            self.bytes_received += len(data)
            self._pending += self._decoder.feed(data)
        return self._pending.pop(0)

    def _resync(self) -> None:
        """Forget partial and stale input before a retry."""
        time.sleep(0.01)
        with contextlib.suppress(Exception):  # a port that cannot flush still gets the decoder reset
            self.port.reset_input_buffer()
        self._decoder.reset()
        self._pending.clear()
        self._needs_check = True

    def _wait(self, timeouts: int) -> float:
        """The wait for a reply after ``timeouts`` timeouts in a row: doubled by each."""
        mean, variation = self._reply_time or (0.0, 0.0)
        return max(self.timeout, mean + 4 * variation) * min(2 ** timeouts, MAX_BACKOFF)

    def _answered(self, reply: Frame) -> Frame:
        """``reply`` taken: how long its request took goes into the wait, as TCP's round-trip
        time goes into its retransmission timeout (RFC 6298)."""
        took = time.monotonic() - self._sent_at.get(reply.sequence, time.monotonic())
        if self._reply_time is None:
            self._reply_time = (took, took / 2)
        else:
            mean, variation = self._reply_time
            self._reply_time = (0.875 * mean + 0.125 * took, 0.75 * variation + 0.25 * abs(mean - took))
        return reply

    def _transact(self, command: Command, payload: bytes = b"") -> Frame:
        """``command`` answered. A reply to any attempt of it is taken (every command is safe
        to repeat, so the answer to an earlier copy is the answer); after BUSY the next copy
        waits for the device to hand something out first."""
        last_problem, cause = "no reply", "timeout"
        timeouts = 0
        sent: set[int] = set()
        for attempt in range(self.retries + 1):
            if attempt:
                self.retried += 1
                self.retry_causes[cause] += 1
                self._resync()
            sequence = self._send(command, payload)
            sent.add(sequence)
            wait = self._wait(timeouts)
            deadline = time.monotonic() + wait
            busy = False
            while True:
                item = self._next(deadline)
                if item is None:
                    if not busy:
                        last_problem, cause = f"no reply within {wait:g} s", "timeout"
                        timeouts += 1
                    break
                if isinstance(item, FrameFault):
                    last_problem, cause = f"a garbled reply ({item.kind.value})", "garbled reply"
                    break
                if item.sequence in sent and item.type == command | REPLY:
                    return self._answered(item)
                if busy:
                    break  # the device handed something out: it has room again
                if item.sequence != sequence:
                    continue  # an earlier attempt's NACK, or a reply to an earlier request
                if item.type == NACK:
                    code = item.payload[0] if item.payload else 0
                    if code not in RETRYABLE:
                        raise DeviceRefused(command, code)
                    last_problem = cause = f"NACK {Nack(code).name}"
                    if code != Nack.BUSY:
                        break
                    busy = True
        kind = LinkTimeout if last_problem.startswith("no reply") else LinkError
        raise kind(f"{command.name}: {last_problem} after {self.retries + 1} attempts")

    # -- commands --------------------------------------------------------------------------
    def info(self) -> Info:
        try:
            info = Info.unpack(self._transact(Command.INFO).payload)
        except ValueError as error:
            raise LinkError(f"the device's INFO reply is malformed: {error}") from None
        self._info = info
        return info

    def echo(self, data: bytes) -> bytes:
        return self._transact(Command.ECHO, data).payload

    def reset(self) -> None:
        self._transact(Command.RESET)

    def _chunk_rows(self, target: Target) -> int:
        size = row_bytes(self._layout, target)
        return max(1, min(255, (self._info.max_payload - REGION_BYTES) // size))

    def read_memory(self, target: Target, address: int, count: int) -> list[int]:
        size, words = row_bytes(self._layout, target), []
        for start in range(address, address + count, self._chunk_rows(target)):
            n = min(self._chunk_rows(target), address + count - start)
            words += unpack_rows(self._transact(Command.READ, pack_read(target, start, n)).payload, size)
        return words

    def load_model(self, model: Model, *, verify: bool = True, progress=None) -> None:
        """Write the model's weights, thresholds and initial potentials, read them back,
        and mark the device as holding ``model`` (COMMIT with its hash)."""
        self._check_fits(model)
        for target in Target:
            words = self._layout.words(model, target)
            step = self._chunk_rows(target)
            for start in range(0, len(words), step):
                self._transact(Command.LOAD, pack_load(self._layout, target, start, words[start:start + step]))
                if progress is not None:
                    progress(min(step, len(words) - start))
            if verify and self.read_memory(target, 0, len(words)) != words:
                raise LinkError(f"read-back of the {target.name.lower()} differs from what was loaded")
        digest = bytes.fromhex(model.digest())
        self._transact(Command.COMMIT, digest)
        self._model_sha256 = digest
        self._check_model()

    def load_rows(self) -> int:
        """Rows :meth:`load_model` writes (for a progress bar)."""
        return sum(memory_rows(self._layout, target) for target in Target)

    def attach(self, model: Model) -> None:
        """Use the model the device already holds (built in); refuse if it is another one."""
        self._check_fits(model)
        self._model_sha256 = bytes.fromhex(model.digest())
        self._check_model()

    def _check_fits(self, model: Model) -> None:
        # Lanes and schedule are the core's own; the driver reads them from INFO.
        if replace(model.params, lanes=self.params.lanes, schedule=self.params.schedule) != self.params:
            raise ModelMismatch(f"the model ({'-'.join(map(str, model.params.layer_sizes))}, "
                                f"T={model.params.time_steps}) does not fit the device's core "
                                f"({'-'.join(map(str, self.params.layer_sizes))}, T={self.params.time_steps})")

    def _check_model(self) -> None:
        assert self._model_sha256 is not None, "called after load_model() or attach()"
        info = self.info()
        if not info.committed or info.model_sha256 != self._model_sha256:
            held = f"model {info.model_sha256.hex()[:12]}" if info.committed else "an unverified load"
            raise ModelMismatch(f"the device holds {held}, not the model {self._model_sha256.hex()[:12]}; "
                                "load_model() it", held=held)
        self._needs_check = False

    def _ready_to_infer(self) -> None:
        if self._model_sha256 is None:
            raise ModelMismatch("no model: call load_model(model) or attach(model) first")
        if self._needs_check:
            self._check_model()

    def infer(self, spike_times: np.ndarray) -> Result:
        """One inference: ``spike_times`` ``[n_in]`` (``-1`` = no spike)."""
        times = check_spike_times(np.asarray(spike_times)[None, :], self.params, "spike_times")[0]
        self._ready_to_infer()
        reply = self._transact(Command.INFER, encode_spikes(times, self.params.time_steps))
        result = self._result(reply.payload)
        if self._needs_check:  # a retry happened: make sure the device was not reset meanwhile
            self._check_model()
        return result

    def infer_batch(self, spike_times: np.ndarray, *, window: int = 2, progress=None) -> list[Result]:
        """Inferences for ``[batch, n_in]`` with up to ``window`` requests in flight (the
        gateware holds two received frames: more in flight only earns BUSY and a resend)."""
        batch = check_spike_times(np.asarray(spike_times), self.params, "spike_times")
        self._ready_to_infer()
        payloads = [encode_spikes(row, self.params.time_steps) for row in batch]
        results: list[Result | None] = [None] * len(batch)
        attempts = [0] * len(batch)
        in_flight: dict[int, tuple[int, float]] = {}  # sequence -> (sample, deadline)
        earlier: dict[int, int] = {}  # sequence of an attempt sent again -> sample: its reply still counts
        queue = list(range(len(batch)))
        timeouts = 0  # in a row, since the last reply
        held_until = 0.0  # after BUSY nothing is sent before the next reply, or this time

        def take(sample: int, reply: Frame) -> None:
            results[sample] = self._result(self._answered(reply).payload)
            if sample in queue:
                queue.remove(sample)
            for sequence, (other, _) in list(in_flight.items()):
                if other == sample:  # its newer copy's reply will find the sample answered
                    earlier[sequence] = in_flight.pop(sequence)[0]
            if progress is not None:
                progress(1)

        while queue or in_flight:
            while queue and len(in_flight) < window and time.monotonic() >= held_until:
                sample = queue.pop(0)
                attempts[sample] += 1
                if attempts[sample] > self.retries + 1:
                    raise LinkTimeout(f"INFER of sample {sample}: no valid reply after {self.retries + 1} attempts")
                if attempts[sample] > 1:
                    self.retried += 1
                sequence = self._send(Command.INFER, payloads[sample])
                earlier.pop(sequence, None)  # the sequence number came round again
                in_flight[sequence] = (sample, time.monotonic() + self._wait(timeouts))
            deadline = min(deadline for _, deadline in in_flight.values()) if in_flight else held_until
            item = self._next(deadline)
            if item is None and not in_flight:
                held_until = 0.0
                continue
            if item is None or isinstance(item, FrameFault):
                # A timeout or a garbled reply: send everything in flight again.
                self.retry_causes["timeout" if item is None else "garbled reply"] += len(in_flight)
                timeouts += item is None
                self._resync()
                earlier.update({sequence: sample for sequence, (sample, _) in in_flight.items()})
                queue = sorted(sample for sample, _ in in_flight.values()) + queue
                in_flight.clear()
                held_until = 0.0
                continue
            held_until = 0.0
            if item.sequence in earlier:
                sample = earlier.pop(item.sequence)
                if item.type == Command.INFER | REPLY and results[sample] is None:
                    timeouts = 0
                    take(sample, item)
                continue
            if item.sequence not in in_flight:
                continue
            sample, _ = in_flight.pop(item.sequence)
            timeouts = 0
            if item.type == NACK:
                code = item.payload[0] if item.payload else 0
                if code not in RETRYABLE:
                    raise DeviceRefused(Command.INFER, code)
                self.retry_causes[f"NACK {Nack(code).name}"] += 1
                if code == Nack.BUSY:
                    held_until = time.monotonic() + self._wait(timeouts)
                queue.insert(0, sample)
                continue
            if item.type == Command.INFER | REPLY:
                take(sample, item)
        if self._needs_check:
            self._check_model()
        return results  # type: ignore[return-value]

    def _result(self, payload: bytes) -> Result:
        try:
            return Result.unpack(payload, self.params)
        except ValueError as error:
            raise LinkError(f"the device's result is malformed: {error}") from None


