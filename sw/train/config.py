"""What a training run does: one frozen dataclass, every seed paper's method behind a field.

The defaults are the recipe; the ablation (:mod:`.ablation`) flips one method at a time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..params import LIMITS, Kernel
from ..topology import Conv2d, Dense, LayerShape, MapShape, Pooling, PoolKind, stack

__all__ = ["TrainConfig", "INITS", "DECODINGS", "POOLS"]

INITS = ("default", "ettfs")
DECODINGS = ("uniform", "temporal")
#: Pooling between convolutions: ETTFS's average (``sum`` pooling in the integers), max, none.
POOLS = ("avg", "max", "none")
_POOL_KINDS = {"avg": PoolKind.SUM, "max": PoolKind.MAX}


@dataclass(frozen=True)
class TrainConfig:
    """Architecture, number formats, optimiser, and the methods.

    Architecture: ``conv`` convolutions ``(channels, kernel, stride)`` with "same"
    padding (``kernel // 2``), each after the first reading its input through ``2 x 2``
    ``pool`` pooling, as does the first dense layer after them; then the ``hidden``
    dense layers and the output layer. ``pool_at``: the layers (numbered from 0, the
    first conv layer) that read their input pooled, where not all of those do.

    The defaults are the recipe that measured best on digits (docs/training.md's
    ablation); every method is one option away. Methods:

    spike_penalty:
        Park & Yoon's spike reduction: ``spike_penalty * (fraction of hidden neurons
        that fire)`` is added to the loss (0 = off).
    init:
        ``ettfs``: the ETTFS-style data-driven initialisation that centres each hidden
        neuron's final potential on its threshold, layer by layer, so deep layers do
        not go silent ("information diminishing"); ``default``: scaled normal weights.
    decoding:
        ``temporal``: ETTFS temporal-weighted decoding in the loss, a trainable
        weight per step over the per-step output losses; ``uniform``: equal weights.
        Inference always decides by first spike (see docs/training.md for why).
    interpolate:
        Voelker et al.'s smooth passage from the non-spiking to the spiking regime:
        over the first ``interpolate`` fraction of epochs, activations blend from a
        sigmoid to the hard first-spike latch and weights from float to the integer
        grid (0 = hard and integer from the start).
    reversal:
        Zuo et al.'s temporal-reversal regulariser: weight of the consistency loss
        between the network's outputs on the input and on its time-reversed copy,
        plus the "star" (element-wise product) mixed hidden feature's loss (0 = off).
    first_spike:
        Weight of a margin loss for deciding by the first output spike: the correct
        output's potential must reach a quarter above the output threshold (1, as the
        hidden ones) and every other output's stay half a threshold below it at every
        step, so that the first output to fire is the right one and some output fires
        (0 = off).
    batch_norm:
        Batch normalisation of every hidden layer's potentials (per channel) for the first
        ``batch_norm`` fraction of epochs, then folded exactly into the weights and initial
        potentials, the rest of the epochs training the folded network on the integer grid
        (0 = off; 1 = folded at the end).
    min_fired:
        The exported output threshold is one at which outputs fire on at least this
        fraction of training images (the first-spike decision rather than the fallback),
        the highest such threshold (the latest decisions the floor allows; 0 = any). Chosen
        on a tenth of the training split held out from training.
    """

    hidden: tuple[int, ...] = (128,)
    conv: tuple[tuple[int, int, int], ...] = ()
    pool: str = "avg"
    pool_at: tuple[int, ...] | None = None
    kernel: Kernel = Kernel.STEP
    time_steps: int = 16
    weight_bits: int = 8
    potential_bits: int = 16
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 3e-3
    seed: int = 0
    logit_scale: float = 4.0
    surrogate_slope: float = 5.0
    input_dropout: float = 0.2
    shift: int = 0       # each training image moved by up to this many pixels each way (0: off)
    flip: bool = False   # each training image mirrored left-right with probability 1/2
    spike_penalty: float = 0.25
    init: str = "default"
    decoding: str = "temporal"
    interpolate: float = 0.0
    reversal: float = 0.0
    first_spike: float = 0.0
    min_fired: float = 0.0
    batch_norm: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.kernel, Kernel):
            raise ValueError(f"kernel must be one of {[k.value for k in Kernel]}, not {self.kernel!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, not {self.init!r}")
        if self.decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}, not {self.decoding!r}")
        if not self.hidden and not self.conv:
            raise ValueError("hidden must name at least one hidden layer size (or give conv layers)")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, not {self.pool!r}")
        if self.pool_at is not None and not all(isinstance(k, int) and 1 <= k <= len(self.conv)
                                                for k in self.pool_at):
            raise ValueError(f"pool_at names layers 1 ... {len(self.conv)} (the conv layers after the first "
                             f"and the first dense layer), not {list(self.pool_at)}")
        for layer in self.conv:
            if len(layer) != 3 or not all(isinstance(v, int) and 1 <= v <= 255 for v in layer):
                raise ValueError(f"a conv layer is (channels, kernel, stride), each 1 ... 255, not {layer!r}")
        low, high = LIMITS["layer size"]
        for size in self.hidden:
            if not low <= size <= high:
                raise ValueError(f"hidden layer size must be between {low} and {high}, not {size}")
        for name in ("spike_penalty", "reversal", "input_dropout", "interpolate", "first_spike", "min_fired",
                     "batch_norm"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, not {value!r}")
        if self.interpolate > 1 or self.input_dropout >= 1 or self.min_fired > 1 or self.batch_norm > 1:
            raise ValueError("interpolate, min_fired and batch_norm must be at most 1 and input_dropout below 1")
        if not isinstance(self.shift, int) or not 0 <= self.shift <= 8:
            raise ValueError(f"shift must be 0 ... 8 pixels, not {self.shift!r}")
        if self.epochs < 1 or self.batch_size < 1 or not self.learning_rate > 0:
            raise ValueError("epochs and batch_size must be >= 1 and learning_rate > 0")

    @property
    def fold_epoch(self) -> int | None:
        """The epoch at whose start batch normalisation is folded (``None``: never used)."""
        if self.batch_norm <= 0:
            return None
        return round(self.batch_norm * self.epochs)

    def as_dict(self) -> dict:
        """JSON-ready (for provenance and checkpoints)."""
        out = asdict(self)
        out["kernel"] = self.kernel.value
        out["hidden"] = list(self.hidden)
        out["conv"] = [list(layer) for layer in self.conv]
        if self.pool_at is None:
            del out["pool_at"]  # so checkpoints from before the field still match
        else:
            out["pool_at"] = list(self.pool_at)
        for name in ("shift", "flip"):  # (likewise)
            if not out[name]:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        values["kernel"] = Kernel(values.get("kernel", "step"))
        values["hidden"] = tuple(values.get("hidden", (128,)))
        values["conv"] = tuple(tuple(layer) for layer in values.get("conv", ()))
        if values.get("pool_at") is not None:
            values["pool_at"] = tuple(values["pool_at"])
        return cls(**values)

    def architecture(self, input_map: MapShape, n_classes: int) -> tuple[tuple[int, ...], tuple[LayerShape, ...]]:
        """``(layer_sizes, shapes)`` of the network for images of ``input_map``."""
        pool = Pooling(2, _POOL_KINDS[self.pool]) if self.pool != "none" and self.conv else None
        pooled = set(range(1, len(self.conv) + 1)) if self.pool_at is None else set(self.pool_at)
        makers: list = []
        for i, (channels, kernel, stride) in enumerate(self.conv):
            makers.append(lambda m, c=channels, k=kernel, s=stride, by=pool if i in pooled else None:
                          Conv2d(m, c, (k, k), (s, s), (k // 2, k // 2), by))
        for j, size in enumerate((*self.hidden, n_classes)):
            makers.append(lambda m, n=size, first=j == 0:
                          Dense(n, m, pool) if first and pool is not None and len(self.conv) in pooled
                          else Dense(n))
        return stack(input_map, makers)
