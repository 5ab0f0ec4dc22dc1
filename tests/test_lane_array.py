"""The lane array equals the rule of docs/arithmetic.md for every input at small widths:
every potential, current, weight, threshold, initial potential, latch and lane-valid bit,
under every operation the core issues (end of step or not, add or not, fresh or not, every
step and span), compiled by Verilator from the Verilog Amaranth writes (tests/lane_sweep.py)."""

from __future__ import annotations

import lane_sweep
import pytest

from firstspike.hw import lanes
from firstspike.sw.params import CoreParams, Kernel, Schedule

pytestmark = pytest.mark.slow

#: (weight_bits, potential_bits, time_steps): 4-bit potentials over 8 steps (every span of
#: the ramp's closed form up to 8). Other widths run the same Verilog with wider adders: a
#: sweep at (3, 5, 4) passed too and is left out of CI for time.
WIDTHS = [(2, 4, 8)]


@pytest.mark.parametrize("schedule", list(Schedule), ids=lambda s: s.value)
@pytest.mark.parametrize("kernel", list(Kernel), ids=lambda k: k.value)
@pytest.mark.parametrize("weight_bits, potential_bits, time_steps", WIDTHS, ids=lambda v: str(v))
def test_every_lane_input_under_every_operation_follows_the_rule(kernel, weight_bits, potential_bits, time_steps,
                                                                 schedule, tmp_path):
    """Layered: the end of the pending step, then the weights (the first event of the next
    step carries the end of the last); stepped: the weights, then the end of this step."""
    params = CoreParams((2, 1), time_steps, kernel, weight_bits, potential_bits, schedule=schedule)
    executable = lane_sweep.build(params, tmp_path)
    checked, mismatches = lane_sweep.sweep(params, executable)
    assert checked == lane_sweep.Space.of(params).size * len(lane_sweep.operations(params))
    assert not mismatches, "\n".join(map(str, mismatches))


def test_a_threshold_compared_with_greater_than_is_caught(tmp_path, monkeypatch):
    """The sweep can fail: a lane array that fires only above the threshold."""
    monkeypatch.setattr(lanes, "reaches", lambda value, threshold, low: (value > threshold) | (threshold == low))
    params = CoreParams((2, 1), 4, Kernel.STEP, 2, 4)
    _, mismatches = lane_sweep.sweep(params, lane_sweep.build(params, tmp_path))
    assert mismatches and all(m.output in ("fire", "new_fired", "new_time", "time", "potential", "new_potential")
                              for m in mismatches)
    # the first mismatch met: a neuron exactly at its threshold that does not fire
    assert mismatches[0].output == "fire" and mismatches[0].got == 0 and mismatches[0].want == 1
