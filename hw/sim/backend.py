"""The ``rtl`` backend: inferences through the generated Verilog in Icarus or Verilator.

Each chunk of the batch is one simulator run (the native Verilog testbench by default,
or cocotb's); the results come back as an
:class:`RTLResult`, which the rest of FirstSpike reads like a golden-model result, with
the cycle counts the hardware measured and, per sample, whether everything the RTL
exposes equals the golden model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firstspike.sw.compare import DeviceResults, agreement
from firstspike.sw.errors import FirstSpikeError
from firstspike.sw.golden import GoldenResult, simulate
from firstspike.sw.model import Model

from .native import run_native
from .runner import SIMULATORS, run_rtl

__all__ = ["RTLResult", "run_rtl_batches", "run_netlist_batches"]


@dataclass(frozen=True)
class RTLResult(GoldenResult):
    """What the RTL produced. ``potentials`` are empty (``[batch, 0]``): the core does not
    expose them. ``cycles()`` are the measured ones, for the simulated lane count only."""

    lanes: int = 0
    measured_cycles: np.ndarray | None = None
    agrees: np.ndarray | None = None  # bool [batch]: every exposed value equals golden

    def cycles(self, lanes: int | None = None) -> np.ndarray:
        if lanes is not None and lanes != self.lanes:
            raise FirstSpikeError(f"the RTL ran with {self.lanes} lanes; it has no cycle count for {lanes}")
        assert self.measured_cycles is not None, "an RTL result always carries its measured cycles"
        return self.measured_cycles

    @classmethod
    def join(cls, parts: list[RTLResult]) -> RTLResult:
        base = GoldenResult.join(parts)
        return cls(base.params, base.input_spike_times, base.spike_times, base.potentials, base.decision,
                   base.fired, base.decision_step, lanes=parts[0].lanes,
                   measured_cycles=np.concatenate([p.measured_cycles for p in parts]),
                   agrees=np.concatenate([p.agrees for p in parts]))


def run_netlist_batches(model: Model, spike_times: np.ndarray, *, lanes: int = 16, simulator: str | None = None,
                        board: str = "icebreaker", chunk: int | None = None,
                        build_root: str | Path | None = None) -> Iterator[RTLResult]:
    """Results for consecutive chunks of ``spike_times`` from the gate-level netlist that
    Yosys synthesizes for ``board``'s FPGA (what goes into its bitstream), simulated with
    the cell models Yosys ships, through the native testbench. ``simulator``: by default
    the first that reads the family's cell models (Icarus for iCE40, Verilator for ECP5)."""
    from ..build import BOARDS
    from .native import NETLIST_FAMILIES, NETLIST_SIMULATORS

    if board not in BOARDS:
        raise FirstSpikeError(f"--board must be one of {', '.join(BOARDS)}, not {board!r}")
    family = BOARDS[board].family
    if family not in NETLIST_FAMILIES:
        raise FirstSpikeError(f"--board {board}: its {family} netlist cannot be simulated here (Yosys ships "
                              f"cell models for {' and '.join(NETLIST_FAMILIES)} only)")
    if simulator is None:
        simulator = NETLIST_SIMULATORS[family][0]
    elif simulator not in NETLIST_SIMULATORS[family]:
        raise FirstSpikeError(f"--board {board}: its {family} cell models need --simulator "
                              f"{' or '.join(NETLIST_SIMULATORS[family])}, not {simulator}")
    return run_rtl_batches(model, spike_times, lanes=lanes, simulator=simulator, chunk=chunk, build_root=build_root,
                           netlist=family)


def run_rtl_batches(model: Model, spike_times: np.ndarray, *, lanes: int = 16, simulator: str = "icarus",
                    harness: str = "native", chunk: int | None = None, build_root: str | Path | None = None,
                    waves: str | Path | None = None, waves_sample: int = 0,
                    netlist: str | None = None) -> Iterator[RTLResult]:
    """Results for consecutive chunks of ``spike_times`` from the RTL simulation.

    ``harness``: ``native`` (the Verilog testbench of :mod:`.native`, no Python per clock;
    chunks of 500 samples) or ``cocotb`` (the Python testbench; chunks of 64).
    ``waves``: also write a waveform (FST for Icarus, VCD for Verilator) of sample
    ``waves_sample`` alone to this path (through cocotb). ``netlist``: a family's
    synthesized netlist instead of the RTL (:func:`run_netlist_batches`).
    """
    if simulator not in SIMULATORS:
        raise FirstSpikeError(f"--simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    if harness not in ("native", "cocotb"):
        raise FirstSpikeError(f"--harness must be native or cocotb, not {harness!r}")
    model.params.with_lanes(lanes)  # checks the range before any build
    if waves is not None:
        if not 0 <= waves_sample < len(spike_times):
            raise FirstSpikeError(f"--waves-sample must be between 0 and {len(spike_times) - 1}, not {waves_sample}")
        run_rtl(model, spike_times[waves_sample:waves_sample + 1], lanes=lanes, simulator=simulator,
                build_root=build_root, waves=waves)
    n_layers = model.params.n_layers
    chunk = chunk or (500 if harness == "native" else 64)
    for start in range(0, len(spike_times), chunk):
        part = np.asarray(spike_times[start:start + chunk])
        if harness == "native":
            hw = run_native(model, part, lanes=lanes, simulator=simulator, build_root=build_root, netlist=netlist)
        else:
            hw = run_rtl(model, part, lanes=lanes, simulator=simulator, build_root=build_root)
        golden = simulate(model, part)
        spikes = tuple(hw[f"spike_times_{k}"].astype(np.int16) for k in range(n_layers))
        yield RTLResult(model.params, part.astype(np.int16), spikes,
                        tuple(np.zeros((len(part), 0), np.int64) for _ in range(n_layers)),
                        hw["decision"].astype(np.int64), hw["fired"].astype(bool),
                        golden.decision_step,  # (the result does not carry it yet)
                        lanes=lanes, measured_cycles=hw["cycles"].astype(np.int64),
                        agrees=agreement(golden, DeviceResults.from_arrays(hw, n_layers), lanes))
