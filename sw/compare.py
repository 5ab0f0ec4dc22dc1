"""Comparing what a device reported with the golden model: the one definition of "agrees".

A device (the RTL in a simulator, a board or the emulator over the link, the training's
integer forward pass) reports some of what the golden model computes. Its results are
brought to one form, :class:`DeviceResults`, whose fields are ``None`` where the device
does not expose them; :func:`agreement` and :func:`compare` check every field it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .golden import GoldenResult
from .link.messages import Result

__all__ = ["DeviceResults", "Mismatch", "agreement", "compare"]


@dataclass(frozen=True)
class DeviceResults:
    """A batch of results as a device reported them; ``None``: not exposed by that device."""

    decision: np.ndarray                        # int [batch]
    fired: np.ndarray                           # bool [batch]
    output_times: np.ndarray                    # int [batch, n_out], -1 = did not fire
    decision_step: np.ndarray | None = None     # int [batch]
    cycles: np.ndarray | None = None            # int [batch], measured
    input_spikes: np.ndarray | None = None      # int [batch]
    layer_spikes: np.ndarray | None = None      # int [batch, L]
    error: np.ndarray | None = None             # bool [batch]: the device refused the input
    spike_times: tuple[np.ndarray, ...] | None = None  # every layer's spike times (the RTL's trace port)

    @property
    def batch(self) -> int:
        return len(self.decision)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], n_layers: int) -> DeviceResults:
        """From the RTL testbench's arrays (``decision``, ..., ``spike_times_K``)."""
        return cls(decision=arrays["decision"], fired=arrays["fired"].astype(bool),
                   decision_step=arrays.get("decision_step"),
                   output_times=arrays["output_times"], cycles=arrays["cycles"],
                   input_spikes=arrays["input_spikes"], layer_spikes=arrays["layer_spikes"],
                   error=arrays["error"].astype(bool),
                   spike_times=tuple(arrays[f"spike_times_{k}"] for k in range(n_layers)))

    @classmethod
    def from_link(cls, results: Sequence[Result]) -> DeviceResults:
        """From the results a device sent over the link (no hidden spike times)."""
        return cls(decision=np.array([r.decision for r in results], np.int64),
                   decision_step=np.array([r.decision_step for r in results], np.int64),
                   fired=np.array([r.fired for r in results], bool),
                   output_times=np.array([r.output_times for r in results], np.int64),
                   cycles=np.array([r.cycles for r in results], np.int64),
                   input_spikes=np.array([r.input_spikes for r in results], np.int64),
                   layer_spikes=np.array([r.layer_spikes for r in results], np.int64),
                   error=np.array([r.input_error for r in results], bool))


@dataclass(frozen=True)
class Mismatch:
    """The first thing a device reported that differs from the golden model."""

    sample: int
    what: str        # e.g. "layer 1, neuron 7, spike time" or "cycles"
    device: object
    golden: object

    def __str__(self) -> str:
        return f"sample {self.sample}: {self.what} is {self.device} on the device, {self.golden} in the golden model"


def _fields(golden: GoldenResult, device: DeviceResults, lanes: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, device values, golden values) for everything the device exposes, in the order a
    reader would look: each layer's spikes from the first, then the result's fields."""
    fields = []
    if device.spike_times is not None:
        for k, want in enumerate(golden.spike_times):
            fields.append((f"layer {k}", device.spike_times[k], want))
    fields += [("class", device.decision, golden.decision), ("fired flag", device.fired, golden.fired),
               ("output spike times", device.output_times, golden.spike_times[-1])]
    if device.decision_step is not None:
        fields.append(("decision step", device.decision_step, golden.decision_step))
    if device.cycles is not None:
        fields.append(("cycles", device.cycles, golden.cycles(lanes)))
    if device.input_spikes is not None:
        fields.append(("input spikes", device.input_spikes, golden.spike_counts[:, 0]))
    if device.layer_spikes is not None:
        fields.append(("spikes per layer", device.layer_spikes, golden.spike_counts[:, 1:]))
    if device.error is not None:
        fields.append(("input error flag", device.error, np.zeros(golden.batch, bool)))
    return fields


def agreement(golden: GoldenResult, device: DeviceResults, lanes: int) -> np.ndarray:
    """``bool [batch]``: the sample's every exposed value equals the golden model's."""
    if device.batch != golden.batch:
        raise ValueError(f"the device reported {device.batch} samples, the golden model ran {golden.batch}")
    same = np.ones(golden.batch, bool)
    for _, got, want in _fields(golden, device, lanes):
        equal = np.asarray(got) == np.asarray(want)
        same &= equal.reshape(golden.batch, -1).all(axis=1)
    return same


def compare(golden: GoldenResult, device: DeviceResults, lanes: int) -> Mismatch | None:
    """The first difference (lowest sample, then the order of :func:`_fields`), or None."""
    same = agreement(golden, device, lanes)
    if same.all():
        return None
    sample = int(np.flatnonzero(~same)[0])
    for name, got, want in _fields(golden, device, lanes):
        mine, theirs = np.asarray(got)[sample], np.asarray(want)[sample]
        if np.array_equal(mine, theirs):
            continue
        if name.startswith("layer "):
            neuron = int(np.flatnonzero(mine != theirs)[0])
            return Mismatch(sample, f"{name}, neuron {neuron}, spike time (-1 = never)", int(mine[neuron]),
                            int(theirs[neuron]))
        return Mismatch(sample, name, np.asarray(mine).tolist(), np.asarray(theirs).tolist())
    raise AssertionError("agreement() and the fields disagree")  # unreachable
