"""The PNG report of an inference run: confusion matrix, one sample's spikes through the
layers, and the distribution of cycles per inference."""

from __future__ import annotations

import numpy as np

from .arith import NO_SPIKE
from .files import save_png
from .golden import GoldenResult
from .link.messages import Result

__all__ = ["plot_inference_report"]


def plot_inference_report(path, results: list[Result], labels: np.ndarray, golden: GoldenResult, *,
                          sample: int = 0, title: str = "") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    decisions = np.array([r.decision for r in results])
    classes = max(int(labels.max()), int(decisions.max())) + 1
    confusion = np.zeros((classes, classes), np.int64)
    np.add.at(confusion, (labels, decisions), 1)

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
    axis = axes[0]
    axis.imshow(confusion, cmap="Blues")
    for (i, j), n in np.ndenumerate(confusion):
        if n:
            axis.text(j, i, str(n), ha="center", va="center", fontsize=7,
                      color="white" if n > confusion.max() / 2 else "black")
    axis.set_xlabel("class from the device")
    axis.set_ylabel("true class")
    axis.set_title(f"confusion ({100 * np.mean(decisions == labels):.2f} % correct)")
    axis.set_xticks(range(classes))
    axis.set_yticks(range(classes))

    axis = axes[1]
    layers = (golden.input_spike_times, *golden.spike_times)
    offset = 0
    for k, times in enumerate(layers):
        row = times[sample]
        fired = np.flatnonzero(row != NO_SPIKE)
        axis.scatter(row[fired], offset + fired, s=6, label="inputs" if k == 0 else f"layer {k}")
        offset += len(row) + 4
    device_times = results[sample].output_times
    fired = np.flatnonzero(device_times != NO_SPIKE)
    axis.scatter(device_times[fired], offset - len(device_times) - 4 + fired, s=60, facecolors="none",
                 edgecolors="black", label="outputs from the device")
    axis.set_xlabel("time step")
    axis.set_ylabel("neuron (layers stacked)")
    axis.set_title(f"sample {sample}: spikes (hidden: golden model, bit-exact)")
    axis.legend(fontsize=7, loc="upper right")

    axis = axes[2]
    cycles = np.array([r.cycles for r in results])
    axis.hist(cycles, bins=min(40, max(5, len(set(cycles.tolist())))), color="tab:green")
    axis.set_xlabel("clock cycles per inference (from the device)")
    axis.set_ylabel("samples")
    axis.set_title(f"cycles: mean {cycles.mean():,.1f}")
    if title:
        figure.suptitle(title)
    try:
        save_png(figure, path)
    finally:
        plt.close(figure)
