"""Ending the programs a run started (simulator builds, simulators) when the run is interrupted.

``subprocess`` kills only the child it started when Ctrl-C arrives; a build's ``make``
leaves its compilers running. This finds every descendant through ``/proc`` (Linux) and
ends them, politely first, at the moment the signal arrives (later, once ``subprocess``
has killed ``make``, the compilers have moved to another parent and are out of reach).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["descendants", "end_descendants", "ending_descendants_on_interrupt"]


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'
        parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    return parents


def descendants(pid: int | None = None) -> list[int]:
    """Process ids of every live descendant of ``pid`` (default: this process); none off Linux."""
    if not Path("/proc/self/stat").exists():
        return []
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, frontier = [], [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child)
    return found


def _signal_all(pids: list[int], number: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, number)


def _is_resource_tracker(pid: int) -> bool:
    """Whether ``pid`` is multiprocessing's resource tracker, which the worker processes of a
    cluster share: it ends by itself once they and this process have, and ending it earlier
    makes the next process that frees a semaphore start another one that knows none of them."""
    try:
        return b"multiprocessing.resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # ended meanwhile
        return False


def end_descendants(grace: float = 2.0) -> int:
    """SIGTERM every descendant (but multiprocessing's resource tracker), SIGKILL those still
    alive after ``grace`` s; returns how many."""
    pids = [pid for pid in descendants() if not _is_resource_tracker(pid)]
    if not pids:
        return 0
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:  # reap our own children so that they do not linger as zombies
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        alive = set(descendants()) & set(pids)
        if not alive:
            return len(pids)
        time.sleep(0.05)
    _signal_all([pid for pid in pids if Path(f"/proc/{pid}").exists()], signal.SIGKILL)
    return len(pids)


@contextlib.contextmanager
def ending_descendants_on_interrupt() -> Iterator[list[int]]:
    """Within the block, SIGINT and SIGTERM end every descendant first, then raise
    ``KeyboardInterrupt``; the list yielded collects how many each signal ended.

    A signal the process was started ignoring (a shell's background job) stays ignored.
    """
    ended: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield ended
        return

    def handler(number, frame) -> None:
        ended.append(end_descendants())
        raise KeyboardInterrupt

    saved = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(number) is not signal.SIG_IGN:
            saved[number] = signal.signal(number, handler)
    try:
        yield ended
    finally:
        for number, previous in saved.items():
            signal.signal(number, previous)
