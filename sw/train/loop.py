"""The training run: data to spike times, initialisation, epochs, checkpoints, export.

The loss at every step ``t`` is the cross-entropy of the output potentials ``V(t)``
(scaled), so the right output leads from the start and crosses a common threshold
first; the per-step losses are weighted uniformly or by ETTFS's trainable temporal
weights. The methods of :class:`~.config.TrainConfig` add their terms here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..encoding import LatencyEncoding
from ..errors import FirstSpikeError
from ..files import write_atomically
from ..heap import keep_freed_memory
from ..model import Model, load_model
from ..params import CoreParams, Kernel
from ..topology import LayerShape, MapShape, describe
from .config import TrainConfig
from .export import choose_output_threshold, to_model
from .network import SurrogateNet, reverse_times

__all__ = ["TrainedModel", "train", "Progress"]

#: Called after every batch: ``progress(epoch, batch_in_epoch, batches_per_epoch, stats)``.
Progress = Callable[[int, int, int, dict], None]

# Training images the output threshold is chosen on (the golden model runs them ~50 times).
_THRESHOLD_SAMPLES = 5000
# With min_fired, one training image in this many is held out to choose the output threshold on.
_HOLD_OUT = 10
_INIT_SAMPLES = 1024


@dataclass(frozen=True)
class TrainedModel:
    model: Model
    net: SurrogateNet
    history: list[dict]


def _alpha(config: TrainConfig, progress: float) -> float:
    """Voelker et al.'s interpolation: 0 (float, non-spiking) to 1 (integer, spiking)."""
    if config.interpolate <= 0:
        return 1.0
    return min(1.0, progress / config.interpolate)


@torch.no_grad()
def _ettfs_init(net: SurrogateNet, times: torch.Tensor, firing: float = 0.25) -> None:
    """Layer by layer: scale weights so the hidden potentials at ``T-1`` spread by one
    threshold, and shift each neuron's bias so that it fires for a ``firing`` fraction of
    the samples: every neuron carries information, none is always on."""
    for k in range(len(net.weights) - 1):
        _, _, potentials = net(times, alpha=0.0)
        final = potentials[k][:, -1, :]
        spread = final.std().clamp(min=1e-6)
        net.weights[k].mul_(1.0 / spread)
        net.biases[k].mul_(1.0 / spread)
        _, _, potentials = net(times, alpha=0.0)
        net.biases[k].add_(1.0 - potentials[k][:, -1, :].flatten().quantile(1.0 - firing))


def _logits(config: TrainConfig, potentials: torch.Tensor) -> torch.Tensor:
    """``[batch, T, n_out]`` logits from output potentials."""
    logits = config.logit_scale * potentials
    if config.kernel is Kernel.RAMP:
        # Ramp potentials grow with t: compare steps on the scale of one step's current.
        steps = potentials.shape[1]
        logits = logits / torch.arange(1, steps + 1, dtype=logits.dtype)[None, :, None]
    return logits


def _loss(net: SurrogateNet, config: TrainConfig, times: torch.Tensor, labels: torch.Tensor,
          alpha: float) -> tuple[torch.Tensor, dict]:
    v_out, spikes, _ = net(times, alpha)
    steps = config.time_steps
    step_weights = net.step_weights()
    logits = _logits(config, v_out)
    per_step = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.repeat_interleave(steps),
                               reduction="none").reshape(-1, steps)
    loss = (per_step.mean(dim=0) * step_weights).sum()
    fired = torch.cat([z[:, -1, :] for z in spikes], dim=1).mean()
    stats = {"ce": float(loss.detach()), "fired": float(fired.detach())}
    if config.spike_penalty > 0:
        loss = loss + config.spike_penalty * fired
    if config.first_spike > 0:
        peak = v_out.max(dim=1).values                      # [batch, n_out] over the steps
        correct = peak.gather(1, labels[:, None])[:, 0]
        others = peak.masked_fill(F.one_hot(labels, peak.shape[1]).bool(), -1e9)
        margin = F.relu(1.25 - correct).mean() + F.relu(others - 0.5).sum(dim=1).mean()
        loss = loss + config.first_spike * margin
        stats["first_spike"] = float(margin.detach())
    if config.reversal > 0:
        v_rev, spikes_rev, _ = net(reverse_times(times, steps), alpha)
        p = (torch.softmax(logits, dim=-1) * step_weights[None, :, None]).sum(dim=1).clamp(min=1e-8)
        q = (torch.softmax(_logits(config, v_rev), dim=-1)
             * step_weights[None, :, None]).sum(dim=1).clamp(min=1e-8)
        consistency = 0.5 * ((p * (p / q).log()).sum(dim=1) + (q * (q / p).log()).sum(dim=1)).mean()
        star = spikes[-1][:, -1, :] * spikes_rev[-1][:, -1, :]
        star_loss = F.cross_entropy(config.logit_scale * net.readout(star, alpha), labels)
        loss = loss + config.reversal * (consistency + star_loss)
        stats["reversal"] = float((consistency + star_loss).detach())
    return loss, stats


