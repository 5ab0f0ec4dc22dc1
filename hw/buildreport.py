"""What a board build measured: typed, written as report.json, and rendered as text."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .synth import Resources

__all__ = ["PlaceAndRoute", "Throughput", "Aim", "BuildReport"]


@dataclass(frozen=True)
class PlaceAndRoute:
    fmax_mhz: float
    meets_clock: bool
    critical_path: dict | None          # hw/timing.py's summary of nextpnr's longest path
    utilisation: dict[str, dict[str, int]]  # cell kind -> {"used", "available"}
    seed: int | None = None             # nextpnr's --seed of this result (None: its default)
    seeds_fmax_mhz: dict[int, float] | None = None  # with --seeds: each seed's Fmax


@dataclass(frozen=True)
class Throughput:
    cycles_per_inference: float
    inferences_per_second_at_clock: float   # at the clock the core runs on (clock_hz)
    inferences_per_second_at_fmax: float | None
    bytes_per_inference: float
    link_bound_inferences_per_second: float


@dataclass(frozen=True)
class Aim:
    """One of the board's aims (docs/boards.md) against what the build reached."""

    figure: str
    aim: float
    reached: float
    met: bool
    fraction_of_aim: float


@dataclass(frozen=True)
class BuildReport:
    board: str
    family: str
    clock_hz: int                       # the core's clock: the PLL's output (or the oscillator)
    oscillator_hz: int
    pll: dict | None                    # hw/pll.py's settings, reached and VCO frequencies
    baud: int
    model_sha256: str
    layer_sizes: list[int]
    lanes: int
    synthesis: Resources
    tools: dict[str, str]
    place_and_route: PlaceAndRoute | None = None
    bitstream: str | None = None
    vivado_script: str | None = None
    throughput: Throughput | None = None
    targets: list[Aim] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        """report.json: every figure by name (the synthesis without its family, said above it)."""
        out = asdict(self)
        out["synthesis"] = {k: v for k, v in self.synthesis.as_dict().items() if k != "family"}
        return out

    def lines(self, report_path: str) -> list[str]:
        """The build as ``firstspike build`` prints it."""
        s, t, pnr = self.synthesis, self.throughput, self.place_and_route
        clock = (f"{self.clock_hz / 1e6:.4g} MHz from the {self.oscillator_hz / 1e6:g} MHz oscillator by "
                 f"{self.pll['primitive']}" if self.pll else f"{self.clock_hz / 1e6:g} MHz")
        lines = [f"board      {self.board} ({self.family}, {clock}), "
                 f"{'-'.join(map(str, self.layer_sizes))}, P={self.lanes}, model sha256 {self.model_sha256[:12]}",
                 f"synthesis  {s.luts:,} LUTs, {s.flip_flops:,} flip-flops, {s.block_rams} block RAMs, {s.dsps} DSPs"]
        if pnr is not None:
            use = ", ".join(f"{kind} {u['used']}/{u['available']}" for kind, u in pnr.utilisation.items())
            lines += [f"placed     {use}",
                      f"Fmax       {pnr.fmax_mhz:.1f} MHz ({'meets' if pnr.meets_clock else 'MISSES'} the core's "
                      f"{self.clock_hz / 1e6:.4g} MHz"
                      + ("" if pnr.meets_clock else f": rebuild with --clock {0.95 * pnr.fmax_mhz:.0f} or lower")
                      + ")"]
            if pnr.seeds_fmax_mhz:
                lines.append(f"seeds      {len(pnr.seeds_fmax_mhz)} placements, kept seed {pnr.seed}: "
                             + ", ".join(f"{seed}: {mhz:.1f}" for seed, mhz in pnr.seeds_fmax_mhz.items()) + " MHz")
            path = pnr.critical_path
            if path:
                lines.append(f"critical   {path['total_ns']:.1f} ns through {' -> '.join(path['modules'])}: "
                             f"{path['logic_levels']} logic levels, {path['logic_ns']:.1f} ns logic + "
                             f"{path['routing_ns']:.1f} ns routing")
            lines.append(f"bitstream  {self.bitstream}")
        else:
            lines.append(f"Vivado     {self.vivado_script} (no open place-and-route for this family)")
        if t is not None:
            at_fmax = t.inferences_per_second_at_fmax
            lines.append(f"speed      {t.cycles_per_inference:,.1f} cycles/inference: "
                         f"{t.inferences_per_second_at_clock:,.0f} inferences/s at {self.clock_hz / 1e6:.4g} MHz"
                         + (f", {at_fmax:,.0f} at Fmax" if at_fmax else "")
                         + f"; the link at {self.baud:,} baud carries {t.link_bound_inferences_per_second:,.0f}/s "
                         f"({t.bytes_per_inference:.1f} bytes each)")
        for target in self.targets:
            lines.append(f"aim        {target.figure}: {target.reached:,.1f} vs {target.aim:,.0f}: "
                         + ("met" if target.met else f"MISSED, {100 * target.fraction_of_aim:.0f} % of the aim"))
        lines.append(f"report     {report_path}")
        return lines
