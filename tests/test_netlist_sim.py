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


# -- the link's spike decoder as the board builds make it ---------------------------------------

def _decoder_payloads() -> list[bytes]:
    """Good payloads, each fault, and the inputs a refused payload marked taken again."""
    from test_link_parts import FAULTS
    from wire import raw_spike_code

    again = raw_spike_code([[5, 200], [], [0, 4]], time_steps=9)
    return [again] + [payload for payload, _ in FAULTS.values()] + [again]


def _decoder_bench(payloads: list[bytes]) -> str:
    """A Verilog bench for module ``decoder`` (a SpikeCodeDecoder of test_link_parts.PARAMS): a
    frame bank that answers two cycles after its address, the payloads one after another from
    a reset, each verdict and event printed."""
    from test_link_parts import PARAMS

    from firstspike.hw.core import event_layout

    steps = []
    for payload in payloads:
        steps += [f"mem[{k}] = 8'd{byte};" for k, byte in enumerate(payload)]
        steps += [f"start__payload = {len(payload)}; start__valid = 1; @(posedge clk); while (!start__ready) "
                  "@(posedge clk); #1; start__valid = 0;", "wait_done;"]
    return (
        "module bench;\n  reg clk = 0, rst = 1, start__valid = 0;\n  reg [10:0] start__payload = 0;\n"
        "  reg [7:0] mem [0:1023];\n  reg [7:0] ahead = 0, read_byte = 0;\n  wire [10:0] read_address;\n"
        "  wire start__ready, verdict__valid, events__valid;\n  wire [7:0] verdict__payload;\n"
        f"  wire [{event_layout(PARAMS).size - 1}:0] events__payload;\n  always #5 clk = ~clk;\n"
        "  always @(posedge clk) begin ahead <= mem[read_address]; read_byte <= ahead; end\n"
        "  decoder dut(.clk(clk), .rst(rst), .start__payload(start__payload), .start__valid(start__valid),\n"
        "    .start__ready(start__ready), .verdict__payload(verdict__payload), .verdict__valid(verdict__valid),\n"
        "    .verdict__ready(1'b1), .events__payload(events__payload), .events__valid(events__valid),\n"
        "    .events__ready(1'b1), .read_address(read_address), .read_byte(read_byte));\n"
        "  always @(posedge clk) begin\n    if (verdict__valid) $display(\"V %0d\", verdict__payload);\n"
        "    if (events__valid) $display(\"E %0d\", events__payload);\n  end\n"
        "  task wait_done; begin repeat (4) @(posedge clk); while (!start__ready) @(posedge clk); #1; end endtask\n"
        "  initial begin #20000000 $display(\"TIMEOUT\"); $finish; end\n"
        "  initial begin\n    repeat (3) @(posedge clk); #1 rst = 0;\n    while (!start__ready) @(posedge clk); #1;\n"
        + "".join(f"    {step}\n" for step in steps) + "    $finish;\n  end\nendmodule\n")


def _decoded(shown: str) -> list:
    """What the bench printed: each payload's verdict and events."""
    from test_link_parts import PARAMS

    from firstspike.hw.core import event_layout

    assert "TIMEOUT" not in shown
    layout = event_layout(PARAMS)
    seen: list = []
    for line in shown.splitlines():
        kind, value = line.split()[0], int(line.split()[1])
        if kind == "V":
            seen.append((value, []))
        elif kind == "E":
            seen[-1][1].append({name: (value >> layout[name].offset) & ((1 << layout[name].width) - 1)
                                for name in ("index", "step", "end")})
    return seen


def test_the_spike_decoders_netlist_with_one_hot_states_decodes_as_the_host_does(tmp_path):
    """The board builds lay out the link's state machines one-hot (hw/synth.py), and Yosys
    then drops their initial values: they start from the reset. The spike-code decoder
    (22 states) synthesized for the iCE40 by the builds' script, simulated in Icarus with
    Yosys's cell models from a reset, gives each payload's verdict and events as the host's
    decoder does."""
    import subprocess

    from test_link_parts import MAX_PAYLOAD, PARAMS, expected

    from firstspike.hw.generate import verilog_text
    from firstspike.hw.link.spikes import SpikeCodeDecoder
    from firstspike.hw.sim.native import NETLIST_FAMILIES, _yosys_share
    from firstspike.hw.synth import _yosys, synthesis_script

    (tmp_path / "decoder.v").write_text(verilog_text(SpikeCodeDecoder(PARAMS, MAX_PAYLOAD), "decoder"))
    script = f"{synthesis_script('decoder.v', 'ice40', 'decoder')}; write_verilog -noattr netlist.v"
    subprocess.run(_yosys() + ["-q", "-l", "synth.log", "-p", script], cwd=tmp_path, check=True, capture_output=True)
    log = (tmp_path / "synth.log").read_text()
    assert "Recoding FSM" in log and "one-hot" in log
    payloads = _decoder_payloads()
    (tmp_path / "bench.v").write_text(_decoder_bench(payloads))
    cells, defines = NETLIST_FAMILIES["ice40"]
    subprocess.run(["iverilog", "-g2012", *defines, "-o", "sim.vvp", "-s", "bench", "bench.v", "netlist.v",
                    str(_yosys_share() / cells)], cwd=tmp_path, check=True, capture_output=True)
    shown = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert _decoded(shown) == [expected(payload) for payload in payloads]


def test_the_ecp5_spike_decoder_reads_its_marks_through_the_block_rams_output_register(tmp_path):
    """On the ECP5 the decoder's bit per input is a DP16KD read through its own output
    register (hw/blockram.py), a cycle later than the generic memory's read: the Verilog
    generated for the ECP5, in Icarus with our model of the block, refuses a repeated input
    and clears a refused payload's marks as the host's decoder expects."""
    from icarus_blocks import run_with_block_model
    from test_link_parts import MAX_PAYLOAD, PARAMS, expected

    from firstspike.hw.blockram import Fabric
    from firstspike.hw.generate import verilog_text
    from firstspike.hw.link.spikes import SpikeCodeDecoder

    verilog = verilog_text(SpikeCodeDecoder(PARAMS, MAX_PAYLOAD), "decoder", Fabric("ecp5"))
    assert verilog.count("DP16KD #(") == 1 and '.REGMODE_B("OUTREG")' in verilog
    payloads = _decoder_payloads()
    shown = run_with_block_model(tmp_path, "decoder", verilog, _decoder_bench(payloads))
    assert _decoded(shown) == [expected(payload) for payload in payloads]
