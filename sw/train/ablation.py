"""The ablation: the training recipe with each seed paper's method switched off in turn.

Each row is a full training run and a golden-model evaluation of the exported integers
on the test split: accuracy, spikes per hidden neuron, synaptic operations and cycles at
``P`` lanes. Rows are written (JSON) as they finish, so an interrupted ablation keeps
what it measured; :func:`markdown` and :func:`plot` turn them into the docs' table and
a PNG of accuracy against spikes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from ..cluster import open_cluster, run_jobs
from ..datasets import Dataset, load_dataset
from ..evaluate import evaluate
from ..files import save_png, write_atomically
from .config import TrainConfig
from .loop import train

__all__ = ["METHODS", "variants", "run_ablation", "markdown", "plot"]

#: Method, the field that switches it, its "on" and "off" values, and its paper.
METHODS: tuple[tuple[str, str, object, object, str], ...] = (
    ("spike penalty", "spike_penalty", 0.5, 0.0, "Park & Yoon 2021"),
    ("ETTFS init", "init", "ettfs", "default", "ETTFS 2024"),
    ("temporal-weighted decoding", "decoding", "temporal", "uniform", "ETTFS 2024"),
    ("float-to-spiking interpolation", "interpolate", 0.3, 0.0, "Voelker et al. 2020"),
    ("temporal reversal", "reversal", 0.1, 0.0, "Zuo et al. 2024"),
)


def variants(base: TrainConfig) -> list[tuple[str, dict, str]]:
    """The recipe, then each method flipped: removed where the recipe uses it, added where not."""
    rows: list[tuple[str, dict, str]] = [("recipe", {}, "")]
    for name, field, on, off, paper in METHODS:
        if getattr(base, field) != off:
            rows.append((f"without {name}", {field: off}, paper))
        else:
            rows.append((f"with {name}", {field: on}, paper))
    # A CNN's pooling: ETTFS found average pooling suits TTFS better than max pooling.
    if base.conv and base.pool in ("avg", "max"):
        other = "max" if base.pool == "avg" else "avg"
        rows.append((f"with {'max' if other == 'max' else 'average'} pooling", {"pool": other}, "ETTFS 2024"))
    return rows


def _writer(data: bytes) -> Callable[[BinaryIO], object]:
    return lambda handle: handle.write(data)


def _variant_job(job: tuple) -> dict:
    """One variant trained and evaluated (a cluster job): its row."""
    name, change, source, data, base, lanes, limit = job
    dataset = data if isinstance(data, Dataset) else load_dataset(*data)
    if _on_a_worker():  # one core per worker process: torch would otherwise take them all
        import torch
        torch.set_num_threads(1)
    x, y = dataset.train_x, dataset.train_y
    if limit is not None:
        x, y = x[:limit], y[:limit]
    config = replace(base, **change)
    trained = train(x, y, x_max=dataset.x_max, config=config, provenance={"dataset": dataset.name},
                    image_shape=dataset.image_shape)
    model = trained.model
    if not model.params.fully_connected:  # the core runs conv layers on the stepped schedule
        model = model.with_schedule("stepped")
    report = evaluate(model, dataset, lanes=lanes)
    hidden_sizes = trained.model.params.layer_sizes[1:-1]
    hidden_spikes = sum(report.spikes_per_layer[1:-1]) / sum(hidden_sizes)
    return {"variant": name, "source": source, "change": change, "dataset": dataset.name,
            "recipe": base.as_dict(), "architecture": "-".join(map(str, trained.model.params.layer_sizes)),
            "kernel": config.kernel.value, "epochs": config.epochs,
            "train_samples": len(y), "accuracy": report.accuracy,
            "hidden_spikes_per_neuron": hidden_spikes, "synaptic_ops": report.synaptic_ops,
            "cycles": report.cycles_mean, "lanes": lanes, "outputs_fired": report.outputs_fired}


def _on_a_worker() -> bool:
    try:
        from distributed import get_worker
        get_worker()
        return True
    except (ImportError, ValueError):
        return False


def _earlier_rows(out: Path, base: TrainConfig, lanes: int, limit: int | None) -> dict[str, dict]:
    """Rows of an earlier run of the same recipe, by variant (none where there are none)."""
    try:
        rows = json.loads(out.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(rows, list):
        return {}
    return {r["variant"]: r for r in rows if isinstance(r, dict) and r.get("recipe") == base.as_dict()
            and r.get("lanes") == lanes and (limit is None or r.get("train_samples", limit) <= limit)}


def run_ablation(dataset: Dataset, base: TrainConfig, *, lanes: int, out: str | os.PathLike,
                 limit: int | None = None, progress: Callable[[str], None] | None = None,
                 workers: int | None = 1, scheduler: str | None = None, resume: bool = False,
                 data_dir: str | None = None) -> list[dict]:
    """Train and evaluate every variant, each a job on a Dask cluster (``workers`` local
    processes or ``scheduler``'s; one worker: here, in turn); rows go to ``out`` (JSON)
    after each. With ``resume`` the variants an earlier run of this recipe finished are
    kept. Workers load the data set themselves (``dataset.name``, ``data_dir``)."""
    order = variants(base)
    done = _earlier_rows(Path(out), base, lanes, limit) if resume else {}
    done = {name: row for name, row in done.items() if name in {v[0] for v in order}}
    for name in done:
        if progress is not None:
            progress(f"{name} (kept)")
    todo = [v for v in order if v[0] not in done]
    with open_cluster(workers, scheduler) as client:
        data = dataset if client is None else (dataset.name, data_dir)
        jobs = [(name, change, source, data, base, lanes, limit) for name, change, source in todo]
        for index, row in run_jobs(client, _variant_job, jobs):
            done[todo[index][0]] = row
            if progress is not None:
                progress(todo[index][0])
            rows = [done[name] for name, _, _ in order if name in done]
            write_atomically(out, _writer((json.dumps(rows, indent=1) + "\n").encode()))
    return [done[name] for name, _, _ in order]


def markdown(rows: list[dict]) -> str:
    """The table for docs/training.md."""
    lines = ["| variant | paper | accuracy | spikes / hidden neuron | synaptic ops | "
             f"cycles at P={rows[0]['lanes'] if rows else '?'} |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        cycles = "golden model only" if r["cycles"] is None else f"{r['cycles']:,.1f}"  # e.g. max pooling
        lines.append(f"| {r['variant']} | {r['source'] or '—'} | {100 * r['accuracy']:.2f} % | "
                     f"{r['hidden_spikes_per_neuron']:.3f} | {r['synaptic_ops']:,.0f} | {cycles} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: str | os.PathLike) -> None:
    """Accuracy against hidden spikes per neuron, one labelled point per variant."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    markers = "o^svDP*Xh"
    for i, r in enumerate(rows):
        # Points often coincide: distinct markers and a legend instead of labels on the plot.
        ax.scatter(r["hidden_spikes_per_neuron"], 100 * r["accuracy"], s=60 if i == 0 else 40,
                   marker=markers[i % len(markers)], alpha=0.8, label=r["variant"])
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    first = rows[0] if rows else {}
    ax.set_xlabel("spikes per hidden neuron per image")
    ax.set_ylabel("test accuracy (%), golden model on the integers")
    ax.set_title(f"Ablation: {first.get('dataset', '')} {first.get('architecture', '')}, "
                 f"{first.get('kernel', '')} kernel")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        save_png(fig, path, dpi=120)
    finally:
        plt.close(fig)
