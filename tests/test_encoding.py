"""TTFS encoding: brighter is earlier, zero never spikes, bad intensities are named."""

import numpy as np
import pytest

from firstspike.sw import NO_SPIKE, LatencyEncoding, SpikeInputError


def test_brightest_spikes_first_and_faintest_last():
    times = LatencyEncoding(16).encode(np.array([16, 8, 1, 0]), 17)
    assert times.tolist() == [0, 8, 15, NO_SPIKE]


def test_brighter_is_never_later():
    x = np.arange(256)
    times = LatencyEncoding(255).encode(x, 32)
    assert times[0] == NO_SPIKE
    assert np.all(np.diff(times[1:].astype(int)) <= 0)
    assert times[1:].min() == 0 and times[1:].max() == 31


def test_rounds_half_up_in_integer_steps():
    # (4 - 1) * 3 / 4 = 2.25 -> 2 ; (4 - 2) * 3 / 4 = 1.5 -> 2 ; (4 - 3) * 3 / 4 = 0.75 -> 1
    assert LatencyEncoding(4).encode(np.array([1, 2, 3, 4]), 4).tolist() == [2, 2, 1, 0]


def test_single_step_window_puts_every_spike_at_zero():
    assert LatencyEncoding(1.0).encode(np.array([0.0, 0.1, 1.0]), 1).tolist() == [NO_SPIKE, 0, 0]


def test_shape_and_dtype_are_kept():
    times = LatencyEncoding(255).encode(np.zeros((3, 784), np.uint8) + 200, 32)
    assert times.shape == (3, 784) and times.dtype == np.int16


@pytest.mark.parametrize("bad", [17, -1, np.nan])
def test_out_of_range_intensity_is_named(bad):
    with pytest.raises(SpikeInputError) as error:
        LatencyEncoding(16).encode(np.array([[3.0, 2.0], [1.0, bad]]), 8)
    assert str(error.value) == f"intensity at index (1, 1) is {float(bad)!r}; it must lie in [0, 16]"


def test_bad_encoding_parameters_are_refused():
    with pytest.raises(ValueError, match="x_max must be a positive finite number, not 0"):
        LatencyEncoding(0)
    with pytest.raises(ValueError, match="encoding kind must be 'linear-latency'"):
        LatencyEncoding(1.0, kind="rate")
