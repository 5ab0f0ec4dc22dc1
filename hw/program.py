"""Programming a board with a built bitstream: openFPGALoader (any of the boards) or
iceprog (iCE40). Without a tool or a board it says what to install and the exact command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from firstspike.sw.errors import FirstSpikeError

__all__ = ["program_commands", "program"]

_OPENFPGALOADER_BOARD = {"icebreaker": "ice40_generic", "ulx3s": "ulx3s", "arty": "arty_a7_35t"}


def program_commands(board: str, bitstream: str | Path) -> list[list[str]]:
    """The commands that would program ``bitstream`` into ``board``, most general first."""
    if board not in _OPENFPGALOADER_BOARD:
        raise FirstSpikeError(f"--board must be one of {', '.join(_OPENFPGALOADER_BOARD)}, not {board!r}")
    commands = [["openFPGALoader", "-b", _OPENFPGALOADER_BOARD[board], str(bitstream)]]
    if board == "icebreaker":
        commands.append(["iceprog", str(bitstream)])
    return commands


def program(board: str, bitstream: str | Path) -> str:
    """Program the board; returns what was run. Raises with instructions when it cannot."""
    bitstream = Path(bitstream)
    if not bitstream.is_file():
        raise FirstSpikeError(f"{bitstream}: no such bitstream; make one with firstspike build --board {board}")
    commands = program_commands(board, bitstream)
    for command in commands:
        if shutil.which(command[0]):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
                raise FirstSpikeError(f"{' '.join(command)} failed (is the board plugged in?):\n{tail}")
            return " ".join(command)
    how = "\n".join("  " + " ".join(command) for command in commands)
    raise FirstSpikeError("no programming tool found: install openFPGALoader (apt-get install openfpgaloader)"
                          + (" or iceprog (apt-get install fpga-icestorm)" if board == "icebreaker" else "")
                          + f", connect the board, then run:\n{how}")
