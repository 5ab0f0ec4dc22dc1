"""Board builds with the open toolchain: a small network to bitstreams for iCE40 and ECP5,
the Arty's Vivado hand-off, and the constraint files against amaranth-boards' pins."""

from __future__ import annotations

import json
import re

import pytest
from amaranth_boards.arty_a7 import ArtyA7_35Platform
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from firstspike.hw.board import PIN_PORTS
from firstspike.sw.cli import main

ROOT_PINS = {  # board: (platform, constraint file, pattern that finds a port's pin)
    "icebreaker": (ICEBreakerPlatform, "icebreaker.pcf", r"set_io {port} (\S+)"),
    "ulx3s": (ULX3S_85F_Platform, "ulx3s.lpf", r'LOCATE COMP "{port}" SITE "(\S+)"'),
    "arty": (ArtyA7_35Platform, "arty.xdc", r"PACKAGE_PIN (\S+)\s+IOSTANDARD \S+ \}} \[get_ports {port}\]"),
}


@pytest.mark.parametrize("board", sorted(ROOT_PINS))
def test_constraint_files_place_the_board_tops_ports_on_amaranth_boards_pins(board):
    from importlib import resources
    platform_class, name, pattern = ROOT_PINS[board]
    platform = platform_class()
    text = (resources.files("firstspike.constraints") / name).read_text()
    pins = {"clk": platform.resources[(platform.default_clk, 0)],
            "rx": platform.resources[("uart", 0)], "tx": platform.resources[("uart", 0)],
            "led": platform.resources[("led", 0)]}
    assert set(PIN_PORTS) == set(pins)
    for port, resource in pins.items():
        found = re.search(pattern.format(port=port), text)
        assert found, f"{name} does not place {port}"
        if port in ("rx", "tx"):
            subsignal = next(s for s in resource.ios if s.name == port)
            expected = subsignal.ios[0].names[0]
        else:
            expected = resource.ios[0].names[0]
        assert found.group(1) == expected, f"{name}: {port} on {found.group(1)}, amaranth-boards says {expected}"


@pytest.mark.slow
@pytest.mark.parametrize("board, bitstream", [("icebreaker", "firstspike_board.bin"),
                                              ("ulx3s", "firstspike_board.bit")])
def test_a_small_network_builds_to_a_bitstream_with_a_report(board, bitstream, small_model, tmp_path, capsys):
    out = tmp_path / board
    status = main(["build", "--board", board, "--model", str(small_model), "--lanes", "2", "--out", str(out),
                   "--samples", "20", "--json"])
    assert status == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert (out / bitstream).stat().st_size > 10_000
    assert report["place_and_route"]["fmax_mhz"] > 0 and report["place_and_route"]["meets_clock"]
    assert report["synthesis"]["luts"] > 100 and report["synthesis"]["block_rams"] >= 1
    assert report["throughput"]["cycles_per_inference"] > 0
    # the core runs from the PLL at the board's default clock, the link at 3,000,000 baud
    pll = report["pll"]
    assert pll["primitive"] == {"icebreaker": "SB_PLL40_PAD", "ulx3s": "EHXPLLL"}[board]
    assert report["clock_hz"] == round(pll["output_mhz"] * 1e6) and report["baud"] == 3_000_000
    assert report["throughput"]["inferences_per_second_at_clock"] == pytest.approx(
        report["clock_hz"] / report["throughput"]["cycles_per_inference"])
    assert json.loads((out / "report.json").read_text())["model_sha256"] == report["model_sha256"]
    path = report["place_and_route"]["critical_path"]
    assert path["logic_levels"] >= 1 and path["modules"]
    assert abs(path["logic_ns"] + path["routing_ns"] - path["total_ns"]) < 1e-6
    assert 1e3 / path["total_ns"] == pytest.approx(report["place_and_route"]["fmax_mhz"], rel=0.05)
    fmax_aim = next(t for t in report["targets"] if t["figure"] == "fmax_mhz")
    assert fmax_aim["met"] == (report["place_and_route"]["fmax_mhz"] >= fmax_aim["aim"])


