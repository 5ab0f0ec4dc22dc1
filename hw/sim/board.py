"""A simulated board: the core behind its UART in Icarus or Verilator, reachable at a
``socket://`` URL through :mod:`firstspike.hw.sim.bridge`.

    with SimulatedBoard(model, lanes=16) as board:
        with Accelerator.open(board.url) as accelerator:
            ...
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from firstspike.sw.model import Model

from ..generate import LINK_TOP_NAME, render_link
from .runner import RTLSimulationError, build_rtl

__all__ = ["SimulatedBoard", "SIM_CLOCK_HZ", "SIM_BAUD"]

#: The simulated board's clock and baud rate: 4 clock cycles per bit keeps the simulation
#: fast; the protocol is the same at any rate.
SIM_CLOCK_HZ = 100_000_000
SIM_BAUD = 25_000_000
BRIDGE = "firstspike.hw.sim.bridge"


class SimulatedBoard:
    def __init__(self, model: Model, lanes: int = 16, *, simulator: str = "icarus",
                 build_root: str | Path | None = None, clock_hz: int = SIM_CLOCK_HZ, baud: int = SIM_BAUD,
                 start_timeout: float = 120.0):
        self.model, self.lanes, self.simulator = model, lanes, simulator
        self.build_root, self.clock_hz, self.baud = build_root, clock_hz, baud
        self.start_timeout = start_timeout
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
                                       "FIRSTSPIKE_BRIDGE_PORT_FILE": str(port_file)})
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
        self._scratch.cleanup()