@dataclass
class _State:
    """Everything a resumed run needs to continue exactly as if never stopped."""

    net: SurrogateNet
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    epoch: int
    history: list[dict]


def _save_checkpoint(path: Path, config: TrainConfig, state: _State) -> None:
    saved = {"config": config.as_dict(), "sizes": list(state.net.sizes), "epoch": state.epoch,
             "net": state.net.state_dict(), "optimizer": state.optimizer.state_dict(),
             "generator": state.generator.get_state(), "history": state.history}
    write_atomically(path, lambda handle: torch.save(saved, handle))


def _trained_by(config: TrainConfig) -> TrainConfig:
    """The settings that shape the weights: a resumed run may change the others.
    ``min_fired`` only picks the exported output threshold, once training is over; whether it
    is 0 decides which images are held out for that, so that stays."""
    return replace(config, min_fired=float(config.min_fired > 0))


def _load_checkpoint(path: Path, config: TrainConfig, sizes: tuple[int, ...],
                     shapes: tuple[LayerShape, ...] = ()) -> _State:
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if (_trained_by(TrainConfig.from_dict(saved["config"])) != _trained_by(config)
                or tuple(saved["sizes"]) != sizes):
            raise FirstSpikeError(f"{path} was made with other settings or data; remove it or drop --resume")
        state = _new_state(config, sizes, shapes)
        state.net.load_state_dict(saved["net"])
        state.optimizer.load_state_dict(saved["optimizer"])
        state.generator.set_state(saved["generator"])
        state.epoch, state.history = int(saved["epoch"]), list(saved["history"])
    except FirstSpikeError:
        raise
    except Exception:  # torch.load raises pickle, zip and runtime errors for a bad file
        # (its own text advises weights_only=False, i.e. running the file's code: never for a user)
        reason = "it is empty" if path.stat().st_size == 0 else "not a PyTorch checkpoint of this trainer"
        raise FirstSpikeError(f"{path}: not a FirstSpike training checkpoint ({reason})") from None
    return state


def _start_from(path: Path, state: _State | None, sizes: tuple[int, ...], params: CoreParams) -> dict:
    """Load a checkpoint's, or a model file's, weights into ``state`` (a new run: its own
    optimizer and learning rate schedule; ``None``: a resumed run, which has them). Returns
    what the provenance records of it."""
    if path.suffix == ".npz":
        return _start_from_model(path, state, params)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if tuple(saved["sizes"]) != sizes:
            raise FirstSpikeError(f"--start-from {path}: its network is "
                                  f"{'-'.join(map(str, saved['sizes']))}, this one {'-'.join(map(str, sizes))}")
        if state is not None:
            state.net.load_state_dict(saved["net"])
    except FirstSpikeError:
        raise
    except Exception:  # a bad file, or another network's tensors
        raise FirstSpikeError(f"--start-from {path}: not a FirstSpike training checkpoint of this network") from None
    return {"config": saved["config"], "epochs": int(saved["epoch"]), "history": list(saved["history"])}


