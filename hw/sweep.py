"""Lanes × boards sweep: one board build per pair, a CSV of the figures and a PNG of LUTs,
block RAM, Fmax and inferences/s against P."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from firstspike.sw.files import save_png, write_atomically
from firstspike.sw.golden import GoldenResult
from firstspike.sw.model import Model

from .build import build_board

__all__ = ["sweep", "plot_sweep", "COLUMNS"]

COLUMNS = ("board", "lanes", "luts", "flip_flops", "block_rams", "dsps", "fmax_mhz", "meets_clock",
           "cycles_per_inference", "inferences_per_second_at_fmax", "link_bound_inferences_per_second")


def sweep(model: Model, boards: list[str], lanes: list[int], out_dir: str | Path, *, baud: int,
          golden: GoldenResult, spike_times: np.ndarray, progress=print) -> list[dict]:
    out = Path(out_dir)
    rows = []
    for board in boards:
        for p in lanes:
            progress(f"sweep: {board}, P={p}")
            report = build_board(board, model, p, out / f"{board}-p{p}", baud=baud, golden=golden,
                                 spike_times=spike_times, progress=lambda line: None)
            pnr, throughput, synthesis = report.place_and_route, report.throughput, report.synthesis
            assert throughput is not None  # golden and spike_times were given
            rows.append({
                "board": board, "lanes": p, "luts": synthesis.luts, "flip_flops": synthesis.flip_flops,
                "block_rams": synthesis.block_rams, "dsps": synthesis.dsps,
                "fmax_mhz": pnr.fmax_mhz if pnr else None, "meets_clock": pnr.meets_clock if pnr else None,
                "cycles_per_inference": throughput.cycles_per_inference,
                "inferences_per_second_at_fmax": throughput.inferences_per_second_at_fmax,
                "link_bound_inferences_per_second": throughput.link_bound_inferences_per_second,
            })
            _write_csv(rows, out / "sweep.csv")  # after every build: a failed sweep keeps what it has
    return rows


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

    figure, axes = plt.subplots(1, 4, figsize=(16, 3.8), layout="constrained")
    panels = (("luts", "LUTs"), ("block_rams", "block RAMs"), ("fmax_mhz", "Fmax (MHz)"),
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
    axes[0].legend(fontsize=8)
    try:
        save_png(figure, path)
    finally:
        plt.close(figure)
