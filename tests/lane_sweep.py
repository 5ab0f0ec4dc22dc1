"""Every input of the lane array at small widths, through Verilator, against sw/arith.

One *vector* is one lane's inputs: the state read (potential, current, fired latch, time),
the weight, threshold and initial potential, and whether the lane holds a neuron. One
*operation* is what the sequencer asks of a whole row (end of step, add, fresh, step,
span). The sweep runs every vector under every operation the core can issue; vectors are
numbered in mixed radix (:class:`Space`) so that the Verilog testbench and NumPy walk the
same order without exchanging inputs: the testbench prints one packed word of outputs per
vector on stdout, and Python compares them as they stream, operation by operation, with
the rule of docs/arithmetic.md evaluated by :func:`firstspike.sw.arith.integrate`.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.back import verilog

from firstspike.hw.lanes import LaneArray, max_span, operation_layout, state_layout, wide_shape
from firstspike.hw.sim.runner import find_verilator, verilator_makeflags
from firstspike.sw.arith import integrate, saturate
from firstspike.sw.params import CoreParams, Kernel

LANES = 8


@dataclass(frozen=True)
class Operation:
    end_of_step: int
    add: int
    fresh: int
    step: int
    span: int


def operations(params: CoreParams) -> list[Operation]:
    """Every operation the core issues: a span of 1 ... T steps that ends by T - 1 at the
    end of a step (span 1 for the step kernel), anything else as a plain add."""
    out = []
    spans = range(1, max_span(params) + 1)
    for add in (0, 1):
        for fresh in (0, 1):
            out += [Operation(0, add, fresh, step, 0) for step in range(params.time_steps)]
            out += [Operation(1, add, fresh, step, span) for span in spans
                    for step in range(params.time_steps - span + 1)]
    return out


@dataclass(frozen=True)
class Space:
    """The per-lane inputs as mixed-radix digits, first digit least significant."""

    digits: tuple[tuple[str, int, int], ...]  # name, lowest value, count

    @classmethod
    def of(cls, params: CoreParams) -> Space:
        low, high = params.potential_range
        wide = wide_shape(params)
        wide_low, wide_high = -(1 << (wide.width - 1)), (1 << (wide.width - 1)) - 1
        step_sum = max(params.layer_sizes[:-1]) * (1 << (params.weight_bits - 1))
        # The state's wide fields hold a saturated value plus at most one step's weights.
        reach = (max(wide_low, low - step_sum), min(wide_high, high + step_sum))
        potential = reach if params.kernel is Kernel.STEP else (low, high)
        digits = [("potential", potential[0], potential[1] - potential[0] + 1)]
        if params.kernel is Kernel.RAMP:
            digits.append(("current", reach[0], reach[1] - reach[0] + 1))
        w = 1 << (params.weight_bits - 1)
        digits += [("weight", -w, 2 * w), ("threshold", low, high - low + 1), ("fired", 0, 2), ("valid", 0, 2)]
        return cls(tuple(digits))

    @property
    def size(self) -> int:
        return int(np.prod([count for _, _, count in self.digits]))

    def decode(self, index: np.ndarray) -> dict[str, np.ndarray]:
        out, rest = {}, index.astype(np.int64)
        for name, low, count in self.digits:
            out[name], rest = rest % count + low, rest // count
        return out


def initial_of(potential_index: np.ndarray, params: CoreParams) -> np.ndarray:
    """The initial potential of a vector (read only by a fresh operation): the potential
    digit wrapped into the potential range, so that fresh operations see every value."""
    low, high = params.potential_range
    return low + potential_index % (high - low + 1)


def time_of(index: np.ndarray, params: CoreParams) -> np.ndarray:
    """The latch's time read with a vector: varies with the vector, below ``T``."""
    return index % params.time_steps


# -- the rule -------------------------------------------------------------------------------------

