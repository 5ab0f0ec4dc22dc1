"""Lanes × boards sweep: one board build per pair, a CSV of the figures and a PNG of LUTs,
block RAM, Fmax and inferences/s against P."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from firstspike.sw.cluster import open_cluster, run_jobs
from firstspike.sw.files import save_png, write_atomically
from firstspike.sw.golden import GoldenResult
from firstspike.sw.model import Model

from .build import BuildError, build_board

__all__ = ["sweep", "plot_sweep", "COLUMNS"]

COLUMNS = ("board", "lanes", "schedule", "outcome", "luts", "flip_flops", "block_rams", "dsps", "clock_mhz",
           "fmax_mhz", "meets_clock", "cycles_per_inference", "inferences_per_second_at_clock",
           "inferences_per_second_at_fmax", "link_bound_inferences_per_second", "critical_path")
_NUMBERS = {"lanes": int, "luts": int, "flip_flops": int, "block_rams": int, "dsps": int, "clock_mhz": float,
            "fmax_mhz": float, "cycles_per_inference": float, "inferences_per_second_at_clock": float,
            "inferences_per_second_at_fmax": float, "link_bound_inferences_per_second": float}


def _path_text(path: dict | None) -> str:
    """A critical path in a cell: its ends' modules, its delay and how much is routing."""
    if not path:
        return ""
    modules = path["modules"]
    ends = f"{modules[0]} -> {modules[-1]}" if modules else f"{path['from']} -> {path['to']}"
    return f"{ends}: {path['total_ns']:.1f} ns ({path['routing_ns']:.1f} routing, {path['logic_levels']} logic levels)"


def _failure(error: BuildError) -> str:
    """A failed build in a cell: the tool's own error line (a design too big for the device
    names its cells), else the first line of the error."""
    lines = str(error).splitlines()
    said = [line.strip() for line in lines if line.strip().startswith("ERROR")]
    return "failed: " + (said[-1] if said else lines[0])


def _build_job(job: tuple) -> dict:
    """One board build (a cluster job): its row of the sweep. A build that fails (a design
    larger than the device, say) is a row too, with the reason: the sweep goes on."""
    board, model, p, folder, baud, clock_hz, golden, spike_times = job
    try:
        report = build_board(board, model, p, folder, baud=baud, clock_hz=clock_hz, golden=golden,
                             spike_times=spike_times, progress=lambda line: None)
    except BuildError as error:
        return {"board": board, "lanes": p, "schedule": model.params.schedule.value, "outcome": _failure(error),
                "meets_clock": None, "critical_path": "", **{key: None for key in _NUMBERS if key != "lanes"}}
    pnr, throughput, synthesis = report.place_and_route, report.throughput, report.synthesis
    assert throughput is not None  # golden and spike_times were given
    return {
        "board": board, "lanes": p, "schedule": model.params.schedule.value, "outcome": "built",
        "luts": synthesis.luts, "flip_flops": synthesis.flip_flops,
        "block_rams": synthesis.block_rams, "dsps": synthesis.dsps, "clock_mhz": report.clock_hz / 1e6,
        "fmax_mhz": pnr.fmax_mhz if pnr else None, "meets_clock": pnr.meets_clock if pnr else None,
        "cycles_per_inference": throughput.cycles_per_inference,
        "inferences_per_second_at_clock": throughput.inferences_per_second_at_clock,
        "inferences_per_second_at_fmax": throughput.inferences_per_second_at_fmax,
        "link_bound_inferences_per_second": throughput.link_bound_inferences_per_second,
        "critical_path": _path_text(pnr.critical_path) if pnr else "",
    }


def sweep(setups: dict[str, tuple[Model, GoldenResult]], lanes: list[int], out_dir: str | Path, *, baud: int,
          clock_hz: int | None = None, spike_times: np.ndarray, progress=print,
          workers: int | None = 1, scheduler: str | None = None, resume: bool = False) -> list[dict]:
    """Build every (board, P) pair, each a job on a Dask cluster (``workers`` local
    processes, or ``scheduler``'s; one worker: here, one after another); ``setups`` gives
    each board its model (with the schedule it runs) and that model's golden result on
    ``spike_times``. ``sweep.csv`` is rewritten, whole, after every finished build, so an
    interrupted sweep keeps what it finished; with ``resume`` the pairs already in it are
    not built again."""
    out = Path(out_dir)
    order = [(board, p) for board in setups for p in lanes]
    done = {(r["board"], r["lanes"]): r for r in (_read_csv(out / "sweep.csv") if resume else [])
            if (r["board"], r["lanes"]) in order}
    for board, p in done:
        progress(f"sweep: {board}, P={p} already in sweep.csv")
    todo = [pair for pair in order if pair not in done]
    jobs = [(board, setups[board][0], p, out / f"{board}-p{p}", baud, clock_hz, setups[board][1], spike_times)
            for board, p in todo]
    with open_cluster(workers, scheduler) as client:
        for index, row in run_jobs(client, _build_job, jobs):
            board, p = todo[index]
            done[board, p] = row
            progress(f"sweep: {board}, P={p} {'built' if row['outcome'] == 'built' else row['outcome']} "
                     f"({len(done)}/{len(order)})")
            _write_csv([done[pair] for pair in order if pair in done], out / "sweep.csv")
    rows = [done[pair] for pair in order]
    _write_csv(rows, out / "sweep.csv")  # the pairs asked for, in their order (a resumed sweep may keep all)
    return rows


def _read_csv(path: Path) -> list[dict]:
    """The rows of an earlier sweep.csv (none if there is none or it is not one)."""
    if not path.is_file():
        return []
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    out = []
    for row in rows:
        try:
            meets = {"True": True, "False": False}.get(row["meets_clock"])
            parsed: dict = {"board": row["board"], "schedule": row["schedule"], "outcome": row["outcome"],
                            "meets_clock": meets, "critical_path": row["critical_path"]}
            for key, kind in _NUMBERS.items():
                parsed[key] = kind(row[key]) if row[key] != "" else None
        except (KeyError, ValueError):
            return []  # not a sweep.csv of this version: build everything again
        out.append(parsed)
    return out


def _write_csv(rows: list[dict], path: Path) -> None:
    def write(handle) -> None:
        text = io.TextIOWrapper(handle, newline="")
        writer = csv.DictWriter(text, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        text.flush()
        text.detach()
    write_atomically(path, write)


def plot_sweep(rows: list[dict], path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 5, figsize=(20, 3.8), layout="constrained")
    panels = (("luts", "LUTs"), ("block_rams", "block RAMs"), ("fmax_mhz", "Fmax (MHz)"),
              ("inferences_per_second_at_clock", "inferences/s at the clock"),
              ("inferences_per_second_at_fmax", "inferences/s at Fmax"))
    for axis, (key, label) in zip(axes, panels):
        for board in dict.fromkeys(r["board"] for r in rows):
            points = [(r["lanes"], r[key]) for r in rows if r["board"] == board and r[key] is not None]
            if points:
                axis.plot(*zip(*points), "o-", label=board)
        axis.set_xscale("log", base=2)
        axis.set_xlabel("lanes P")
        axis.set_title(label)
        axis.grid(True, alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:  # (none if every build failed)
        axes[0].legend(fontsize=8)
    try:
        save_png(figure, path)
    finally:
        plt.close(figure)
