"""Accuracy and cost of a model on a data set through one backend."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from .backends import run_backend
from .cluster import open_cluster, run_jobs
from .datasets import Dataset
from .errors import FirstSpikeError, NotOnTheCore
from .model import Model
from .topology import describe

__all__ = ["EvalReport", "evaluate", "choose_simulator"]

#: Simulated cycles from which Verilator's C++ build (10-40 s) pays for itself against
#: Icarus, which starts at once but simulates ~150-400x fewer cycles a second
#: (docs/hardware.md, "bench-rtl").
VERILATOR_FROM_CYCLES = 200_000
# Samples whose golden cycle counts estimate a run's.
_ESTIMATE_SAMPLES = 64

#: Samples from which a device evaluation goes to a cluster by default.
_CLUSTER_FROM = 100


@dataclass(frozen=True)
class EvalReport:
    """What ``firstspike eval`` prints; every figure is a mean per inference unless named otherwise."""

    model_sha256: str
    dataset: str
    split: str
    samples: int
    backend: str
    lanes: int
    schedule: str
    accuracy: float
    correct: int
    outputs_fired: float
    decision_step_mean: float  # the step the class is final at (first output spike, or T-1)
    spikes_per_neuron: list[float]
    spikes_per_layer: list[float]
    synaptic_ops: float
    #: None where the network has layers the core does not run yet (no cycle contract).
    cycles_mean: float | None
    cycles_min: int | None
    cycles_max: int | None
    ideal_cycles_mean: float | None
    seconds: float
    #: Fraction of samples on which the backend equals the golden model in everything it
    #: exposes (None for the golden model itself).
    agreement: float | None = None
    #: Why there are no cycles: what the core cannot run in this network.
    off_core: str | None = None
    #: The RTL simulator that ran (the rtl and netlist backends).
    simulator: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def _where(self, label: str) -> str:
        if self.backend == "golden":
            return label
        return f"{label}{f' on {self.simulator}' if self.simulator else ''}, P={self.lanes}"

    def lines(self, model: Model, name: str, backend_label: str = "") -> list[str]:
        """The figures as ``firstspike eval`` prints them (``name``: how the user named the model)."""
        p = model.params
        layers = ["inputs"] + [f"layer {k + 1}" for k in range(p.n_layers)]
        shapes = "" if p.fully_connected else ": " + ", ".join(describe(p.layer_shape(k)) for k in range(p.n_layers))
        lines = [
            f"model      {name}  ({'-'.join(map(str, p.layer_sizes))}{shapes}, T={p.time_steps}, {p.kernel.value} "
            f"kernel, sha256 {self.model_sha256[:12]})",
            f"data       {self.dataset} {self.split} split, {self.samples} samples",
            f"backend    {self.backend}{self._where(backend_label)}  "
            f"({self.samples / max(self.seconds, 1e-9):,.0f} inferences/s)",
            f"accuracy   {100 * self.accuracy:.2f} %  ({self.correct}/{self.samples}); "
            f"an output fired in {100 * self.outputs_fired:.1f} %; decided at step "
            f"{self.decision_step_mean:.2f} on average",
            "spikes     " + ", ".join(f"{layer} {per:.3f}/neuron ({total:.1f})" for layer, per, total
                                      in zip(layers, self.spikes_per_neuron, self.spikes_per_layer)),
            f"syn. ops   {self.synaptic_ops:,.1f} per inference",
        ]
        if self.agreement is not None:
            lines.append(f"agreement  {100 * self.agreement:.2f} % of samples equal the golden model in every spike "
                         "time, class, decision step and cycle count")
        if self.cycles_mean is None or self.ideal_cycles_mean is None:
            lines.append(f"cycles     none: {self.off_core}")
            return lines
        ratio = self.cycles_mean / max(self.ideal_cycles_mean, 1e-9)
        lines.append(f"cycles     P={self.lanes}, {self.schedule}: mean {self.cycles_mean:,.1f} "
                     f"(min {self.cycles_min}, max {self.cycles_max}); {ratio:.3f} x the "
                     f"event-bound ideal {self.ideal_cycles_mean:,.1f}")
        return lines


def choose_simulator(model: Model, spike_times: np.ndarray, lanes: int) -> str:
    """Icarus for short runs, Verilator once the run's cycles (estimated with the golden
    model on its first samples) reach :data:`VERILATOR_FROM_CYCLES`."""
    from .golden import simulate
    per_sample = simulate(model, spike_times[:_ESTIMATE_SAMPLES]).cycles(lanes).mean()
    return "verilator" if per_sample * len(spike_times) >= VERILATOR_FROM_CYCLES else "icarus"


def _run_shard(job: tuple[str, Model, np.ndarray, dict]):
    """One shard of samples through a backend, on a cluster worker: its chunks joined."""
    backend, model, spike_times, options = job
    parts = list(run_backend(backend, model, spike_times, **options))
    return type(parts[0]).join(parts)


def _sharded(backend: str, model: Model, spike_times: np.ndarray, options: dict, progress, *,
             workers: int | None, scheduler: str | None) -> list:
    """The backend's results for consecutive shards of the samples, each a job on a Dask
    cluster (a few shards a worker, so a slow one does not hold the rest up). By default
    fewer than ``_CLUSTER_FROM`` samples run here: starting worker processes costs more."""
    if workers is None and scheduler is None and len(spike_times) < _CLUSTER_FROM:
        workers = 1
    with open_cluster(workers, scheduler) as client:
        if client is None:
            parts = []
            for part in run_backend(backend, model, spike_times, **options):
                parts.append(part)
                if progress is not None:
                    progress(part.batch)
            return parts
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        size = min(500, max(1, -(-len(spike_times) // (4 * n_workers))))
        jobs = [(backend, model, spike_times[start:start + size], options)
                for start in range(0, len(spike_times), size)]
        results: list = [None] * len(jobs)
        for index, result in run_jobs(client, _run_shard, jobs):
            results[index] = result
            if progress is not None:
                progress(result.batch)
        return results


def check_inputs(model: Model, x: np.ndarray, name: str) -> None:
    """A data set whose images are not the model's inputs gets one line that says so."""
    if x.shape[1] != model.params.n_inputs:
        raise FirstSpikeError(f"the model takes {model.params.n_inputs} inputs but {name} images have "
                              f"{x.shape[1]} pixels")


