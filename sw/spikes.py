"""Checks on arrays of spike times, shared by the golden model, the CLI and the driver."""

from __future__ import annotations

import numpy as np

from .arith import NO_SPIKE
from .errors import SpikeInputError
from .params import CoreParams

__all__ = ["check_spike_times"]


def check_spike_times(spike_times: object, params: CoreParams, what: str = "input spike times") -> np.ndarray:
    """Validate ``[batch, n_in]`` spike times and return them as ``int16``.

    Every entry must be an integer step ``0 ... T-1`` or :data:`NO_SPIKE` (-1).
    The error names the first offending sample and neuron.
    """
    array = np.asarray(spike_times)
    given_shape = list(array.shape)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and array.size and np.all(np.isfinite(array)) \
                and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise SpikeInputError(f"{what} must be integers (steps, or {NO_SPIKE} for no spike), not {array.dtype}")
    if array.ndim == 1:
        array = array[None, :]
    n_in = params.n_inputs
    if array.ndim != 2 or array.shape[1] != n_in:
        raise SpikeInputError(f"{what} must have shape [batch, {n_in}], not {given_shape}")
    bad = (array != NO_SPIKE) & ((array < 0) | (array >= params.time_steps))
    if bad.any():
        sample, neuron = (int(i) for i in np.argwhere(bad)[0])
        raise SpikeInputError(
            f"{what}: sample {sample}, input {neuron} spikes at {int(array[sample, neuron])}; "
            f"a spike time must be in 0..{params.time_steps - 1} or {NO_SPIKE} for no spike"
        )
    return array.astype(np.int16)