def expected(params: CoreParams, op: Operation, v: dict[str, np.ndarray], index: np.ndarray
             ) -> dict[str, np.ndarray]:
    """What the lanes must output for ``op`` on the vectors ``v``, and which outputs the
    contract defines (``*_defined``)."""
    low, _ = params.potential_range
    ramp = params.kernel is Kernel.RAMP
    n = len(index)
    initial = initial_of(index % Space.of(params).size % Space.of(params).digits[0][2], params)
    potential = np.where(op.fresh, initial, v["potential"])
    current = np.where(op.fresh, 0, v["current"]) if ramp else np.zeros(n, np.int64)
    fired = np.where(op.fresh, 0, v["fired"])
    time = np.where(op.fresh, 0, time_of(index, params))
    threshold = v["threshold"]
    add = v["weight"] * op.add
    wide = wide_shape(params)
    wide_range = (-(1 << (wide.width - 1)), (1 << (wide.width - 1)) - 1)

    fire = np.zeros(n, bool)
    at = np.full(n, op.step, np.int64)
    if params.stepped:  # the weights first, then the end of the one step
        if ramp:
            current = current + add
        else:
            potential = potential + add
        add = np.zeros(n, np.int64)
    if op.end_of_step:
        # The ends of steps step ... step + span - 1: V(t) = sat(V + sat(I)) (ramp) or
        # sat(V) (step); the neuron's step is the first at which V(t) >= theta.
        crossed = np.zeros(n, bool)
        settled = potential.copy()
        v_now, i_now = potential, current
        for k in range(op.span if ramp else 1):
            v_now, i_now = integrate(v_now, i_now, np.zeros(n, np.int64), params)
            now = ~crossed & (v_now >= threshold)
            at = np.where(now, op.step + k, at)
            settled = np.where(crossed, settled, v_now)   # V after the span, or at the crossing
            crossed |= now
        fire = crossed & (v["valid"] == 1) & (fired == 0)
        new_potential = settled + (0 if ramp else add)
        new_current = saturate(current, params) + add if ramp else None
    else:
        settled = potential  # not defined without an end of step
        new_potential = potential + (0 if ramp else add)
        new_current = current + add if ramp else None
    out = {
        "fire": fire.astype(np.int64),
        "time": at, "time_defined": fire,
        "potential": settled, "potential_defined": np.full(n, bool(op.end_of_step)),
        "new_potential": new_potential,
        "new_fired": (fired | fire).astype(np.int64),
        "new_time": np.where(fire, at, time),
    }
    # A sum outside the wide field's range is a state the core cannot reach (at most one
    # step's weights are added to a saturated value): not part of the contract.
    in_contract = (new_potential >= wide_range[0]) & (new_potential <= wide_range[1])
    if ramp:
        out["new_current"] = new_current
        in_contract = (new_current >= wide_range[0]) & (new_current <= wide_range[1])
    out["new_state_defined"] = in_contract
    assert low <= settled.min(initial=low) or not op.end_of_step
    return out


# -- the testbench --------------------------------------------------------------------------------

def _fields(params: CoreParams) -> list[tuple[str, int, bool]]:
    """The packed output word, least significant field first: name, width, signed."""
    state = state_layout(params)
    fields = [("fire", 1, False), ("time", params.time_bits, False), ("potential", params.potential_bits, True)]
    for name, kind in (("potential", True), ("fired", False), ("time", False), ("current", True)):
        if name in state.members:
            fields.append((f"new_{name}", state[name].shape.width, kind))
    return fields


def testbench(params: CoreParams, lanes: int) -> str:
    space, ops = Space.of(params), operations(params)
    layout, state = operation_layout(params), state_layout(params)
    tb, pb, wb = params.time_bits, params.potential_bits, params.weight_bits
    lines = ["module lane_sweep;",
             f"  reg [{layout.size - 1}:0] ops [0:{len(ops) - 1}];",
             f"  reg [{layout.size - 1}:0] op;", f"  reg [{lanes - 1}:0] valid;",
             "  integer base, index, rest, digit;"]
    lines += [f"  reg [{wb - 1}:0] w{k}; reg [{pb - 1}:0] th{k}, b{k}; reg [{state.size - 1}:0] s{k};"
              for k in range(lanes)]
    lines += [f"  wire [{pb - 1}:0] p{k}; wire [{tb - 1}:0] t{k}; wire [{state.size - 1}:0] n{k};"
              for k in range(lanes)]
    lines += [f"  wire [{lanes - 1}:0] fire;", "  lanes dut(.op(op), .lanes_valid(valid), .fire(fire)"
              + "".join(f", .weights__{k}(w{k}), .thresholds__{k}(th{k}), .initial__{k}(b{k}), "
                        f".state_in__{k}(s{k}), .state_out__{k}(n{k}), .time__{k}(t{k}), .potential__{k}(p{k})"
                        for k in range(lanes)) + ");"]
    lines += ["  initial begin"]
    for i, op in enumerate(ops):
        value = 0
        for name in ("end_of_step", "add", "fresh", "step", "span"):
            value |= getattr(op, name) << layout[name].offset
        lines.append(f"    ops[{i}] = {layout.size}'d{value};")
    total = space.size * len(ops)
    lines += [f"    for (base = 0; base < {total}; base = base + {lanes}) begin",
              f"      op = ops[base / {space.size}];"]
    first_count = space.digits[0][2]
    for k in range(lanes):
        lines += [f"      index = base + {k}; rest = index % {space.size};",
                  f"      b{k} = {params.potential_range[0]} + (rest % {first_count}) % "
                  f"{params.potential_range[1] - params.potential_range[0] + 1};"]
        state_parts = {}
        for name, low, count in space.digits:
            lines.append(f"      digit = {low} + rest % {count}; rest = rest / {count};")
            if name == "weight":
                lines.append(f"      w{k} = digit;")
            elif name == "threshold":
                lines.append(f"      th{k} = digit;")
            elif name == "valid":
                lines.append(f"      valid[{k}] = digit;")
            else:
                lines.append(f"      s{k}[{state[name].offset + state[name].shape.width - 1}:"
                             f"{state[name].offset}] = digit;")
                state_parts[name] = True
        lines.append(f"      s{k}[{state['time'].offset + tb - 1}:{state['time'].offset}] = "
                     f"index % {params.time_steps};")
    lines.append("      #1;")
    for k in range(lanes):
        parts = {"fire": f"fire[{k}]", "time": f"t{k}", "potential": f"p{k}"}
        for name in ("potential", "fired", "time", "current"):
            if name in state.members:
                parts[f"new_{name}"] = f"n{k}[{state[name].offset + state[name].shape.width - 1}:{state[name].offset}]"
        packed = ", ".join(parts[name] for name, _, _ in reversed(_fields(params)))
        lines.append(f'      $write("%x\\n", {{{packed}}});')
    lines += ["    end", "    $finish;", "  end", "endmodule", ""]
    return "\n".join(lines)