def evaluate(model: Model, dataset: Dataset, *, split: str = "test", backend: str = "golden",
             lanes: int = 16, limit: int | None = None, progress=None,
             backend_options: dict | None = None, workers: int | None = 1,
             scheduler: str | None = None) -> EvalReport:
    """Run ``split`` of ``dataset`` (the first ``limit`` samples) through ``backend``.

    ``progress``, if given, is called with the number of samples each finished chunk held.
    ``backend_options`` go to the backend (e.g. ``simulator`` for ``rtl``; ``lanes`` is
    passed to every backend but ``golden``, which needs no lane count to run).
    ``workers``, ``scheduler``: a device backend's samples are sharded over a Dask cluster
    (:mod:`.cluster`: ``workers`` local processes, default one per core, or an existing
    scheduler); ``workers=1`` runs here. The results are the same either way.
    """
    x, y = dataset.split(split)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    check_inputs(model, x, dataset.name)
    if len(x) == 0:
        raise FirstSpikeError("no samples to evaluate (--limit must be at least 1)")
    model.params.with_lanes(lanes)  # checks the range
    spike_times = model.encoding.encode(x, model.params.time_steps)
    start = time.perf_counter()
    parts = []
    options = dict(backend_options or {})
    if backend != "golden":
        options.setdefault("lanes", lanes)
    if backend == "rtl" and options.get("simulator") is None:
        model.params.require_on_the_core(f"the {backend} backend")
        options["simulator"] = choose_simulator(model, spike_times, lanes)
    if backend == "golden":
        for part in run_backend(backend, model, spike_times, **options):
            parts.append(part)
            if progress is not None:
                progress(part.batch)
    else:
        model.params.require_on_the_core(f"the {backend} backend")  # before any worker starts
        parts = _sharded(backend, model, spike_times, options, progress, workers=workers, scheduler=scheduler)
    seconds = time.perf_counter() - start
    result = type(parts[0]).join(parts)
    counts = result.spike_counts.mean(axis=0)
    sizes = np.array(model.params.layer_sizes, np.float64)
    try:
        model.params.require_on_the_core("the core")
        off_core = None
    except NotOnTheCore as error:
        off_core = str(error)
    on_core = off_core is None
    cycles = result.cycles(lanes) if on_core else None
    correct = int(np.sum(result.decision == y))
    agrees = getattr(result, "agrees", None)  # a device backend's per-sample agreement with golden
    return EvalReport(
        model_sha256=model.digest(),
        dataset=dataset.name,
        split=split,
        samples=len(y),
        backend=backend,
        lanes=lanes,
        schedule=model.params.schedule.value,
        accuracy=correct / len(y),
        correct=correct,
        outputs_fired=float(result.fired.mean()),
        decision_step_mean=float(result.decision_step.mean()),
        spikes_per_neuron=[float(v) for v in counts / sizes],
        spikes_per_layer=[float(v) for v in counts],
        synaptic_ops=float(result.synaptic_ops.mean()),
        cycles_mean=None if cycles is None else float(cycles.mean()),
        cycles_min=None if cycles is None else int(cycles.min()),
        cycles_max=None if cycles is None else int(cycles.max()),
        ideal_cycles_mean=float(result.ideal_cycles(lanes).mean()) if on_core else None,
        seconds=seconds,
        agreement=None if agrees is None else float(np.mean(agrees)),
        off_core=off_core,
        simulator=options.get("simulator"),
    )
