"""The Arty build (Verilog, XDC and a Vivado script with a Yosys estimate) and `firstspike
sweep` over it: apart from tests/test_build.py's place-and-route so that the suite's two
workers share the builds."""

from __future__ import annotations

import pytest

from firstspike.sw.cli import main


@pytest.mark.slow
def test_arty_stops_at_verilog_xdc_and_a_vivado_script_with_an_estimate(small_model, tmp_path, capsys):
    out = tmp_path / "arty"
    assert main(["build", "--board", "arty", "--model", str(small_model), "--lanes", "2", "--out", str(out),
                 "--samples", "20"]) == 0
    printed = capsys.readouterr().out
    assert "vivado.tcl" in printed and "LUTs" in printed
    assert "read_xdc arty.xdc" in (out / "vivado.tcl").read_text()
    assert (out / "firstspike_board.v").exists() and (out / "arty.xdc").exists()


@pytest.mark.slow
def test_sweep_on_two_workers_writes_a_csv_row_per_build_and_a_png_and_resumes(small_model, tmp_path, capsys):
    import csv
    out = tmp_path / "sweep"
    common = ["sweep", "--boards", "arty", "--model", str(small_model), "--out", str(out), "--samples", "20"]
    assert main([*common, "--lanes", "1", "4", "--workers", "2"]) == 0
    with open(out / "sweep.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["board"], r["lanes"]) for r in rows] == [("arty", "1"), ("arty", "4")]
    assert all(int(r["luts"]) > 100 for r in rows)
    assert float(rows[0]["cycles_per_inference"]) > float(rows[1]["cycles_per_inference"])
    for r in rows:
        rate = float(r["clock_mhz"]) * 1e6 / float(r["cycles_per_inference"])
        assert float(r["inferences_per_second_at_clock"]) == pytest.approx(rate)
    assert (out / "sweep.png").read_bytes().startswith(b"\x89PNG")
    capsys.readouterr()
    (out / "arty-p4" / "report.json").unlink()  # a resumed sweep does not look at the builds again
    assert main([*common, "--lanes", "4", "1", "--workers", "1", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "arty, P=1 already in sweep.csv" in err and "arty, P=4 already in sweep.csv" in err
    assert "built" not in err and not (out / "arty-p4" / "report.json").exists()
    with open(out / "sweep.csv") as handle:
        assert [r["lanes"] for r in csv.DictReader(handle)] == ["4", "1"]


def test_a_build_that_fails_is_a_row_with_its_reason_and_each_board_runs_its_own_schedule(
        small_model, tmp_path, capsys, monkeypatch):
    """A design too big for the device stops its own build, not the sweep: its row says
    why (the tool's error line). Without --schedule each board runs its default (layered
    on the iCEBreaker, as `firstspike build` does)."""
    import csv

    from firstspike.hw import sweep as sweep_module
    from firstspike.hw.build import BuildError

    def build(board, model, p, *args, **kwargs):
        raise BuildError(f"yowasp-nextpnr failed (log: {board}-p{p}/pnr.log):\nInfo: placing\n"
                         f"ERROR: Failed to expand region of {1000 * p} ICESTORM_LCs\n0 warnings, 1 error")

    monkeypatch.setattr(sweep_module, "build_board", build)
    out = tmp_path / "sweep"
    assert main(["sweep", "--boards", "icebreaker", "arty", "--model", str(small_model), "--out", str(out),
                 "--samples", "20", "--lanes", "4", "1", "--workers", "1"]) == 0
    with open(out / "sweep.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["board"], r["lanes"], r["schedule"]) for r in rows] == [
        ("icebreaker", "4", "layered"), ("icebreaker", "1", "layered"), ("arty", "4", "stepped"), ("arty", "1", "stepped")]
    assert rows[0]["outcome"] == "failed: ERROR: Failed to expand region of 4000 ICESTORM_LCs"
    assert all(r["luts"] == "" and r["fmax_mhz"] == "" for r in rows)
    printed = capsys.readouterr()
    assert "layered: failed: ERROR: Failed to expand region of 1000 ICESTORM_LCs" in printed.out
    assert "icebreaker, P=4 failed: ERROR" in printed.err
    assert (out / "sweep.png").read_bytes().startswith(b"\x89PNG")