def test_program_without_a_tool_says_what_to_install_and_the_exact_command(tmp_path, capsys, monkeypatch):
    bitstream = tmp_path / "firstspike_board.bin"
    bitstream.write_bytes(b"\x00" * 16)
    monkeypatch.setenv("PATH", str(tmp_path))  # no openFPGALoader, no iceprog
    assert main(["program", "--board", "icebreaker", "--bitstream", str(bitstream)]) == 2
    err = capsys.readouterr().err
    assert "install openFPGALoader" in err and f"iceprog {bitstream}" in err
    assert f"openFPGALoader -b ice40_generic {bitstream}" in err


def test_program_names_a_missing_bitstream(tmp_path, capsys):
    assert main(["program", "--board", "ulx3s", "--bitstream", str(tmp_path / "none.bit")]) == 2
    assert "no such bitstream" in capsys.readouterr().err


def _fake_nextpnr(tmp_path, lines: list[str], status: int = 0):
    import sys
    script = tmp_path / "fake_nextpnr.py"
    script.write_text("import sys, time\n"
                      f"for line in {lines!r}:\n    print(line, flush=True)\n    time.sleep(0.25)\n"
                      f"sys.exit({status})\n")
    return [sys.executable, str(script)]


def test_place_and_route_reports_each_phase_as_it_begins_and_its_latest_line_while_it_lasts(tmp_path):
    from firstspike.hw.build import _run
    lines = ["Info: Packing IOs..", "Info: Running main analytical placer, max placement attempts per cell = 9.",
             "Info:     at iteration #1, type ALL: wirelen solved = 86017",
             "Info:     at iteration #2, type ALL: wirelen solved = 91252",
             "Info:     at iteration #3, type ALL: wirelen solved = 95572",
             "Info: Routing..", "Info: Routing 16135 arcs.", "Info: Program finished normally."]
    said: list[str] = []
    _run(_fake_nextpnr(tmp_path, lines), tmp_path, "pnr.log", said.append, every=0.3)
    assert (tmp_path / "pnr.log").read_text().splitlines() == lines
    phases = [line for line in said if " min)" in line]
    assert [line.split(": ")[-1].split(" (")[0] for line in phases] == ["packing", "placing", "routing"]
    assert any(line.startswith("build: nextpnr: placing, ") and "at iteration #" in line for line in said)


def test_seeds_place_each_in_its_own_folder_and_the_fastest_placement_is_kept(tmp_path):
    """--seeds: every seed's run sees the netlist and constraints in its own folder, and the
    fastest seed's log, report and routed design become the build's (ties: the lower seed);
    an iCE40 seed without a legal placement is tried again as a single build is."""
    import sys

    from firstspike.hw.build import _place_with_seeds
    script = tmp_path / "fake_nextpnr.py"
    script.write_text(
        "import json, pathlib, sys\n"
        "seed = int(sys.argv[sys.argv.index('--seed') + 1])\n"
        "if seed == 3 and '--no-promote-ce' not in sys.argv:\n"
        "    print('ERROR: Unable to find legal placement for all cells'); sys.exit(1)\n"
        "assert pathlib.Path('net.json').read_text() == 'netlist' and pathlib.Path('board.lpf').exists()\n"
        "mhz = {1: 90.5, 2: 101.25, 3: 97.0, 4: 101.25}[seed]\n"
        "pathlib.Path('pnr-report.json').write_text(json.dumps({'fmax': {'clk': {'achieved': mhz}}}))\n"
        "pathlib.Path('routed.config').write_text(f'routed by {seed}')\n"
        "print(f'seed {seed}')\n")
    (tmp_path / "net.json").write_text("netlist")
    (tmp_path / "board.lpf").write_text("")
    said: list[str] = []
    seed, by_seed = _place_with_seeds([sys.executable, str(script)], tmp_path, "ice40", ["net.json", "board.lpf"],
                                      "routed.config", 4, workers=1, scheduler=None, progress=said.append)
    assert (seed, by_seed) == (2, {1: 90.5, 2: 101.25, 3: 97.0, 4: 101.25})
    assert (tmp_path / "routed.config").read_text() == "routed by 2"
    assert (tmp_path / "pnr.log").read_text().strip() == "seed 2"
    assert len([line for line in said if line.startswith("build: nextpnr seed ")]) == 4
    assert "Unable to find legal placement" in (tmp_path / "seed-3" / "pnr-promoted-ce.log").read_text()


