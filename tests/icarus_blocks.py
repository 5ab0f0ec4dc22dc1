"""Generated ECP5 Verilog in Icarus with our model of the DP16KD block (hw/sim/native.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from firstspike.hw.sim.native import ECP5_BLOCK_RAM, _ecp5_block_ram_model


def run_with_block_model(folder: Path, design: str, verilog: str, bench: str) -> str:
    """Compile ``bench`` (module ``bench``) with ``verilog`` (module ``design``, generated for
    the ECP5, its ``DP16KD`` instances bound to the model) and run it; what it printed."""
    (folder / f"{design}.v").write_text(re.sub(r"^(\s*)DP16KD(\s)", rf"\1{ECP5_BLOCK_RAM}\2", verilog, flags=re.M))
    (folder / "dp16kd.v").write_text(_ecp5_block_ram_model())
    (folder / "bench.v").write_text(bench)
    subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", "-s", "bench", "bench.v", f"{design}.v", "dp16kd.v"],
                   cwd=folder, check=True)
    return subprocess.run(["vvp", "-n", "sim.vvp"], cwd=folder, check=True, capture_output=True, text=True).stdout