def _start_from_model(path: Path, state: _State | None, params: CoreParams) -> dict:
    """Float weights from a model file's integers: each neuron's weights and initial
    potential divided by its threshold, so that it fires exactly when the float neuron
    crosses 1 (the output layer's threshold becomes its float unit too). A trained model
    (largest weight at the limit, one threshold per layer) exports back to the same integers.
    Its normalisation, if it was trained with one, is already in its weights."""
    model = load_model(path)
    mine, theirs = params, model.params
    for name, a, b in (("network", "-".join(map(str, theirs.layer_sizes)), "-".join(map(str, mine.layer_sizes))),
                       ("layers", theirs.shapes, mine.shapes), ("time steps", theirs.time_steps, mine.time_steps),
                       ("kernel", theirs.kernel.value, mine.kernel.value),
                       ("weight bits", theirs.weight_bits, mine.weight_bits),
                       ("potential bits", theirs.potential_bits, mine.potential_bits)):
        if a != b:
            shown = (a, b) if name != "layers" else tuple(", ".join(map(describe, p.shapes)) for p in (theirs, mine))
            raise FirstSpikeError(f"--start-from {path}: its {name} {shown[0]}, this run's {shown[1]}")
    if state is not None:
        net = state.net
        with torch.no_grad():
            for k, layer in enumerate(model.layers):
                theta = layer.thresholds.astype(np.float64)
                w = layer.weights / theta  # the last axis is the neuron (dense) or output channel (conv)
                if w.ndim == 4:  # the file's [C, kh, kw, K] to PyTorch's [K, C, kh, kw]
                    w = w.transpose(3, 0, 1, 2)
                net.weights[k].copy_(torch.as_tensor(w, dtype=torch.float32))
                net.biases[k].copy_(torch.as_tensor(layer.initial_potentials / theta, dtype=torch.float32))
            net.folded.fill_(True)
    given = model.provenance
    return {"model": path.name, "digest": model.digest(),
            **{key: given[key] for key in ("command", "accuracy", "accuracy_split") if key in given}}


def _new_state(config: TrainConfig, sizes: tuple[int, ...], shapes: tuple[LayerShape, ...] = ()) -> _State:
    generator = torch.Generator().manual_seed(config.seed)
    net = SurrogateNet(sizes, config, generator, shapes)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    return _State(net, optimizer, generator, 0, [])


