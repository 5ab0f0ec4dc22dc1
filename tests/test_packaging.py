"""Packaging: hw/ and sw/ install as firstspike.hw and firstspike.sw, with the shipped model,
and the host software never needs Amaranth."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built the way `pip install .` builds one (isolated build environment)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                   check=True, cwd=out)
    return next(out.glob("firstspike-*.whl"))


def test_wheel_maps_sw_and_hw_under_the_firstspike_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "firstspike/sw/golden.py" in names and "firstspike/hw/__init__.py" in names
    assert "firstspike/sw/models/digits.npz" in names
    # The RTL simulation (cocotb imports its testbench by module name) and the lint waivers.
    assert "firstspike/hw/sim/testbench.py" in names and "firstspike/hw/lint.vlt" in names
    tops = {name.split("/")[0] for name in names if not name.startswith("firstspike-")}
    assert tops == {"firstspike"}, f"claims generic top-level names: {tops - {'firstspike'}}"


def test_installed_copy_runs_the_golden_model_without_amaranth(tmp_path, wheel):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, cwd=tmp_path)
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0] == 'amaranth': raise ImportError('amaranth imported')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import numpy as np, firstspike.sw as fs\n"
        "from firstspike.sw.models import shipped_model_path\n"
        "m = fs.load_model(shipped_model_path('digits'))\n"
        "r = fs.simulate(m, np.zeros((2, 64), np.int16))\n"
        "print(fs.__file__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(target))
