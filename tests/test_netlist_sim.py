"""The gate-level netlists Yosys synthesizes for the boards, simulated with its cell models."""

from __future__ import annotations

import re

import pytest
from test_native_rtl import random_net

from firstspike.hw.sim.native import ECP5_BLOCK_RAM, run_native
from firstspike.sw import Kernel, Schedule, simulate
from firstspike.sw.compare import DeviceResults, compare
from firstspike.sw.datasets import load_dataset
from firstspike.sw.model import Model, load_model
from firstspike.sw.models import shipped_model_path


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("native-build")


# -- the netlist that goes into a bitstream ------------------------------------------------------

@pytest.mark.parametrize("family, kernel, simulator", [("ice40", Kernel.STEP, "icarus"),
                                                       ("ice40", Kernel.RAMP, "icarus")],
                         ids=["ice40-step-icarus", "ice40-ramp-icarus"])
@pytest.mark.slow
def test_the_synthesized_netlist_with_yosys_cell_models_matches_golden(family, kernel, simulator, build_root):
    model, times = random_net((12, 9, 4), 6, kernel, seed=13, batch=6)
    out = run_native(model, times, lanes=2, simulator=simulator, build_root=build_root, netlist=family)
    problem = compare(simulate(model, times), DeviceResults.from_arrays(out, model.params.n_layers), 2)
    assert problem is None, str(problem)
    assert list(build_root.glob(f"netlist-{family}-*/firstspike_core-{family}-netlist.v")), "a netlist was simulated"


@pytest.mark.slow
def test_the_ecp5_netlist_with_block_rams_in_both_modes_matches_golden(build_root):
    """The shipped digits core at P = 4 on the stepped schedule (the ULX3S's) puts its
    first 2,048 weight rows in 9-bit DP16KDs read through their output registers
    (hw/blockram.py), the other 384 in 36-bit pseudo-dual-port ones read through both
    ports' registers, and its spike queue in a 36-bit one Yosys lays out, without them: the
    modes of our DP16KD model run."""
    shipped = load_model(shipped_model_path("digits"))
    model = Model(shipped.params.with_schedule(Schedule.STEPPED), shipped.layers, shipped.encoding)
    x, _ = load_dataset("digits").split("test")
    times = model.encoding.encode(x[:12], model.params.time_steps)
    out = run_native(model, times, lanes=4, simulator="verilator", build_root=build_root, netlist="ecp5")
    problem = compare(simulate(model, times), DeviceResults.from_arrays(out, model.params.n_layers), 4)
    assert problem is None, str(problem)
    (netlist,) = build_root.glob("netlist-ecp5-*/firstspike_core-ecp5-netlist.v")
    text = netlist.read_text()
    assert f"{ECP5_BLOCK_RAM} #(" in text and "  DP16KD " not in text
    assert {"9", "36"} <= set(re.findall(r"\.DATA_WIDTH_A\(32'd(\d+)\)", text))
    assert {"OUTREG", "NOREG"} == set(re.findall(r'\.REGMODE_B\("(\w+)"\)', text))
