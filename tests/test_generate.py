"""`firstspike generate`: Verilog and manifest, clean under Verilator's -Wall lint, and
synthesizable by Yosys for iCE40 and ECP5 with the weights in block RAM."""

from __future__ import annotations

import json
import re

import cases
import pytest

from firstspike.hw.generate import TOP_NAME, generate
from firstspike.hw.lint import LintError, lint
from firstspike.hw.synth import synthesize
from firstspike.sw import Kernel, load_model
from firstspike.sw.cli import main
from firstspike.sw.models import shipped_model_path


def port_widths(verilog: str) -> dict[str, int]:
    """``{name: width}`` of the top module's ports, from the Verilog text."""
    top = verilog[verilog.index(f"module {TOP_NAME}("):]
    top = top[:top.index("endmodule")]
    widths = {}
    for match in re.finditer(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):0\]\s+)?(\w+);", top, re.M):
        widths[match.group(3)] = int(match.group(2) or 0) + 1
    return widths


def test_generate_writes_verilog_and_a_manifest_that_describes_its_ports(tmp_path, capsys):
    assert main(["generate", "--model", "digits", "--lanes", "8", "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    verilog = (tmp_path / f"{TOP_NAME}.v").read_text()
    model = load_model(shipped_model_path("digits"))
    assert manifest["model_sha256"] == model.digest()
    assert manifest["params"]["lanes"] == 8 and manifest["params"]["layer_sizes"] == [64, 128, 10]
    assert manifest["memories"]["weights"]["width"] == 8 * 8
    assert {"amaranth", "numpy", "python"} <= set(manifest["tools"])
    widths = port_widths(verilog)
    for name, port in manifest["ports"].items():
        if port.get("kind") in ("stream", "valid-only"):
            assert widths[f"{name}__payload"] == port["width"]
            assert f"{name}__valid" in widths
            assert (f"{name}__ready" in widths) == (port["kind"] == "stream")
        else:
            assert widths[name] == port["width"]
        for field, (offset, width) in port.get("fields", {}).items():
            assert offset + width <= port["width"], field


@pytest.mark.parametrize("lanes", [0, 257, 6400])
def test_generate_rejects_lanes_outside_the_range_with_a_message(lanes, tmp_path, capsys):
    status = main(["generate", "--lanes", str(lanes), "--out", str(tmp_path)])
    assert status == 2
    assert "--lanes must be between 1 and 256" in capsys.readouterr().err


@pytest.mark.parametrize("kernel", [Kernel.STEP, Kernel.RAMP], ids=lambda k: k.value)
@pytest.mark.parametrize("lanes", [1, 5, 16])
def test_verilog_lints_clean_with_verilator_wall(kernel, lanes, tmp_path):
    model, _ = cases.random_case(2, kernel)
    verilog, _ = generate(model, lanes, tmp_path)
    lint(verilog)


def test_lint_reports_what_verilator_finds(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input wire [3:0] a, output wire b);\n  assign b = a;\nendmodule\n")
    with pytest.raises(LintError, match="WIDTH"):
        lint(bad)


@pytest.fixture(scope="module")
def synthesis_dir(tmp_path_factory):
    """synthesize() runs Yosys inside the Verilog's folder with relative paths, since YoWASP
    tools cannot open absolute paths under /tmp."""
    return tmp_path_factory.mktemp("synth")


@pytest.mark.slow
@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_digits_core_synthesizes_with_weights_in_block_ram(family, synthesis_dir):
    model = load_model(shipped_model_path("digits"))
    verilog, _ = generate(model, 4, synthesis_dir / family)
    resources = synthesize(verilog, family)
    assert resources.luts > 100 and resources.flip_flops > 50
    # 64 x 32 rows of 4 x 8-bit weights = 64 kbit: only block RAM holds that.
    assert resources.block_rams >= 4, resources.cells
