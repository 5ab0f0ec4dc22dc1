"""Cycles per inference against the lane count P: the hardware's cost model at work.

The core's cycle count equals :meth:`GoldenResult.cycles` exactly (the RTL tests hold it
to that), so this sweep needs only the golden model: for each P, the mean cycles per
inference, the event-bound ideal (spikes x folds) and their ratio, and the throughput
that gives at a stated clock.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .files import save_png
from .golden import GoldenResult

__all__ = ["CyclePoint", "cycle_sweep", "plot_cycle_sweep", "LANES"]

LANES = (1, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class CyclePoint:
    network: str
    schedule: str
    lanes: int
    cycles_mean: float
    cycles_max: int
    ideal_mean: float
    ratio: float
    inferences_per_second: float  # at clock_mhz, one inference after another
    clock_mhz: float

    def as_dict(self) -> dict:
        return asdict(self)


def cycle_sweep(network: str, result: GoldenResult, lanes=LANES, clock_mhz: float = 100.0) -> list[CyclePoint]:
    points = []
    for p in lanes:
        cycles, ideal = result.cycles(p), result.ideal_cycles(p)
        points.append(CyclePoint(network, result.params.schedule.value, p, float(cycles.mean()), int(cycles.max()),
                                 float(ideal.mean()),
                                 float(cycles.mean() / ideal.mean()), clock_mhz * 1e6 / float(cycles.mean()),
                                 clock_mhz))
    return points


def plot_cycle_sweep(points: list[CyclePoint], path) -> None:
    """Cycles per inference (and the ideal) against P, one line per network, log-log."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    for network, schedule in dict.fromkeys((p.network, p.schedule) for p in points):
        rows = [p for p in points if (p.network, p.schedule) == (network, schedule)]
        lanes = [p.lanes for p in rows]
        line, = axis.plot(lanes, [p.cycles_mean for p in rows], "o-" if schedule == "stepped" else "s:",
                          label=f"{network}, {schedule}: core")
        axis.plot(lanes, [p.ideal_mean for p in rows], "--", color=line.get_color(), alpha=0.6,
                  label=f"{network}, {schedule}: ideal (spikes x folds)")
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xticks(sorted({p.lanes for p in points}), [str(v) for v in sorted({p.lanes for p in points})])
    axis.set_xlabel("neuron lanes P")
    axis.set_ylabel("clock cycles per inference (mean)")
    axis.set_title("FirstSpike core: cycles per inference vs lanes")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    try:
        save_png(figure, path, dpi=120)
    finally:
        plt.close(figure)