def build(params: CoreParams, folder: Path, component: type[LaneArray] = LaneArray, lanes: int = LANES) -> Path:
    params = params.with_lanes(lanes)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lanes.v").write_text(verilog.convert(component(params), name="lanes"))
    (folder / "lane_sweep.v").write_text(testbench(params, lanes))
    command = [str(find_verilator()), "--binary", "--timing", "-O3", "-Wno-fatal", "-Wno-lint", "-Wno-style",
               "--top-module", "lane_sweep", "-Mdir", "obj", "-CFLAGS", "-std=c++20", "lane_sweep.v", "lanes.v"]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True,
                          env={**os.environ, "MAKEFLAGS": verilator_makeflags("-O2")})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return folder / "obj" / "Vlane_sweep"


@dataclass
class Mismatch:
    operation: Operation
    vector: dict[str, int]
    output: str
    got: int
    want: int

    def __str__(self) -> str:
        return f"{self.operation}, lane inputs {self.vector}: {self.output} is {self.got}, the rule says {self.want}"


def sweep(params: CoreParams, executable: Path) -> tuple[int, list[Mismatch]]:
    """Run the sweep; returns the vectors checked and the first mismatches (at most 10)."""
    space, ops, fields = Space.of(params), operations(params), _fields(params)
    chars = (sum(width for _, width, _ in fields) + 3) // 4 + 1
    process = subprocess.Popen([str(executable)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    mismatches: list[Mismatch] = []
    checked = 0
    try:
        for number, op in enumerate(ops):
            raw = process.stdout.read(space.size * chars)
            assert len(raw) == space.size * chars, f"the testbench stopped at operation {number} of {len(ops)}"
            got = _unpack(np.frombuffer(raw, np.uint8).reshape(space.size, chars)[:, :-1], fields)
            index = np.arange(number * space.size, (number + 1) * space.size)
            vectors = space.decode(index % space.size)
            want = expected(params, op, vectors, index)
            checked += space.size
            for name, _, _ in fields:
                defined = want.get(f"{name}_defined", want["new_state_defined"] if name.startswith("new_")
                                   else np.ones(space.size, bool))
                wrong = np.flatnonzero(defined & (got[name] != want[name]))
                for i in wrong[: 10 - len(mismatches)]:
                    mismatches.append(Mismatch(op, {k: int(a[i]) for k, a in vectors.items()}, name,
                                               int(got[name][i]), int(want[name][i])))
    finally:
        process.kill()
        process.wait()
    return checked, mismatches


def _unpack(hex_digits: np.ndarray, fields: list[tuple[str, int, bool]]) -> dict[str, np.ndarray]:
    values = np.where(hex_digits >= ord("a"), hex_digits - ord("a") + 10, hex_digits - ord("0")).astype(np.int64)
    word = np.zeros(len(values), np.int64)
    for column in range(values.shape[1]):
        word = word << 4 | values[:, column]
    out, shift = {}, 0
    for name, width, signed in fields:
        value = (word >> shift) & ((1 << width) - 1)
        if signed:
            value = np.where(value >> (width - 1) & 1, value - (1 << width), value)
        out[name], shift = value, shift + width
    return out


def vectors_per_run(params: CoreParams) -> int:
    return Space.of(params).size * len(operations(params))
