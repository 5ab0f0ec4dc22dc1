"""A simulated board: the core behind its UART in Icarus or Verilator, reachable at a
``socket://`` URL through :mod:`firstspike.hw.sim.bridge`.

    with SimulatedBoard(model, lanes=16) as board:
        with Accelerator.open(board.url) as accelerator:
            ...
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from firstspike.sw.model import Model

from ..generate import LINK_TOP_NAME, render_link
from .runner import RTLSimulationError, build_rtl

__all__ = ["SimulatedBoard", "LineFaults", "SIM_CLOCK_HZ", "SIM_BAUD"]

#: The simulated board's clock and baud rate: 4 clock cycles per bit keeps the simulation
#: fast; the protocol is the same at any rate.
SIM_CLOCK_HZ = 100_000_000
SIM_BAUD = 25_000_000
BRIDGE = "firstspike.hw.sim.bridge"


@dataclass(frozen=True)
class LineFaults:
    """What the wire between host and simulated board does to the bytes the host sends.

    ``baud_error``: the host's bit time is this fraction longer (negative: shorter) than the
    board's, both ways. Per byte sent, the chance of: ``flip``, a data bit inverted by noise;
    ``stop``, a missing stop bit (a framing error at the board's UART); ``glitch``, a pulse
    an eighth of a bit long somewhere in the byte; ``idle_glitch``, one on the idle line
    after it. ``seed`` fixes where they fall.
    """

    baud_error: float = 0.0
    flip: float = 0.0
    stop: float = 0.0
    glitch: float = 0.0
    idle_glitch: float = 0.0
    seed: int = 0


class SimulatedBoard:
    """The board, started on ``__enter__``; ``line`` puts faults on the serial pins, and
    after ``__exit__`` ``line_report`` counts the ones that were put there."""

    def __init__(self, model: Model, lanes: int = 16, *, simulator: str = "icarus",
                 build_root: str | Path | None = None, clock_hz: int = SIM_CLOCK_HZ, baud: int = SIM_BAUD,
                 start_timeout: float = 120.0, line: LineFaults | None = None):
        self.model, self.lanes, self.simulator = model, lanes, simulator
        self.build_root, self.clock_hz, self.baud = build_root, clock_hz, baud
        self.start_timeout = start_timeout
        self.line = line or LineFaults()
        self.line_report: dict[str, int] = {}
        self.url: str | None = None

    def __enter__(self) -> SimulatedBoard:
        text, info = render_link(self.model, self.lanes, clock_hz=self.clock_hz, baud=self.baud)
        runner, build, manifest_path = build_rtl(self.simulator, text, info, LINK_TOP_NAME, self.build_root)
        self._scratch = tempfile.TemporaryDirectory(prefix="firstspike-board-")
        scratch = Path(self._scratch.name)
        port_file = scratch / "port"
        self._failure: BaseException | None = None

        def simulate() -> None:
            try:
                # (Not redirect_stdout: it is process-wide and would swallow the caller's prints.)
                runner.test(test_module=BRIDGE, hdl_toplevel=LINK_TOP_NAME, build_dir=build / "sim",
                            test_dir=scratch, results_xml=str(scratch / "results.xml"),
                            log_file=scratch / "sim.log",
                            extra_env={"FIRSTSPIKE_MANIFEST": str(manifest_path),
                                       "FIRSTSPIKE_BRIDGE_PORT_FILE": str(port_file),
                                       "FIRSTSPIKE_LINE_FAULTS": json.dumps(asdict(self.line)),
                                       "FIRSTSPIKE_LINE_REPORT": str(scratch / "line.json")})
            except BaseException as error:  # reported by the main thread
                self._failure = error

        self._thread = threading.Thread(target=simulate, name="firstspike-simulated-board", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                log = scratch / "sim.log"
                tail = log.read_text()[-1500:] if log.exists() else ""
                self._scratch.cleanup()
                raise RTLSimulationError(f"the simulated board did not start ({self._failure or 'timeout'}):\n{tail}")
            time.sleep(0.05)
        self.url = f"socket://127.0.0.1:{int(port_file.read_text())}"
        return self

    def __exit__(self, *exc) -> None:
        self._thread.join(timeout=30)
        report = Path(self._scratch.name) / "line.json"
        if report.exists():
            self.line_report = json.loads(report.read_text())
        self._scratch.cleanup()