def test_an_ice40_placement_that_cannot_be_legalised_is_tried_again_without_enables_on_globals(tmp_path):
    import sys

    from firstspike.hw.build import BuildError, _place
    script = tmp_path / "fake_nextpnr.py"
    script.write_text("import sys\n"
                      "if '--no-promote-ce' in sys.argv:\n    print('Info: placed'); sys.exit(0)\n"
                      "print('ERROR: Unable to find legal placement for all cells'); sys.exit(1)\n")
    said: list[str] = []
    _place([sys.executable, str(script)], tmp_path, "ice40", said.append)
    assert (tmp_path / "pnr.log").read_text().strip() == "Info: placed"
    assert "Unable to find legal placement" in (tmp_path / "pnr-promoted-ce.log").read_text()
    assert any("--no-promote-ce" in line for line in said)
    with pytest.raises(BuildError):  # the ECP5's flow has no such retry
        _place([sys.executable, str(script)], tmp_path, "ecp5", said.append)


def test_the_reported_critical_path_is_the_register_path_fmax_comes_from_not_a_pins_path():
    from firstspike.hw.timing import critical_path_summary

    def path(source: str, sink: str, delays: list[tuple[str, float]]) -> dict:
        return {"from": source, "to": sink, "path": [
            {"type": kind, "delay": delay, "from": {"cell": f"top.core.a{k}"}, "to": {"cell": f"top.core.b{k}"}}
            for k, (kind, delay) in enumerate(delays)]}
    clocked = path("posedge clk", "posedge clk", [("clk-to-q", 0.5), ("routing", 6.0), ("logic", 0.2), ("setup", 0.0)])
    to_pin = path("posedge clk", "<async>", [("clk-to-q", 0.5), ("routing", 9.9), ("logic", 0.3)])
    summary = critical_path_summary({"critical_paths": [to_pin, clocked]})
    assert summary is not None and summary["total_ns"] == pytest.approx(6.7) and summary["logic_levels"] == 1
    only_pins = critical_path_summary({"critical_paths": [to_pin]})
    assert only_pins is not None and only_pins["total_ns"] == pytest.approx(10.7)


def test_a_failing_place_and_route_names_its_log_and_shows_its_last_lines(tmp_path):
    from firstspike.hw.build import BuildError, _run
    with pytest.raises(BuildError) as failed:
        _run(_fake_nextpnr(tmp_path, ["Info: Packing IOs..", "ERROR: Unable to place cell 'x'"], status=1),
             tmp_path, "pnr.log", [].append)
    assert f"failed (log: {tmp_path / 'pnr.log'})" in str(failed.value)
    assert str(failed.value).endswith("ERROR: Unable to place cell 'x'")


def test_a_rate_at_the_clock_is_not_met_by_a_design_that_misses_that_clock():
    from firstspike.hw.build import BOARDS, _targets
    from firstspike.hw.buildreport import PlaceAndRoute, Throughput
    rate = Throughput(950.0, 42_000.0, 33_700.0, 372.9, 805.0)
    for closes, met in ((False, False), (True, True)):
        pnr = PlaceAndRoute(32.2 if not closes else 41.0, closes, None, {})
        aims = {aim.figure: aim for aim in _targets(BOARDS["ulx3s"], pnr, rate)}
        assert aims["inferences_per_second_at_clock"].met is met
        assert aims["inferences_per_second_at_clock"].reached == 42_000.0
        assert not aims["fmax_mhz"].met


def test_the_ulx3s_routes_arrays_of_64_lanes_and_more_with_router2_and_narrower_ones_with_router1():
    """router1 does not converge at P = 128; router2 diverged at P = 32 where router1 routes."""
    from firstspike.hw.build import BOARDS
    ulx3s, icebreaker = BOARDS["ulx3s"], BOARDS["icebreaker"]
    assert "--router" not in ulx3s.nextpnr_arguments(32)
    assert ulx3s.nextpnr_arguments(64)[-2:] == ulx3s.nextpnr_arguments(128)[-2:] == ("--router", "router2")
    assert ulx3s.nextpnr_arguments(32)[:3] == ("--85k", "--package", "CABGA381")
    assert icebreaker.nextpnr_arguments(256) == icebreaker.nextpnr


def test_build_help_gives_each_boards_default_clock_as_the_build_uses_it(capsys):
    from firstspike.hw.build import BOARDS
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, label in (("icebreaker", "iCEBreaker"), ("ulx3s", "ULX3S"), ("arty", "Arty")):
        assert f"{label} {BOARDS[name].default_clock_hz / 1e6:g}" in text
