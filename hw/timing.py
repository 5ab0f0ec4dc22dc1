"""Why a build is as fast as it is: nextpnr's critical path, summarised for the report.

nextpnr's ``--report`` JSON lists each clock's critical path as a chain of clock-to-q,
logic, routing and setup delays between cells. A user needs less: where the path starts
and ends (as design hierarchy, e.g. ``accelerator.core.lanes``), which parts of the
design it crosses, how many logic levels it has and how its delay splits between logic
and routing. That says which stage to pipeline.
"""

from __future__ import annotations

__all__ = ["critical_path_summary"]


def _module(cell: str, depth: int = 4) -> str:
    """The design hierarchy of a cell name: its first ``depth`` dotted parts, minus the
    primitive suffix nextpnr adds (``..._SB_LUT4_O_LC``)."""
    parts = cell.split(".")
    return ".".join(parts[:min(depth, len(parts) - 1)]) or parts[0]


def critical_path_summary(pnr_report: dict) -> dict | None:
    """The slowest register-to-register critical path of a nextpnr report (the one its Fmax
    is from; a path from or to a pin, ``<async>``, only where there is none), or None if it
    lists none."""
    paths = pnr_report.get("critical_paths") or []
    clocked = [p for p in paths if "<async>" not in (p.get("from", ""), p.get("to", ""))]
    paths = clocked or paths
    if not paths:
        return None
    slowest = max(paths, key=lambda p: sum(step.get("delay", 0.0) for step in p.get("path", [])))
    steps = slowest.get("path", [])
    if not steps:
        return None
    delay = {kind: sum(s.get("delay", 0.0) for s in steps if s.get("type") == kind)
             for kind in ("clk-to-q", "logic", "routing", "setup")}
    crossed: list[str] = []
    for step in steps:
        for end in ("from", "to"):
            cell = step.get(end, {}).get("cell", "")
            # Cells that synthesis made up ($nextpnr_..., _0019_...) carry no hierarchy.
            if "." not in cell or cell[0] in "$_":
                continue
            module = _module(cell)
            if module not in crossed:
                crossed.append(module)
    return {
        "from": steps[0].get("from", {}).get("cell", ""),
        "to": steps[-1].get("to", {}).get("cell", ""),
        "modules": crossed,
        "logic_levels": sum(1 for s in steps if s.get("type") == "logic"),
        "total_ns": sum(delay.values()),
        "logic_ns": delay["logic"] + delay["clk-to-q"] + delay["setup"],
        "routing_ns": delay["routing"],
    }
