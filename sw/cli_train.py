"""The ``train``, ``ablation``, ``import`` and ``export`` commands: where models come from.

Registered by :mod:`.cli`; PyTorch and ``nir`` are imported only when a command needs them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from .cli_options import DATASETS, SHIPPED_NAMES, cluster_options, float_in, int_in, resolve_model
from .errors import FirstSpikeError
from .files import check_output_path, write_atomically
from .model import Model, save_model
from .nirgraph import IMPORT_DEFAULTS
from .params import LIMITS

__all__ = ["add_commands"]


def _torch_train():
    try:
        from .train import loop
    except ImportError as error:
        raise FirstSpikeError(
            f"training needs PyTorch ({error}); pip install 'firstspike[train]' (on these machines "
            "`pip install torch==2.13.0` takes the CPU build from disk), or use --trainer numpy") from None
    return loop


def _config(args: argparse.Namespace):
    from .params import Kernel
    from .train.config import TrainConfig
    return TrainConfig(
        hidden=tuple(args.hidden), conv=tuple(args.conv), pool=args.pool, kernel=Kernel(args.kernel),
        pool_at=None if args.pool_at is None else tuple(args.pool_at),
        time_steps=args.time_steps,
        weight_bits=args.weight_bits, potential_bits=args.potential_bits, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
        input_dropout=args.input_dropout, shift=args.shift, flip=args.flip, spike_penalty=args.spike_penalty,
        init=args.init, decoding=args.decoding,
        interpolate=args.interpolate, reversal=args.reversal, first_spike=args.first_spike,
        batch_norm=args.batch_norm,
        min_fired=args.min_fired)


def _conv_spec(text: str) -> tuple[int, int, int]:
    """``C:K[:S]`` to ``(channels, kernel, stride)``."""
    parts = text.split(":")
    try:
        values = [int(v) for v in parts]
    except ValueError:
        values = []
    if len(values) not in (2, 3) or not all(1 <= v <= 255 for v in values):
        raise argparse.ArgumentTypeError(f"--conv takes CHANNELS:KERNEL[:STRIDE], each 1 ... 255, not {text!r}")
    return values[0], values[1], values[2] if len(values) == 3 else 1


def _hidden_spikes(model: Model, spike_counts: np.ndarray) -> float:
    """Mean spikes per hidden neuron per image."""
    hidden = model.params.layer_sizes[1:-1]
    return float(spike_counts[:, 1:-1].sum(axis=1).mean() / max(1, sum(hidden)))


#: Options only the torch trainer reads, by argparse destination.
_TORCH_ONLY = ("conv", "pool_at", "batch_size", "learning_rate", "input_dropout", "shift", "flip", "spike_penalty",
               "init",
               "decoding", "interpolate", "reversal", "first_spike", "min_fired", "batch_norm", "checkpoint", "resume",
               "start_from")


def _check_numpy_options(args: argparse.Namespace) -> None:
    """The numpy trainer refuses options it would ignore, rather than train as if they were not given."""
    from .train.config import TrainConfig
    defaults = {**TrainConfig().as_dict(), "pool_at": None, "shift": 0, "flip": False, "checkpoint": None,
                "resume": False, "start_from": None}
    given = [name for name in _TORCH_ONLY if getattr(args, name) != defaults[name]]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise FirstSpikeError(f"{flags}: only with --trainer torch (the numpy trainer does not use "
                              f"{'it' if len(given) == 1 else 'them'})")
    if args.kernel != "step":
        raise FirstSpikeError("--trainer numpy trains the step kernel only; use --trainer torch for ramp")


def _train_numpy(args, x, y, dataset, command, bar) -> tuple[Model, None]:
    from .train.baseline import BaselineConfig, train_baseline
    config = BaselineConfig(hidden=tuple(args.hidden), time_steps=args.time_steps,
                            weight_bits=args.weight_bits, potential_bits=args.potential_bits,
                            epochs=args.epochs, seed=args.seed)
    bar.reset(total=config.epochs)

    def progress(epoch: int, loss: float) -> None:
        bar.set_postfix(loss=f"{loss:.4f}")
        bar.update(1)
    return train_baseline(x, y, x_max=dataset.x_max, config=config, progress=progress,
                          provenance={"dataset": dataset.name, "command": command,
                                      "method": "numpy-baseline", "seed": args.seed}), None


def _train_torch(args, x, y, dataset, command, bar):
    loop = _torch_train()
    config = _config(args)
    batches = -(-len(x) // config.batch_size)
    bar.reset(total=config.epochs * batches)

    started = time.monotonic()
    # Where stderr is no terminal (a log file, nohup) the bar is hidden: a line an epoch instead.
    log_epochs = bar.disable and not args.quiet

    def progress(epoch: int, batch: int, per_epoch: int, stats: dict) -> None:
        bar.set_description(f"train epoch {epoch + 1}/{config.epochs}")
        bar.set_postfix(ce=f"{stats['ce']:.3f}", fired=f"{stats['fired']:.3f}")
        bar.update(1)
        if log_epochs and batch == per_epoch - 1:
            print(f"train: epoch {epoch + 1}/{config.epochs} done after {(time.monotonic() - started) / 60:.1f} "
                  f"min (last batch: ce {stats['ce']:.3f}, fired {stats['fired']:.3f})", file=sys.stderr, flush=True)
    checkpoint = args.checkpoint or f"{args.out}.checkpoint.pt"
    trained = loop.train(x, y, x_max=dataset.x_max, config=config, checkpoint=checkpoint,
                         resume=args.resume, progress=progress, image_shape=dataset.image_shape,
                         start_from=args.start_from,
                         provenance={"dataset": dataset.name, "command": command, "method": "surrogate-torch",
                                     "seed": args.seed})
    return trained.model, trained.net


def _cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .datasets import load_dataset
    from .golden import simulate

    if args.trainer == "numpy":
        _check_numpy_options(args)
    elif args.resume and args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise FirstSpikeError(f"--checkpoint {args.checkpoint}: no such checkpoint to --resume from")
    if args.start_from is not None and not Path(args.start_from).is_file():
        raise FirstSpikeError(f"--start-from {args.start_from}: no such checkpoint or model file")
    check_output_path(args.out, "--out")
    if args.checkpoint is not None:
        check_output_path(args.checkpoint, "--checkpoint")
    dataset = load_dataset(args.dataset, args.data_dir)
    x, y = dataset.train_x, dataset.train_y
    if args.limit is not None:
        x, y = x[:args.limit], y[:args.limit]
    command = "firstspike " + " ".join(shlex.quote(a) for a in args.argv)
    with tqdm(desc="train", disable=True if args.quiet else None, file=sys.stderr) as bar:
        trainer = _train_numpy if args.trainer == "numpy" else _train_torch
        model, net = trainer(args, x, y, dataset, command, bar)
    spike_times = model.encoding.encode(dataset.test_x, model.params.time_steps)
    test = simulate(model, spike_times)
    accuracy = float(np.mean(test.decision == dataset.test_y))
    figures = {"accuracy": accuracy, "accuracy_split": "test",
               "hidden_spikes_per_neuron": _hidden_spikes(model, test.spike_counts)}
    said = ""
    if args.trainer == "torch":
        from .compare import DeviceResults, agreement
        from .train.exact import exact_forward
        exact = exact_forward(model, spike_times)
        same = agreement(test, DeviceResults(decision=exact.decision, fired=exact.fired,
                                          output_times=exact.spike_times[-1],
                                          spike_times=tuple(exact.spike_times)), model.params.lanes)
        figures["exact_forward_agreement"] = float(same.mean())
        said = (f"; the training's integer forward pass agrees with the golden model on "
                     f"{int(same.sum())}/{len(same)} test images")
        from .train.decoding import compare_readouts
        assert net is not None, "the torch trainer returns its network"
        readouts = compare_readouts(model, net, spike_times, dataset.test_y)
        figures["readouts"] = readouts
        said += (f"\nreadouts: first spike {100 * readouts['first_spike']:.2f} % (decided at step "
                      f"{readouts['first_spike_mean_decision_step']:.2f} on average), temporal-weighted "
                      f"{100 * readouts['temporal_weighted']:.2f} %, final potential "
                      f"{100 * readouts['final_potential']:.2f} % (all over {model.params.time_steps} steps)")
    model = Model(model.params, model.layers, model.encoding, {**model.provenance, **figures})
    save_model(model, args.out)
    print(f"wrote {args.out}: golden accuracy {100 * accuracy:.2f} % on the {dataset.name} test split "
          f"({len(dataset.test_y)} samples), {figures['hidden_spikes_per_neuron']:.3f} spikes per hidden "
          f"neuron, outputs fired in {100 * test.fired.mean():.1f} %{said}")
    return 0


def _cmd_ablation(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .datasets import load_dataset
    _torch_train()
    from .train import ablation

    base = _config(args)
    out = Path(args.out)
    for name in ("ablation.json", "ablation.md", "ablation.png"):
        check_output_path(out / name, "--out")
    dataset = load_dataset(args.dataset, args.data_dir)
    with tqdm(total=len(ablation.variants(base)), desc="ablation", unit="run", file=sys.stderr,
              disable=True if args.quiet else None) as bar:
        def progress(name: str) -> None:  # a variant finished
            bar.update(1)
            bar.set_postfix_str(name)
        rows = ablation.run_ablation(dataset, base, lanes=args.lanes, out=out / "ablation.json",
                                     limit=args.limit, progress=progress, workers=args.workers,
                                     scheduler=args.scheduler, resume=args.resume, data_dir=args.data_dir)
    table = ablation.markdown(rows)
    write_atomically(out / "ablation.md", lambda handle: handle.write(table.encode()))
    ablation.plot(rows, out / "ablation.png")
    print(table, end="")
    print(f"wrote {out / 'ablation.json'}, {out / 'ablation.md'} and {out / 'ablation.png'}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from .nirgraph import import_nir
    x_max = args.x_max
    if x_max is not None and args.dataset:
        raise FirstSpikeError("--x-max and --dataset both set the encoding's brightest value: give one")
    if x_max is None and args.dataset:
        from .datasets import load_dataset
        x_max = load_dataset(args.dataset, args.data_dir).x_max
    check_output_path(args.out, "--out")
    model, report = import_nir(args.graph, time_steps=args.time_steps, x_max=x_max, weight_bits=args.weight_bits,
                               potential_bits=args.potential_bits, clip_percentile=args.clip_percentile,
                               provenance={"source": str(args.graph)})
    save_model(model, args.out)
    for line in report.lines():
        print(line)
    print(f"wrote {args.out} ({'-'.join(map(str, model.params.layer_sizes))}, {model.params.kernel.value} kernel, "
          f"T={model.params.time_steps}, model sha256 {model.digest()[:12]})")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .nirgraph import write_nir
    check_output_path(args.out, "--out")
    model = resolve_model(args.model)
    write_nir(model, args.out)
    print(f"wrote {args.out} ({'-'.join(map(str, model.params.layer_sizes))}, {model.params.kernel.value} kernel)")
    return 0


def _training_options(p: argparse.ArgumentParser) -> None:
    from .train.config import DECODINGS, INITS, POOLS, TrainConfig
    d = TrainConfig()
    p.add_argument("--dataset", default="digits", choices=DATASETS)
    p.add_argument("--data-dir", help="folder with the IDX files (fashion-mnist, mnist)")
    p.add_argument("--hidden", type=int_in("--hidden", *LIMITS["layer size"]), nargs="*", default=list(d.hidden),
                   help="hidden dense layer sizes (none: give --hidden alone, after --conv layers)")
    p.add_argument("--conv", type=_conv_spec, nargs="+", default=[], metavar="C:K[:S]",
                   help="convolutions before the dense layers: C output channels, K x K kernel, stride S "
                        "(default 1), 'same' padding K // 2 (torch trainer)")
    p.add_argument("--pool", choices=POOLS, default=d.pool,
                   help="2 x 2 pooling of each conv layer's output: avg (ETTFS; sum pooling in the integers), "
                        "max (the earliest spike) or none")
    p.add_argument("--pool-at", type=int, nargs="+", metavar="LAYER",
                   help="pool only the inputs of these layers, numbered from 0 (the first conv layer): "
                        "1 ... the number of conv layers (that one: the first dense layer); default all")
    p.add_argument("--kernel", choices=["step", "ramp"], default="step")
    p.add_argument("--time-steps", type=int_in("--time-steps", *LIMITS["time_steps"]), default=d.time_steps)
    p.add_argument("--weight-bits", type=int_in("--weight-bits", *LIMITS["weight_bits"]), default=d.weight_bits)
    p.add_argument("--potential-bits", type=int_in("--potential-bits", *LIMITS["potential_bits"]),
                   default=d.potential_bits)
    p.add_argument("--epochs", type=int_in("--epochs", 1), default=d.epochs)
    p.add_argument("--batch-size", type=int_in("--batch-size", 1), default=d.batch_size)
    p.add_argument("--learning-rate", type=float_in("--learning-rate", 0.0, low_open=True),
                   default=d.learning_rate)
    p.add_argument("--input-dropout", type=float_in("--input-dropout", 0.0, 1.0, high_open=True),
                   default=d.input_dropout,
                   help="probability of dropping each input spike while training (a regulariser)")
    p.add_argument("--shift", type=int_in("--shift", 0, 8), default=d.shift,
                   help="move each training image by up to N pixels each way (augmentation; 0 = off)")
    p.add_argument("--flip", action="store_true",
                   help="mirror half the training images left-right (augmentation, for data sets whose "
                        "classes do not change in a mirror, such as Fashion-MNIST)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int_in("--limit", 1), help="train on the first N training samples only")
    methods = p.add_argument_group("the seed papers' methods (torch trainer)")
    methods.add_argument("--spike-penalty", type=float_in("--spike-penalty", 0.0), default=d.spike_penalty,
                         help="weight of the hidden spike count in the loss (Park & Yoon); 0 = off")
    methods.add_argument("--init", choices=INITS, default=d.init, help="ETTFS initialisation or default")
    methods.add_argument("--decoding", choices=DECODINGS, default=d.decoding,
                         help="per-step loss weights: ETTFS temporal weighting (trained) or uniform")
    methods.add_argument("--interpolate", type=float_in("--interpolate", 0.0, 1.0), default=d.interpolate,
                         help="fraction of training that moves from float/non-spiking to integer/spiking "
                              "(Voelker et al.); 0 = off")
    methods.add_argument("--reversal", type=float_in("--reversal", 0.0), default=d.reversal,
                         help="weight of the temporal-reversal consistency and star losses (Zuo et al.); 0 = off")
    methods.add_argument("--first-spike", type=float_in("--first-spike", 0.0), default=d.first_spike,
                         help="weight of the first-spike margin loss: the right output reaches the threshold, the "
                              "others stay half a threshold below; 0 = off")
    methods.add_argument("--min-fired", type=float_in("--min-fired", 0.0, 1.0), default=d.min_fired,
                         help="export an output threshold at which outputs fire on at least this fraction of "
                              "training images; 0 = any")
    p.add_argument("--batch-norm", type=float_in("--batch-norm", 0.0, 1.0), default=d.batch_norm,
                   help="batch-normalise hidden potentials for this fraction of the epochs, then fold the "
                        "normalisation into weights and initial potentials and train on; 0 = off")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_commands(commands) -> None:
    """Register the commands on ``commands`` (an argparse sub-parser action)."""
    p = commands.add_parser("train", help="train a TTFS network and export it to the hardware's integers")
    _training_options(p)
    p.add_argument("--trainer", choices=["torch", "numpy"], default="torch",
                   help="torch: surrogate training with the seed papers' methods ([train] extra); "
                        "numpy: the dependency-free baseline (step kernel)")
    p.add_argument("--checkpoint", help="checkpoint written after every epoch (default OUT.checkpoint.pt)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint if it exists")
    p.add_argument("--start-from", metavar="CHECKPOINT|MODEL",
                   help="begin with another run's weights (its checkpoint, or a model file .npz, same network) "
                        "and train --epochs more on a fresh learning-rate schedule")
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    p.set_defaults(handler=_cmd_train)

    p = commands.add_parser("ablation", help="train the recipe with each method off in turn: table and PNG")
    _training_options(p)
    p.add_argument("--lanes", type=int_in("--lanes", *LIMITS["lanes"]), default=16,
                   help="lanes P for the cycle column")
    p.add_argument("--out", required=True, help="folder for ablation.json, ablation.md and ablation.png")
    cluster_options(p, "training runs")
    p.add_argument("--resume", action="store_true",
                   help="keep the variants OUT/ablation.json has for this recipe, train the rest")
    p.set_defaults(handler=_cmd_ablation)

    p = commands.add_parser("import", help="a NIR graph (Input -> Affine/Linear -> [I] -> IF ... -> Output) "
                                           "to a FirstSpike model file")
    p.add_argument("graph", help="NIR file (.nir)")
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    kept = "; a graph FirstSpike wrote keeps its own unless given"
    p.add_argument("--time-steps", type=int_in("--time-steps", *LIMITS["time_steps"]),
                   help=f"time steps T (default {IMPORT_DEFAULTS['time_steps']}{kept})")
    p.add_argument("--x-max", type=float_in("--x-max", 0.0, low_open=True),
                   help="brightest input intensity for the latency encoding (required for graphs FirstSpike "
                        "did not write)")
    p.add_argument("--dataset", choices=DATASETS,
                   help="take --x-max from this data set")
    p.add_argument("--data-dir", help="folder with the IDX files (fashion-mnist, mnist)")
    p.add_argument("--weight-bits", type=int_in("--weight-bits", *LIMITS["weight_bits"]),
                   help=f"default {IMPORT_DEFAULTS['weight_bits']}{kept}")
    p.add_argument("--potential-bits", type=int_in("--potential-bits", *LIMITS["potential_bits"]),
                   help=f"default {IMPORT_DEFAULTS['potential_bits']}{kept}")
    p.add_argument("--clip-percentile", type=float_in("--clip-percentile", 0.0, 100.0, low_open=True),
                   default=100.0,
                   help="scale each layer so this percentile of |weight| is the largest integer weight")
    p.set_defaults(handler=_cmd_import)

    p = commands.add_parser("export", help="a model file to a NIR graph")
    p.add_argument("--model", default="digits", help=f"model file, or a shipped model ({SHIPPED_NAMES})")
    p.add_argument("--out", required=True, help="NIR file to write (.nir)")
    p.set_defaults(handler=_cmd_export)
