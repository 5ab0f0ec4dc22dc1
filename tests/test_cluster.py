"""Jobs on a real Dask LocalCluster (worker processes on this machine): sharded RTL
evaluation, a worker that dies mid-job, and the in-process path for one worker."""

from __future__ import annotations

import os

import pytest

from firstspike.sw.cluster import open_cluster, run_jobs
from firstspike.sw.datasets import load_dataset
from firstspike.sw.evaluate import evaluate
from firstspike.sw.model import load_model
from firstspike.sw.models import shipped_model_path


@pytest.mark.slow  # a LocalCluster of worker processes: CI runs these
def test_an_rtl_eval_sharded_over_two_workers_equals_the_unsharded_one():
    model = load_model(shipped_model_path("digits")).with_schedule("stepped")
    digits = load_dataset("digits")
    options = {"simulator": "icarus"}
    alone = evaluate(model, digits, backend="rtl", lanes=4, limit=40, backend_options=options, workers=1)
    shards = []
    sharded = evaluate(model, digits, backend="rtl", lanes=4, limit=40, backend_options=options, workers=2,
                       progress=shards.append)
    assert len(shards) > 2 and sum(shards) == 40  # several shards, every sample once
    assert sharded.agreement == 1.0
    same = {key: value for key, value in alone.as_dict().items() if key != "seconds"}
    assert {key: value for key, value in sharded.as_dict().items() if key != "seconds"} == same


@pytest.mark.slow
def test_a_job_whose_worker_dies_finishes_on_another(tmp_path):
    marker = tmp_path / "died-once"

    def die_the_first_time(job: int) -> tuple[int, int]:
        if job == 1 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)  # the worker process ends mid-job
        return job * job, os.getpid()

    with open_cluster(workers=2) as client:
        results = dict(run_jobs(client, die_the_first_time, [0, 1, 2, 3]))
    assert marker.exists() and {index: square for index, (square, _) in results.items()} == {0: 0, 1: 1, 2: 4, 3: 9}
    assert results[1][1] != int(marker.read_text())  # job 1 ended on another worker process
    assert all(pid != os.getpid() for _, pid in results.values())


def test_one_worker_runs_the_jobs_here_in_order():
    with open_cluster(workers=1) as client:
        assert client is None
        assert list(run_jobs(client, lambda job: (job, os.getpid()), [5, 6])) == [(0, (5, os.getpid())),
                                                                                (1, (6, os.getpid()))]


def test_a_scheduler_that_does_not_answer_is_named():
    from firstspike.sw.errors import FirstSpikeError
    with pytest.raises(FirstSpikeError, match="--scheduler tcp://127.0.0.1:9: no Dask scheduler answers there"):
        with open_cluster(scheduler="tcp://127.0.0.1:9"):
            pass


@pytest.mark.slow
def test_an_ablation_on_two_workers_trains_every_variant_once(tmp_path):
    from firstspike.sw.train.ablation import run_ablation, variants
    from firstspike.sw.train.config import TrainConfig
    base = TrainConfig(hidden=(16,), epochs=1)
    finished = []
    rows = run_ablation(load_dataset("digits"), base, lanes=16, out=tmp_path / "ablation.json", limit=300,
                        progress=finished.append, workers=2)
    names = [name for name, _, _ in variants(base)]
    assert [r["variant"] for r in rows] == names and sorted(finished) == sorted(names)
    assert all(r["cycles"] > 0 and r["train_samples"] == 300 for r in rows)
