"""Backends that run inferences: each takes a model and input spike times and returns a
:class:`~firstspike.sw.golden.GoldenResult`-shaped result.

``golden`` is the NumPy golden model; ``rtl`` simulates the generated Verilog. Backends
register here by import path, so sw never imports hw (or Amaranth) until one is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator

import numpy as np

from .errors import FirstSpikeError
from .golden import GoldenResult
from .model import Model

__all__ = ["BACKENDS", "run_backend"]

#: name -> "module:function" of a callable ``(model, spike_times, **options) -> Iterator[GoldenResult]``
#: that yields results for consecutive chunks of the batch.
BACKENDS: dict[str, str] = {
    "golden": "firstspike.sw.golden:simulate_batches",
    # The generated Verilog in Icarus or Verilator (needs the [hw] extra).
    "rtl": "firstspike.hw.sim.backend:run_rtl_batches",
    # The gate-level netlist Yosys makes for a board's FPGA, with Yosys' cell models.
    "netlist": "firstspike.hw.sim.backend:run_netlist_batches",
}


def run_backend(name: str, model: Model, spike_times: np.ndarray, **options) -> Iterator[GoldenResult]:
    """Results of ``name`` for consecutive chunks of ``spike_times``."""
    if name not in BACKENDS:
        raise FirstSpikeError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name != "golden":
        model.params.require_on_the_core(f"the {name} backend")
    module_name, function_name = BACKENDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise FirstSpikeError(f"backend {name!r} needs a package that is not installed ({error}); "
                              "pip install 'firstspike[hw]'") from None
    run: Callable[..., Iterator[GoldenResult]] = getattr(module, function_name)
    return run(model, spike_times, **options)
