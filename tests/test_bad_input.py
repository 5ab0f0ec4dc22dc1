"""Every bad input gets one line, exit status 2, and loses nothing.

One table of cases over every command: empty, garbage and truncated files, wrong shapes
and types, NaN/inf/negative numbers, output paths that are folders, missing, unwritable or
full, and interrupts. Each row runs the command in a folder of prepared files and checks
the exact line on stderr, the exit status, and that every file in the folder is as it was
(nothing half-written, no temporary file left). New commands and options join the table.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from firstspike.sw import files
from firstspike.sw.cli import main
from firstspike.sw.emulator import serve
from firstspike.sw.model import load_model
from firstspike.sw.models import shipped_model_path
from firstspike.sw.params import CoreParams
from firstspike.sw.processes import descendants
from firstspike.sw.synthetic import random_model

nir = pytest.importorskip("nir", reason="the [nir] extra is part of the test setup")

DIGITS = shipped_model_path("digits")
#: The shipped digits model's first weight, which the import row below names; 8-bit, it
#: must not fit in 4 bits for that row to mean anything.
DIGITS_W00 = int(load_model(DIGITS).layers[0].weights[0, 0])
assert not -8 <= DIGITS_W00 <= 7


@dataclass(frozen=True)
class Bad:
    """One bad input: the command line (``{d}`` is the case's folder) and the one line it must print."""

    argv: tuple[str, ...]
    line: str

    def __init__(self, line: str, *argv: str) -> None:
        object.__setattr__(self, "argv", argv)
        object.__setattr__(self, "line", line)


E = "firstspike: error: "

def run_input(name: str, said: str, *options: str) -> Bad:
    """``run`` on the prepared input file ``name``: the line names the file, then ``said``."""
    return Bad(E + "{d}/" + name + said, "run", *options, "--input", "{d}/" + name, "--output", "{d}/o.npz")


def to_a_folder(option: str, *argv: str) -> Bad:
    """A command whose output ``option`` names the prepared folder ``folder``."""
    return Bad(E + option + " {d}/folder: is a folder; give a file name", *argv, option, "{d}/folder")


CASES = {
    # -- model files (item 3, 4) ---------------------------------------------------------
    **{f"{command}: empty model file": Bad(E + "{d}/empty.npz: not a model file (it is empty)",
                                           command, "--model", "{d}/empty.npz", *extra)
       for command, extra in (("info", ()), ("eval", ()), ("cycles", ()), ("export", ("--out", "{d}/m.nir")),
                              ("generate", ("--out", "{d}/gen")), ("run", ("--input", "{d}/spikes.npy",
                                                                           "--output", "{d}/o.npz")))},
    "info: garbage model file": Bad(E + "{d}/garbage.npz: not a model file (not an .npz archive)",
                                    "info", "--model", "{d}/garbage.npz"),
    "eval: truncated model file": Bad(E + "{d}/truncated.npz: not a model file (not an .npz archive)",
                                      "eval", "--model", "{d}/truncated.npz"),
    "info: a folder as the model": Bad(E + "{d}/folder: is a folder, not a model file",
                                       "info", "--model", "{d}/folder"),
    "info: a missing model": Bad(E + "{d}/missing.npz: no such model file", "info", "--model", "{d}/missing.npz"),
    "eval: a spike array as the model": Bad(E + "{d}/spikes.npy: holds a single array, not a .npz model archive",
                                            "eval", "--model", "{d}/spikes.npy"),
    # -- input spike files (item 3, 4) -----------------------------------------------------
    "run: empty input file": run_input("empty.npy", ": not a .npy array of spike times (it is empty)"),
    "run: garbage input file": run_input("garbage.npy", ": not a .npy array of spike times (not a .npy file)"),
    "run: truncated input file": run_input("truncated.npy", ": not a .npy array of spike times (not a .npy file)"),
    "run: an archive as input": run_input("archive.npz", ": holds an archive, not one .npy array of spike times"),
    "run: an empty batch (golden)": run_input("none.npy", ": holds no samples (shape [0, 64])"),
    "run: an empty batch (rtl)": run_input("none.npy", ": holds no samples (shape [0, 64])", "--backend", "rtl"),
    "run: fractional spike times": run_input("float.npy", " must be integers (steps, or -1 for no spike), not float64"),
    "run: a 3-D input": run_input("cube.npy", " must have shape [batch, 64], not [2, 3, 64]"),
    "run: a spike after the last step": run_input(
        "late.npy", ": sample 1, input 2 spikes at 16; a spike time must be in 0..15 or -1 for no spike"),
    "run: a negative spike time": run_input(
        "negative.npy", ": sample 0, input 0 spikes at -3; a spike time must be in 0..15 or -1 for no spike"),
    "run: a missing input": run_input("missing.npy", ": no such file"),
    "run: --waves-sample past the batch": Bad(E + "--waves-sample 7: {d}/spikes.npy has only 3 samples",
                                              "run", "--backend", "rtl", "--input", "{d}/spikes.npy", "--output",
                                              "{d}/o.npz", "--waves", "{d}/w.fst", "--waves-sample", "7"),
    # -- output paths: checked before the work (items 1, 2, 8) -------------------------------
    "run: --output a folder": to_a_folder("--output", "run", "--input", "{d}/spikes.npy"),
    "run: --output under a file": Bad(E + "--output {d}/keep.txt/o.npz: {d}/keep.txt is a file, not a folder",
                                      "run", "--input", "{d}/spikes.npy", "--output", "{d}/keep.txt/o.npz"),
    "export: --out a folder": to_a_folder("--out", "export"),
    "import: --out a folder": to_a_folder("--out", "import", "{d}/digits.nir"),
    "train: --out a folder": to_a_folder("--out", "train", "--trainer", "numpy"),
    "infer: --report not a PNG": Bad(E + "--report {d}/rep.xyz: must end in .png",
                                     "infer", "--device", "emulator", "--report", "{d}/rep.xyz"),
    "infer: --report under a file": Bad(E + "--report {d}/keep.txt/rep.png: {d}/keep.txt is a file, not a folder",
                                        "infer", "--device", "emulator", "--report", "{d}/keep.txt/rep.png"),
    "eval: --waves under a file": Bad(E + "--waves {d}/keep.txt/w.fst: {d}/keep.txt is a file, not a folder",
                                      "eval", "--backend", "rtl", "--limit", "5", "--waves", "{d}/keep.txt/w.fst"),
    "eval: --waves in the other simulator's format": Bad(
        E + "--waves {d}/w.vcd: Icarus writes FST; name the file w.fst (or --simulator verilator for VCD)",
        "eval", "--backend", "rtl", "--simulator", "icarus", "--limit", "5", "--waves", "{d}/w.vcd"),
    "eval: --waves in no simulator's format": Bad(
        E + "--waves {d}/w.txt: name the file .fst (Icarus writes it) or .vcd (Verilator)",
        "eval", "--backend", "rtl", "--limit", "5", "--waves", "{d}/w.txt"),
    "eval: --board without netlist": Bad(E + "--board: only with --backend netlist", "eval", "--board", "ulx3s"),
    "eval: a netlist of a board without cell models": Bad(
        "firstspike eval: argument --board: invalid choice: 'arty' (choose from 'icebreaker', 'ulx3s')",
        "eval", "--backend", "netlist", "--board", "arty"),
    "eval: --waves without rtl": Bad(E + "--waves: only with --backend rtl", "eval", "--waves", "{d}/w.fst"),
    "cycles: --plot not a PNG": Bad(E + "--plot {d}/cycles: must end in .png", "cycles", "--plot", "{d}/cycles"),
    "cycles: --plot a folder": Bad(E + "--plot {d}/folder.png: is a folder; give a file name",
                                   "cycles", "--plot", "{d}/folder.png"),
    "generate: --out a file": Bad(E + "--out {d}/keep.txt: is a file, not a folder",
                                  "generate", "--out", "{d}/keep.txt"),
    "build: --out a file": Bad(E + "--out {d}/keep.txt: is a file, not a folder",
                               "build", "--board", "icebreaker", "--out", "{d}/keep.txt"),
    "sweep: --out a file": Bad(E + "--out {d}/keep.txt: is a file, not a folder", "sweep", "--out", "{d}/keep.txt"),
    "ablation: --out a file": Bad(E + "--out {d}/keep.txt/ablation.json: {d}/keep.txt is a file, not a folder",
                                  "ablation", "--out", "{d}/keep.txt"),
    # -- numbers (item 7) ------------------------------------------------------------------
    **{f"infer: --timeout {v}": Bad(f"firstspike infer: argument --timeout: --timeout must be {rule}, not {v}",
                                    "infer", "--device", "emulator", "--timeout", v)
       for v, rule in (("0", "> 0 and <= 3600"), ("-1", "> 0 and <= 3600"))},
    **{f"infer: --timeout {v}": Bad(f"firstspike infer: argument --timeout: --timeout must be a finite number, "
                                    f"not {v}", "infer", "--device", "emulator", "--timeout", v)
       for v in ("nan", "inf")},
    "train: --learning-rate nan": Bad("firstspike train: argument --learning-rate: --learning-rate must be a "
                                      "finite number, not nan", "train", "--learning-rate", "nan", "--out", "{d}/m.npz"),
    "train: --input-dropout 1.5": Bad("firstspike train: argument --input-dropout: --input-dropout must be >= 0 "
                                      "and < 1, not 1.5", "train", "--input-dropout", "1.5", "--out", "{d}/m.npz"),
    "train: --spike-penalty -1": Bad("firstspike train: argument --spike-penalty: --spike-penalty must be >= 0, "
                                     "not -1", "train", "--spike-penalty", "-1", "--out", "{d}/m.npz"),
    "train: numpy trainer with torch options": Bad(
        E + "--learning-rate, --input-dropout: only with --trainer torch (the numpy trainer does not use them)",
        "train", "--trainer", "numpy", "--learning-rate", "0.1", "--input-dropout", "0.5", "--out", "{d}/m.npz"),
    "train: numpy trainer with --resume": Bad(
        E + "--resume: only with --trainer torch (the numpy trainer does not use it)",
        "train", "--trainer", "numpy", "--resume", "--out", "{d}/m.npz"),
    "train: --resume from a missing checkpoint": Bad(
        E + "--checkpoint {d}/missing.pt: no such checkpoint to --resume from",
        "train", "--resume", "--checkpoint", "{d}/missing.pt", "--out", "{d}/m.npz"),
    "train: --resume from a garbage checkpoint": Bad(
        E + "{d}/garbage.pt: not a FirstSpike training checkpoint (not a PyTorch checkpoint of this trainer)",
        "train", "--resume", "--checkpoint", "{d}/garbage.pt", "--out", "{d}/m.npz", "--quiet"),
    "train: --resume from an empty checkpoint": Bad(
        E + "{d}/empty.pt: not a FirstSpike training checkpoint (it is empty)",
        "train", "--resume", "--checkpoint", "{d}/empty.pt", "--out", "{d}/m.npz", "--quiet"),
    "train: --start-from a missing checkpoint": Bad(
        E + "--start-from {d}/missing.pt: no such checkpoint or model file",
        "train", "--start-from", "{d}/missing.pt", "--out", "{d}/m.npz"),
    "train: --start-from a garbage checkpoint": Bad(
        E + "--start-from {d}/garbage.pt: not a FirstSpike training checkpoint of this network",
        "train", "--start-from", "{d}/garbage.pt", "--out", "{d}/m.npz", "--quiet"),
    "cycles: --clock-mhz -100": Bad("firstspike cycles: argument --clock-mhz: --clock-mhz must be > 0, not -100",
                                    "cycles", "--clock-mhz", "-100"),
    "cycles: --clock-mhz nan": Bad("firstspike cycles: argument --clock-mhz: --clock-mhz must be a finite number, "
                                   "not nan", "cycles", "--clock-mhz", "nan"),
    "bench: --density -1": Bad("firstspike bench: argument --density: --density must be >= 0 and <= 1, not -1",
                               "bench", "--density", "-1"),
    "bench: --density nan": Bad("firstspike bench: argument --density: --density must be a finite number, not nan",
                                "bench", "--density", "nan"),
    "import: --x-max 0": Bad("firstspike import: argument --x-max: --x-max must be > 0, not 0",
                             "import", "{d}/digits.nir", "--out", "{d}/m.npz", "--x-max", "0"),
    "import: --clip-percentile 0": Bad("firstspike import: argument --clip-percentile: --clip-percentile must be "
                                       "> 0 and <= 100, not 0",
                                       "import", "{d}/digits.nir", "--out", "{d}/m.npz", "--clip-percentile", "0"),
    "bench: a batch too big for memory": Bad(
        E + "not enough memory for this run (Unable to allocate 584. GiB for an array with shape (100000000, 784) "
            "and data type int64); try a smaller batch or --limit", "bench", "--batch", "100000000"),
    "eval: --lanes 0": Bad("firstspike eval: argument --lanes: --lanes must be between 1 and 256, not 0",
                           "eval", "--lanes", "0"),
    "eval: --lanes many": Bad("firstspike eval: argument --lanes: --lanes must be an integer, not 'many'",
                              "eval", "--lanes", "many"),
    # -- NIR graphs (item 6, 7) --------------------------------------------------------------
    "import: an all-zero layer": Bad(E + "affine -> if: every weight is 0, so no spike can reach its neurons",
                                     "import", "{d}/zero.nir", "--out", "{d}/m.npz", "--x-max", "1"),
    "import: a foreign graph without --x-max": Bad(
        E + "this graph was not written by FirstSpike, so it does not carry the input encoding's brightest value: "
            "give x_max (--x-max, or --dataset to take it from a data set)",
        "import", "{d}/foreign.nir", "--out", "{d}/m.npz"),
    "import: --x-max and --dataset": Bad(E + "--x-max and --dataset both set the encoding's brightest value: give one",
                                         "import", "{d}/digits.nir", "--out", "{d}/m.npz", "--x-max", "2",
                                         "--dataset", "digits"),
    "import: garbage graph": Bad(E + "{d}/garbage.nir: not a NIR graph (OSError: Unable to synchronously open file "
                                     "(file signature not found))",
                                 "import", "{d}/garbage.nir", "--out", "{d}/m.npz", "--x-max", "1"),
    "import: weights too wide for --weight-bits": Bad(
        E + f"weight_bits 8 -> 4: model: weights_0[0, 0] = {DIGITS_W00} is outside the 4-bit signed range [-8, 7]",
        "import", "{d}/digits.nir", "--out", "{d}/m.npz", "--weight-bits", "4"),
    # -- data sets and other choices ----------------------------------------------------------
    "eval: MNIST without --data-dir": Bad(
        E + "MNIST is not installed with FirstSpike: pass --data-dir DIR, a folder with train-images-idx3-ubyte[.gz], "
            "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]",
        "eval", "--dataset", "mnist"),
    "eval: --data-dir missing": Bad(
        E + "fashion-mnist: folder /nonexistent does not exist; install Debian's package dataset-fashion-mnist "
            "(apt-get install dataset-fashion-mnist) or pass --data-dir with the Fashion-MNIST IDX files",
        "eval", "--dataset", "fashion-mnist", "--data-dir", "/nonexistent"),
    "train: numpy trainer with the ramp kernel": Bad(
        E + "--trainer numpy trains the step kernel only; use --trainer torch for ramp",
        "train", "--trainer", "numpy", "--kernel", "ramp", "--out", "{d}/m.npz"),
    "train: an unknown initialisation": Bad("firstspike train: argument --init: invalid choice: 'xavier' (choose "
                                            "from 'default', 'ettfs')", "train", "--init", "xavier", "--out", "x.npz"),
    "import: a missing graph": Bad(E + "{d}/missing.nir: no such file",
                                   "import", "{d}/missing.nir", "--out", "{d}/m.npz", "--x-max", "1"),
    "eval: a model for another data set": Bad(
        E + "the model takes 64 inputs but fashion-mnist images have 784 pixels",
        "eval", "--dataset", "fashion-mnist"),
    "eval: an unknown backend": Bad("firstspike eval: argument --backend: invalid choice: 'fpga' (choose from "
                                    "'golden', 'netlist', 'rtl')", "eval", "--backend", "fpga"),
    "an unknown command": Bad("firstspike: argument COMMAND: invalid choice: 'frobnicate' (choose from 'eval', "
                              "'run', 'infer', 'build', 'sweep', 'program', 'generate', 'train', 'ablation', "
                              "'import', 'export', 'info', 'bench', 'cycles', 'bench-link', 'bench-rtl')", "frobnicate"),
}


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (hidden ones too) with its content's hash."""
    seen = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        seen[key] = "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def _nir_chain(weight: np.ndarray) -> object:
    n_out, n_in = weight.shape
    return nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([n_in])}), nir.Affine(weight=weight, bias=np.zeros(n_out)),
        nir.IF(r=np.ones(n_out), v_threshold=np.ones(n_out), v_reset=np.zeros(n_out)),
        nir.Output(output_type={"output": np.array([n_out])}))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The files every case may name; copied afresh for each case."""
    from firstspike.sw.nirgraph import export_nir, write_nir

    d = tmp_path_factory.mktemp("bad-input")
    rng = np.random.default_rng(16)
    model = load_model(DIGITS)
    (d / "keep.txt").write_text("a user's file that no failure may touch\n")
    (d / "empty.npz").write_bytes(b"")
    (d / "empty.npy").write_bytes(b"")
    (d / "garbage.npz").write_bytes(rng.bytes(500))
    (d / "garbage.npy").write_bytes(rng.bytes(300))
    (d / "garbage.nir").write_bytes(rng.bytes(300))
    (d / "garbage.pt").write_bytes(rng.bytes(300))
    (d / "empty.pt").write_bytes(b"")
    (d / "truncated.npz").write_bytes(DIGITS.read_bytes()[:3000])
    (d / "folder").mkdir()
    (d / "folder.png").mkdir()
    np.save(d / "spikes.npy", rng.integers(-1, 16, (3, 64)))
    (d / "truncated.npy").write_bytes((d / "spikes.npy").read_bytes()[:100])
    np.save(d / "none.npy", np.zeros((0, 64), np.int64))
    np.save(d / "float.npy", np.full((3, 64), 0.5))
    np.save(d / "cube.npy", np.zeros((2, 3, 64), np.int64))
    late = np.zeros((3, 64), np.int64)
    late[1, 2] = 16
    np.save(d / "late.npy", late)
    np.save(d / "negative.npy", np.full((2, 64), -3))
    np.savez(d / "archive.npz", a=np.zeros(3))
    write_nir(model, d / "digits.nir")
    foreign = export_nir(model)
    foreign.metadata = {}
    nir.write(d / "foreign.nir", foreign)
    nir.write(d / "zero.nir", _nir_chain(np.zeros((2, 3))))
    return d


@pytest.fixture
def workspace(template, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "w"
    shutil.copytree(template, folder)
    monkeypatch.chdir(folder)
    return folder


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_gives_its_one_line_and_status_2_and_leaves_every_file_as_it_was(case, workspace, capsys):
    before = _snapshot(workspace)
    status, out, err = run(capsys, *(a.format(d=workspace) for a in case.argv))
    assert (status, err.strip()) == (2, case.line.format(d=workspace))
    assert _snapshot(workspace) == before


# -- full and read-only output locations -------------------------------------------------------

@pytest.fixture
def full_folder(tmp_path, monkeypatch) -> Path:
    """A folder on a full file system: a real 64 KiB tmpfs filled up (as root), else writes
    through :func:`firstspike.sw.files.write_atomically` that fail as a full disk does."""
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True).returncode == 0
    if not mounted:
        real_fdopen = os.fdopen

        class Full:
            def __init__(self, handle):
                self.handle = handle

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.handle.close()

            def write(self, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def __getattr__(self, name):
                return getattr(self.handle, name)

        monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    try:
        if mounted:
            with open(folder / "filler", "wb", buffering=0) as handle, contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * 4096)
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)


def test_export_onto_a_full_disk_says_so_in_one_line_and_leaves_no_partial_file(full_folder, capsys):
    before = _snapshot(full_folder)
    status, _, err = run(capsys, "export", "--model", "fashion-mnist", "--out", str(full_folder / "f.nir"))
    assert (status, err.strip()) == (2, f"firstspike: error: {full_folder}/f.nir: could not write it "
                                        "(No space left on device)")
    assert _snapshot(full_folder) == before


def test_a_report_that_cannot_be_written_loses_none_of_the_figures_already_computed(full_folder, capsys):
    status, out, err = run(capsys, "infer", "--device", "emulator", "--limit", "3", "--quiet",
                           "--report", str(full_folder / "rep.png"))
    assert status == 2
    assert "accuracy" in out and "agreement  100.00 %" in out
    assert err.strip() == f"firstspike: error: {full_folder}/rep.png: could not write it (No space left on device)"
    assert not (full_folder / "rep.png").exists() and not list(full_folder.glob(".rep.png*"))


def test_a_report_in_a_folder_not_made_yet_is_written_there(tmp_path, capsys):
    status, out, _ = run(capsys, "infer", "--device", "emulator", "--limit", "2", "--quiet",
                         "--report", str(tmp_path / "new" / "rep.png"))
    assert status == 0 and out.strip().endswith(f"report     {tmp_path}/new/rep.png")
    assert (tmp_path / "new" / "rep.png").read_bytes().startswith(b"\x89PNG")


def test_run_onto_a_full_disk_says_so_and_leaves_no_partial_file(full_folder, tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.zeros((2, 64), np.int64))
    status, _, err = run(capsys, "run", "--input", str(tmp_path / "in.npy"), "--output", str(full_folder / "o.npz"))
    assert (status, err.strip()) == (2, f"firstspike: error: {full_folder}/o.npz: could not write it "
                                        "(No space left on device)")
    assert sorted(p.name for p in full_folder.iterdir()) == sorted(["filler"] if (full_folder / "filler").exists()
                                                                  else [])


def test_a_read_only_output_folder_is_refused_before_the_work(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=16k", "tmpfs", str(folder)], check=True)
        reason = "Read-only file system"
    else:
        folder.chmod(0o555)
        reason = "Permission denied"
    try:
        status, out, err = run(capsys, "cycles", "--plot", str(folder / "c.png"))
        assert (status, out) == (2, "")
        assert err.strip() == f"firstspike: error: --plot {folder}/c.png: cannot write in {folder} ({reason})"
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def test_a_users_own_partial_file_beside_the_output_is_left_alone(tmp_path, capsys):
    (tmp_path / "m.nir.partial").write_text("mine")
    status, _, _ = run(capsys, "export", "--out", str(tmp_path / "m.nir"))
    assert status == 0 and (tmp_path / "m.nir.partial").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nir", "m.nir.partial"]


# -- what used to go wrong after the inputs were accepted ------------------------------------------

def test_a_folder_named_like_a_shipped_model_does_not_hide_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "digits").mkdir()
    monkeypatch.chdir(tmp_path)
    status, out, _ = run(capsys, "info", "--model", "digits")
    assert status == 0 and '"layer_sizes": [\n    64,' in out


def test_run_prints_samples_per_predicted_class_not_a_bare_count_list(tmp_path, capsys):
    model = load_model(DIGITS)
    times = np.random.default_rng(1).integers(-1, 16, (12, 64))
    np.save(tmp_path / "in.npy", times)
    status, out, _ = run(capsys, "run", "--input", str(tmp_path / "in.npy"), "--output", str(tmp_path / "o.npz"))
    from firstspike.sw.golden import simulate
    classes, counts = np.unique(simulate(model, times).decision, return_counts=True)
    assert status == 0
    assert out.strip() == (f"wrote {tmp_path}/o.npz: 12 samples; samples per predicted class: "
                           + ", ".join(f"{c}: {n}" for c, n in zip(classes, counts)))


def test_cycles_plot_is_written_at_exactly_the_path_given(tmp_path, capsys):
    status, out, _ = run(capsys, "cycles", "--samples", "5", "--lanes", "4", "--plot", str(tmp_path / "c.png"))
    assert status == 0 and out.strip().endswith(f"wrote {tmp_path}/c.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png"]


def test_import_of_an_exported_graph_needs_no_x_max_and_honours_the_options_given(tmp_path, capsys):
    run(capsys, "export", "--out", str(tmp_path / "d.nir"))
    status, out, _ = run(capsys, "import", str(tmp_path / "d.nir"), "--out", str(tmp_path / "same.npz"))
    assert status == 0 and out.startswith("FirstSpike graph: integers restored exactly\n")
    assert load_model(tmp_path / "same.npz").digest() == load_model(DIGITS).digest()
    status, out, _ = run(capsys, "import", str(tmp_path / "d.nir"), "--out", str(tmp_path / "t8.npz"),
                         "--time-steps", "8", "--x-max", "4")
    changed = load_model(tmp_path / "t8.npz")
    assert status == 0 and "as given: time_steps 16 -> 8, x_max 16.0 -> 4.0" in out
    assert (changed.params.time_steps, changed.encoding.x_max) == (8, 4.0)


def test_a_device_holding_another_model_is_refused_unless_told_to_load(tmp_path, capsys):
    other = random_model(CoreParams((64, 128, 10), 16), np.random.default_rng(3))
    digits = load_model(DIGITS)
    with serve(other, 16) as server:
        status, out, err = run(capsys, "infer", "--device", server.url, "--limit", "2", "--quiet")
        assert (status, out) == (2, "")
        assert err.strip() == (f"firstspike: error: --model digits ({digits.digest()[:12]}): the device holds "
                               f"model {other.digest()[:12]}; pass --load to load it over the link")
        status, out, _ = run(capsys, "infer", "--device", server.url, "--limit", "2", "--quiet", "--load")
        assert status == 0 and "agreement  100.00 %" in out
        status, out, _ = run(capsys, "infer", "--device", server.url, "--limit", "2", "--quiet")
        assert status == 0, "after --load the device holds the model and later runs attach to it"


# -- interrupts ---------------------------------------------------------------------------------

def _start(argv: list[str], env: dict | None = None) -> subprocess.Popen:
    """``firstspike`` in a child that takes SIGINT as a terminal's Ctrl-C would be taken."""
    return subprocess.Popen([sys.executable, "-m", "firstspike.sw.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:  # ended meanwhile
        return ""


def _alive(pids: list[int]) -> list[int]:
    living = []
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat[stat.rindex(")") + 2] != "Z":
                living.append(pid)
    return living


def test_ctrl_c_during_a_long_run_ends_with_one_line_and_status_130():
    child = _start(["bench", "--batch", "50000"])
    time.sleep(2.5)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert (child.returncode, out, err) == (130, "", "firstspike: interrupted\n")


@pytest.mark.slow
def test_ctrl_c_during_a_verilator_build_leaves_no_compiler_running(tmp_path):
    child = _start(["eval", "--backend", "rtl", "--simulator", "verilator", "--limit", "1", "--lanes", "3",
                    "--quiet"], env={"FIRSTSPIKE_BUILD": str(tmp_path)})
    assert _wait_for(child, lambda pids: any("cc1plus" in _command_line(pid) for pid in pids)), \
        "the Verilator build never started a compiler"
    _interrupt_and_check(child, signal.SIGINT)


@pytest.mark.slow
def test_sigterm_during_a_run_on_dask_workers_ends_with_one_line_and_leaves_nothing_running(tmp_path):
    """The workers' shared resource tracker is left to end by itself: ended early, the
    cluster's shutdown started another, which printed a traceback per semaphore it freed."""
    child = _start(["eval", "--backend", "rtl", "--limit", "40", "--workers", "2", "--json"],
                   env={"FIRSTSPIKE_BUILD": str(tmp_path)})

    def working(pids: list[int]) -> bool:  # both workers up, one already running a simulator
        workers = [pid for pid in pids if "multiprocessing.spawn" in _command_line(pid)]
        return len(workers) == 2 and any(descendants(pid) for pid in workers)
    assert _wait_for(child, working), "the run never started its Dask workers"
    _interrupt_and_check(child, signal.SIGTERM)


def _wait_for(child: subprocess.Popen, ready, seconds: float = 120) -> bool:
    """Whether ``ready(the child's descendants)`` came true while it ran, within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and child.poll() is None:
        if ready(descendants(child.pid)):
            return True
        time.sleep(0.2)
    return False


def _interrupt_and_check(child: subprocess.Popen, number: int) -> None:
    """Signal the child: one line on stderr, nothing on stdout, status 130, no program left running."""
    watched = descendants(child.pid)
    child.send_signal(number)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130 and out == ""
    assert err.startswith("firstspike: interrupted; ended ") and err.count("\n") == 1, err
    time.sleep(0.5)
    assert _alive(watched) == []
