"""What every ``firstspike`` command shares: the parser, number options that refuse bad
values, models by name, progress bars, and the optional parts of the package.

The command modules (:mod:`.cli`, :mod:`.cli_train`) import this and never each other.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from .errors import FirstSpikeError
from .model import Model, load_model
from .models import SHIPPED, shipped_model_path
from .params import Schedule

__all__ = ["UsageError", "Parser", "int_in", "float_in", "hw", "resolve_model", "progress", "model_and_data",
           "DATASETS", "SHIPPED_NAMES"]

DATASETS = ["digits", "fashion-mnist", "mnist"]
SHIPPED_NAMES = ", ".join(SHIPPED)


class UsageError(Exception):
    """A command line argparse refused: the message is the whole line to print."""


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and an exception, not a usage dump and an exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def int_in(name: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``low ... high`` (``high=None``: no upper bound)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, not {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{name} must be {span}, not {value}")
        return value
    return parse


def float_in(name: str, low: float | None = None, high: float | None = None, *,
             low_open: bool = False, high_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number within the bounds (``*_open``: the bound itself excluded)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, not {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number, not {text}")
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and (value >= high if high_open else value > high)
        if below or above:
            parts = []
            if low is not None:
                parts.append(f"{'>' if low_open else '>='} {low:g}")
            if high is not None:
                parts.append(f"{'<' if high_open else '<='} {high:g}")
            raise argparse.ArgumentTypeError(f"{name} must be {' and '.join(parts)}, not {text}")
        return value
    return parse


def hw(module: str, purpose: str):
    """``firstspike.hw.<module>``, or a clear error if the hardware extra is missing."""
    try:
        return importlib.import_module(f"firstspike.hw.{module}")
    except ImportError as error:
        raise FirstSpikeError(f"{purpose} needs the hardware extra ({error}); pip install 'firstspike[hw]'") from None


def resolve_model(text: str, schedule: str | None = None) -> Model:
    """A model by path, or by the name of a shipped model (``digits``), on a core with
    ``schedule`` (``--schedule``) where given.

    A file of that name wins over the shipped model; a folder of that name does not."""
    if text in SHIPPED and not Path(text).is_file():
        model = load_model(shipped_model_path(text))
    else:
        model = load_model(text)
    return model if schedule is None else model.with_schedule(schedule)


def schedule_option(p: argparse.ArgumentParser, default: str | None = Schedule.STEPPED.value,
                    default_note: str = " (default)") -> None:
    """``--schedule``: the order the core works in (docs/cycles.md)."""
    p.add_argument("--schedule", choices=[s.value for s in Schedule], default=default,
                   help=f"stepped: all layers step by step, answering at the first output spike{default_note}; "
                        "layered: each layer over all steps, then the next")


def cluster_options(p: argparse.ArgumentParser, jobs: str) -> None:
    """``--workers`` and ``--scheduler``: where ``jobs`` run (docs/cluster.md)."""
    p.add_argument("--workers", type=int_in("--workers", 1),
                   help=f"Dask worker processes on this machine for the {jobs} (default one per core; "
                        "1 runs them here, one after another)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help=f"run the {jobs} on this Dask scheduler's workers instead (docs/cluster.md)")


def progress(total: int, description: str, enabled: bool, unit: str = "inf"):
    """A tqdm bar on stderr (hidden when ``enabled`` is false or stderr is not a terminal)."""
    from tqdm import tqdm
    return tqdm(total=total, desc=description, unit=unit, disable=None if enabled else True,
                file=sys.stderr, leave=False)


def model_and_data(p: argparse.ArgumentParser, dataset_help: str | None = None, *, model: bool = True) -> None:
    """``--model`` (unless the command places it itself), ``--dataset`` and ``--data-dir``."""
    if model:
        p.add_argument("--model", default="digits", help=f"model file, or a shipped model ({SHIPPED_NAMES})")
    p.add_argument("--dataset", default="digits", choices=DATASETS, help=dataset_help)
    p.add_argument("--data-dir", help="folder with the IDX files (fashion-mnist, mnist)")