def train(train_x: np.ndarray, train_y: np.ndarray, *, x_max: float, config: TrainConfig,
          provenance: dict, checkpoint: str | os.PathLike | None = None, resume: bool = False,
          progress: Progress | None = None, image_shape: tuple[int, int] | None = None,
          start_from: str | os.PathLike | None = None) -> TrainedModel:
    """Train ``n_in - [conv...] - hidden... - n_classes`` and export it to an integer :class:`Model`.

    ``checkpoint``: written after every epoch; with ``resume``, training continues from it.
    ``image_shape``: ``(height, width)`` of the images, needed for conv layers.
    ``start_from``: begin with the weights of another run's checkpoint, or of a model file
    (``.npz``, same network), then train ``config.epochs`` more with a fresh optimizer and
    learning-rate schedule.
    """
    keep_freed_memory()
    n_classes = int(train_y.max()) + 1
    shaped = image_shape is not None and image_shape[0] * image_shape[1] == train_x.shape[1]
    for needs, what in ((config.conv, "conv layers need"), (config.shift or config.flip, "shift and flip need")):
        if needs and not shaped:
            raise FirstSpikeError(f"{what} the images' height and width, not {image_shape!r} "
                                  f"for {train_x.shape[1]} pixels")
    shapes: tuple[LayerShape, ...] = ()
    if config.conv:
        assert image_shape is not None
        sizes, shapes = config.architecture(MapShape(1, *image_shape), n_classes)
    else:
        sizes = (train_x.shape[1], *config.hidden, n_classes)
    params = CoreParams(sizes, config.time_steps, config.kernel, config.weight_bits, config.potential_bits,
                        shapes=shapes)
    encoding = LatencyEncoding(x_max)
    spike_times = encoding.encode(train_x, config.time_steps)
    held_out = np.zeros(len(train_y), bool)
    if config.min_fired > 0:
        # The output threshold that makes outputs fire often enough is chosen on images the
        # network did not train on: on its own training images it fires more than on new ones.
        held_out[np.random.default_rng(config.seed).permutation(len(train_y))[:len(train_y) // _HOLD_OUT]] = True
    times = torch.as_tensor(spike_times[~held_out].astype(np.int64))
    labels = torch.as_tensor(np.asarray(train_y, np.int64)[~held_out])
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = _load_checkpoint(Path(checkpoint), config, sizes, shapes)
        if start_from is not None:
            provenance = {**provenance, "started_from": _start_from(Path(start_from), None, sizes, params)}
    elif start_from is not None:
        state = _new_state(config, sizes, shapes)
        provenance = {**provenance, "started_from": _start_from(Path(start_from), state, sizes, params)}
    else:
        state = _new_state(config, sizes, shapes)
        if config.init == "ettfs":
            _ettfs_init(state.net, times[torch.randperm(len(times), generator=state.generator)[:_INIT_SAMPLES]])
    net, optimizer, generator, history = state.net, state.optimizer, state.generator, state.history
    batches = math.ceil(len(times) / config.batch_size)
    total = config.epochs * batches
    for epoch in range(state.epoch, config.epochs):
        if epoch == config.fold_epoch and net.normalizing:
            net.fold_norms()
            optimizer.state.clear()  # its moments were for the unfolded weights' scales
        order = torch.randperm(len(times), generator=generator)
        sums: dict[str, float] = {}
        for b in range(batches):
            done = epoch * batches + b
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate * 0.5 * (1 + math.cos(math.pi * done / total))
            index = order[b * config.batch_size:(b + 1) * config.batch_size]
            batch_times = times[index]
            if config.shift or config.flip:
                batch_times = augment(batch_times, image_shape, config.shift, config.flip, generator)
            if config.input_dropout > 0:
                drop = torch.rand(batch_times.shape, generator=generator) < config.input_dropout
                batch_times = torch.where(drop, torch.full_like(batch_times, -1), batch_times)
            loss, stats = _loss(net, config, batch_times, labels[index], _alpha(config, done / total))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for key, value in stats.items():
                sums[key] = sums.get(key, 0.0) + value
            if progress is not None:
                progress(epoch, b, batches, stats)
        history.append({"epoch": epoch + 1, **{k: v / batches for k, v in sums.items()}})
        state.epoch = epoch + 1
        if checkpoint is not None:
            _save_checkpoint(Path(checkpoint), config, state)
    net.fold_norms()
    if held_out.any():
        pick = np.flatnonzero(held_out)[:_THRESHOLD_SAMPLES]
    else:
        pick = np.random.default_rng(config.seed).permutation(len(spike_times))[:_THRESHOLD_SAMPLES]
    threshold, accuracy = choose_output_threshold(net, params, encoding, spike_times[pick], train_y[pick],
                                                  min_fired=config.min_fired)
    model = to_model(net, params, encoding, threshold,
                     {**provenance, "train_accuracy": accuracy, "config": config.as_dict()})
    return TrainedModel(model, net, history)


def augment(times: torch.Tensor, image_shape: tuple[int, int] | None, shift: int, flip: bool,
            generator: torch.Generator) -> torch.Tensor:
    """A batch of input spike times ``[B, H * W]`` with each image moved by up to ``shift``
    pixels each way (what moves in from outside never spikes) and, with ``flip``, mirrored
    left-right with probability 1/2: new images of the same classes for the network to
    fit, so it fits the training set less by heart."""
    assert image_shape is not None
    b = len(times)
    maps = times.view(b, *image_shape)
    if flip:
        mirrored = torch.rand(b, generator=generator) < 0.5
        maps = torch.where(mirrored[:, None, None], maps.flip(-1), maps)
    if shift:
        h, w = image_shape
        padded = torch.full((b, h + 2 * shift, w + 2 * shift), -1, dtype=times.dtype)
        padded[:, shift:shift + h, shift:shift + w] = maps
        dy, dx = (torch.randint(0, 2 * shift + 1, (b,), generator=generator) for _ in range(2))
        rows = (dy[:, None] + torch.arange(h)[None, :])[:, :, None].expand(b, h, w)
        cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, :].expand(b, h, w)
        maps = padded[torch.arange(b)[:, None, None], rows, cols]
    return maps.reshape(b, -1)
