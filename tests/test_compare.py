"""sw/compare.py: the one definition of a device agreeing with the golden model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from firstspike.sw import CoreParams, simulate
from firstspike.sw.compare import DeviceResults, Mismatch, agreement, compare
from firstspike.sw.link.messages import Result
from firstspike.sw.synthetic import random_model, random_spike_times

LANES = 4


@pytest.fixture(scope="module")
def golden():
    rng = np.random.default_rng(2)
    model = random_model(CoreParams((12, 9, 5), 8), rng)
    return simulate(model, random_spike_times(model.params, rng, 6))


def exact_device(golden) -> DeviceResults:
    """What a device that computes everything right reports."""
    return DeviceResults(decision=golden.decision.copy(), fired=golden.fired.copy(),
                         output_times=golden.spike_times[-1].astype(np.int64), cycles=golden.cycles(LANES),
                         input_spikes=golden.spike_counts[:, 0].copy(), layer_spikes=golden.spike_counts[:, 1:].copy(),
                         error=np.zeros(golden.batch, bool),
                         spike_times=tuple(t.astype(np.int64) for t in golden.spike_times))


def test_a_device_that_reports_what_golden_computes_agrees_on_every_sample(golden):
    assert agreement(golden, exact_device(golden), LANES).all()
    assert compare(golden, exact_device(golden), LANES) is None


@pytest.mark.parametrize("field, what", [
    ("decision", "class"), ("fired", "fired flag"), ("output_times", "output spike times"),
    ("cycles", "cycles"), ("input_spikes", "input spikes"), ("layer_spikes", "spikes per layer"),
    ("error", "input error flag"),
])
def test_each_reported_field_that_differs_is_named_with_its_sample(golden, field, what):
    device = exact_device(golden)
    values = getattr(device, field).copy()
    row = values[3]
    if values.dtype == bool:
        values[3] = ~row
    else:
        values[3] = row + 1
    changed = dataclasses.replace(device, **{field: values})
    same = agreement(golden, changed, LANES)
    assert same.tolist() == [True, True, True, False, True, True]
    mismatch = compare(golden, changed, LANES)
    assert isinstance(mismatch, Mismatch) and (mismatch.sample, mismatch.what) == (3, what)
    assert str(mismatch).startswith(f"sample 3: {what} is ")


def test_a_hidden_spike_time_that_differs_names_layer_neuron_and_both_steps(golden):
    device = exact_device(golden)
    hidden = device.spike_times[0].copy()
    hidden[2, 5] = 7 if hidden[2, 5] != 7 else 6
    mismatch = compare(golden, dataclasses.replace(device, spike_times=(hidden, device.spike_times[1])), LANES)
    assert mismatch == Mismatch(2, "layer 0, neuron 5, spike time (-1 = never)", int(hidden[2, 5]),
                                int(golden.spike_times[0][2, 5]))


def test_fields_a_device_does_not_expose_are_not_compared(golden):
    device = DeviceResults(decision=golden.decision, fired=golden.fired, output_times=golden.spike_times[-1])
    assert agreement(golden, device, LANES).all()


def test_results_over_the_link_are_compared_in_every_field_they_carry(golden):
    results = [Result(int(golden.decision[i]), bool(golden.fired[i]), False, int(golden.cycles(LANES)[i]),
                      int(golden.spike_counts[i, 0]), tuple(int(c) for c in golden.spike_counts[i, 1:]),
                      golden.spike_times[-1][i].astype(np.int64), int(golden.decision_step[i]))
               for i in range(golden.batch)]
    assert compare(golden, DeviceResults.from_link(results), LANES) is None
    results[4] = dataclasses.replace(results[4], layer_spikes=(0, 0))
    mismatch = compare(golden, DeviceResults.from_link(results), LANES)
    assert mismatch is not None and (mismatch.sample, mismatch.what) == (4, "spikes per layer")


def test_a_batch_of_another_size_is_refused(golden):
    device = exact_device(golden)
    short = DeviceResults(decision=device.decision[:2], fired=device.fired[:2], output_times=device.output_times[:2])
    with pytest.raises(ValueError, match="the device reported 2 samples, the golden model ran 6"):
        agreement(golden, short, LANES)
