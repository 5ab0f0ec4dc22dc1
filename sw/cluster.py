"""Many independent jobs (builds, RTL shards, training runs) on a Dask cluster.

:func:`open_cluster` gives a ``distributed.Client`` on a ``LocalCluster`` of this machine
(one single-threaded worker process per core by default), on an existing scheduler
(``tcp://HOST:PORT``: docs/cluster.md), or ``None`` with one worker: the jobs then run
here, in this process, one after another, as they always did. :func:`run_jobs` submits
jobs and hands each result back as it finishes; Dask reruns a job whose worker died on
another worker. Nothing here knows what a job does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .errors import FirstSpikeError

__all__ = ["open_cluster", "run_jobs", "default_workers"]


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def open_cluster(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A Dask client for ``workers`` local worker processes (default: one per core), or
    for the scheduler at ``scheduler``; ``None`` for ``workers == 1`` (in-process)."""
    if workers is not None and workers < 1:
        raise FirstSpikeError(f"--workers must be at least 1, not {workers}")
    if scheduler is None and (workers or default_workers()) == 1:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise FirstSpikeError("Dask's distributed package is not installed: pip install distributed") from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="5s")
        except OSError as error:
            raise FirstSpikeError(f"--scheduler {scheduler}: no Dask scheduler answers there ({error})") from None
        with client:
            yield client
        return
    # Processes, one thread each: the jobs are NumPy, simulators and compilers, which would
    # otherwise share one interpreter. Its HTTP server on any free port: two commands at once
    # must not fight over the default one.
    # Quiet: a job's error reaches the command, which says it in one line.
    with LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        yield client


def run_jobs(client: Any, function: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[int, Any]]:
    """``(index, function(jobs[index]))`` for every job, in the order they finish.

    With ``client`` ``None`` the jobs run here in order. On a cluster a job whose worker
    dies is rerun elsewhere (Dask's ``allowed-failures``); an exception a job raises is
    raised here."""
    if client is None:
        for index, job in enumerate(jobs):
            yield index, function(job)
        return
    from distributed import as_completed

    futures = {client.submit(function, job, pure=False): index for index, job in enumerate(jobs)}
    try:
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        for future in futures:
            future.cancel()
