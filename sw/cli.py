"""The ``firstspike`` command: a thin layer over the importable API.

Every user mistake (bad argument, missing or malformed file, missing data set) ends in
one line on stderr and exit status 2; nothing here calls ``sys.exit``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .backends import BACKENDS, run_backend
from .cli_options import (
    DATASETS,
    SHIPPED_NAMES,
    Parser,
    UsageError,
    cluster_options,
    float_in,
    hw,
    int_in,
    model_and_data,
    progress,
    resolve_model,
    schedule_option,
)
from .errors import FirstSpikeError, SpikeInputError
from .files import check_output_folder, check_output_path, write_atomically
from .golden import GoldenResult
from .model import Model
from .params import LIMITS, Schedule
from .processes import end_descendants, ending_descendants_on_interrupt
from .spikes import check_spike_times
from .topology import describe

__all__ = ["main"]


# -- eval --------------------------------------------------------------------------

def _cmd_eval(args: argparse.Namespace) -> int:
    from .datasets import load_dataset
    from .evaluate import evaluate

    options = _backend_options(args)
    model = resolve_model(args.model, getattr(args, "schedule", None))
    dataset = load_dataset(args.dataset, args.data_dir)
    x, _ = dataset.split(args.split)
    total = len(x) if args.limit is None else min(args.limit, len(x))
    if args.waves and args.waves_sample >= total:
        raise FirstSpikeError(f"--waves-sample {args.waves_sample}: the run has only {total} samples")
    if args.backend == "golden" and (args.workers is not None or args.scheduler is not None):
        raise FirstSpikeError("--workers, --scheduler: only with --backend rtl or netlist (the golden model "
                              "needs no cluster)")
    with progress(total, f"eval {args.backend}", not args.quiet) as bar:
        report = evaluate(model, dataset, split=args.split, backend=args.backend, lanes=args.lanes,
                          limit=args.limit, progress=bar.update, backend_options=options,
                          workers=args.workers, scheduler=args.scheduler)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    print("\n".join(report.lines(model, args.model, backend_label=_backend_label(args))))
    return 0


def _backend_options(args: argparse.Namespace) -> dict:
    """Options for the chosen backend; RTL options given with another backend are an error."""
    if args.backend == "netlist":
        given = [flag for flag, value in (("--waves", args.waves), ("--harness", args.harness != "native")) if value]
        if given:
            raise FirstSpikeError(f"{', '.join(given)}: only with --backend rtl")
        board = args.board or "icebreaker"
        return {"simulator": args.simulator or ("verilator" if board == "ulx3s" else "icarus"), "board": board}
    if args.board:
        raise FirstSpikeError("--board: only with --backend netlist")
    if args.backend != "rtl":
        given = [flag for flag, value in (("--simulator", args.simulator), ("--waves", args.waves),
                                          ("--harness", args.harness != "native")) if value]
        if given:
            raise FirstSpikeError(f"{', '.join(given)}: only with --backend rtl")
        return {}
    # No --simulator: evaluate() picks Icarus or Verilator by the run's length.
    options = {"simulator": args.simulator, "harness": args.harness}
    if args.waves:
        check_output_path(args.waves, "--waves")
        options.update(waves=args.waves, waves_sample=args.waves_sample, simulator=_waves_simulator(args))
    return options


#: The waveform format each simulator writes.
WAVE_FORMATS = {"icarus": ".fst", "verilator": ".vcd"}


def _waves_simulator(args: argparse.Namespace) -> str:
    """The simulator that writes the format ``--waves`` names (chosen by it if none is given)."""
    suffix = Path(args.waves).suffix.lower()
    if args.simulator is None:
        chosen = next((sim for sim, ext in WAVE_FORMATS.items() if ext == suffix), None)
        if chosen is None:
            raise FirstSpikeError(f"--waves {args.waves}: name the file .fst (Icarus writes it) or .vcd (Verilator)")
        return chosen
    if suffix != WAVE_FORMATS[args.simulator]:
        other = next(sim for sim in WAVE_FORMATS if sim != args.simulator)
        raise FirstSpikeError(f"--waves {args.waves}: {args.simulator.capitalize()} writes "
                              f"{WAVE_FORMATS[args.simulator][1:].upper()}; name the file "
                              f"{Path(args.waves).stem}{WAVE_FORMATS[args.simulator]} "
                              f"(or --simulator {other} for {WAVE_FORMATS[other][1:].upper()})")
    return args.simulator


def _backend_label(args: argparse.Namespace) -> str:
    return f" ({args.board or 'icebreaker'})" if args.backend == "netlist" else ""


# -- run ---------------------------------------------------------------------------

def _load_spike_file(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise SpikeInputError(f"{path}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        reason = "it is empty" if Path(path).stat().st_size == 0 else "not a .npy file"
        raise SpikeInputError(f"{path}: not a .npy array of spike times ({reason})") from None
    if not isinstance(array, np.ndarray):
        raise SpikeInputError(f"{path}: holds an archive, not one .npy array of spike times")
    return array


def run_arrays(model: Model, result: GoldenResult, lanes: int) -> dict[str, Any]:
    """The arrays ``firstspike run`` writes, by name (README: "A short tour")."""
    arrays: dict[str, Any] = {  # Any: NumPy's stubs read **arrays as its keyword options
        "class": result.decision,
        "fired": result.fired,
        "output_spike_times": result.spike_times[-1],
        "cycles": result.cycles(lanes),
        "lanes": np.array(lanes),
        "model_sha256": np.array(model.digest()),
    }
    if result.potentials[-1].shape[1]:  # the RTL does not expose potentials
        arrays["output_potentials"] = result.potentials[-1]
    agrees = getattr(result, "agrees", None)  # a device backend's per-sample agreement with golden
    if agrees is not None:
        arrays["agrees_with_golden"] = agrees
    for k, times in enumerate(result.spike_times[:-1]):
        arrays[f"hidden_spike_times_{k}"] = times
    return arrays


def _cmd_run(args: argparse.Namespace) -> int:
    check_output_path(args.output, "--output")
    options = _backend_options(args)
    model = resolve_model(args.model, getattr(args, "schedule", None))
    spike_times = check_spike_times(_load_spike_file(args.input), model.params, f"{args.input}")
    if len(spike_times) == 0:
        raise SpikeInputError(f"{args.input}: holds no samples (shape {list(spike_times.shape)})")
    if args.waves and args.waves_sample >= len(spike_times):
        raise FirstSpikeError(f"--waves-sample {args.waves_sample}: {args.input} has only "
                              f"{len(spike_times)} samples")
    if options:
        options["lanes"] = args.lanes
    parts = []
    with progress(len(spike_times), f"run {args.backend}", not args.quiet) as bar:
        for part in run_backend(args.backend, model, spike_times, **options):
            parts.append(part)
            bar.update(part.batch)
    result = type(parts[0]).join(parts)
    arrays = run_arrays(model, result, args.lanes)
    write_atomically(args.output, lambda handle: np.savez_compressed(handle, **arrays))
    counts = np.bincount(result.decision, minlength=model.params.layer_sizes[-1])
    print(f"wrote {args.output}: {result.batch} samples; samples per predicted class: "
          + ", ".join(f"{c}: {int(n)}" for c, n in enumerate(counts) if n))
    if "agrees_with_golden" in arrays:
        agree = arrays["agrees_with_golden"]
        print(f"agreement with the golden model: {int(agree.sum())}/{len(agree)} samples"
              + ("" if agree.all() else f"; first difference at sample {int(np.flatnonzero(~agree)[0])}"))
    if args.waves:
        print(f"wrote {args.waves}: waveform of sample {args.waves_sample}")
    return 0


# -- infer (through a device) ----------------------------------------------------------

def _open_device(args: argparse.Namespace, model: Model, stack: contextlib.ExitStack):
    """The device ``--device`` names, opened; simulated boards and emulators are started."""
    from .driver import Accelerator

    if args.device == "sim":
        SimulatedBoard = hw("sim.board", "--device sim").SimulatedBoard
        print(f"starting the simulated board ({args.simulator or 'icarus'}, P={args.lanes}) ...", file=sys.stderr)
        board = stack.enter_context(SimulatedBoard(model, args.lanes, simulator=args.simulator or "icarus"))
        url = board.url
    elif args.device == "emulator":
        from .emulator import serve
        url = stack.enter_context(serve(model, args.lanes)).url
    else:
        url = args.device
    clock_hz = round(args.clock * 1e6) if getattr(args, "clock", None) else None
    device = stack.enter_context(Accelerator.open(url, baudrate=args.baud, timeout=args.timeout, clock_hz=clock_hz))
    for disagreement in device.disagreements:
        print(f"note: {disagreement}", file=sys.stderr)
    return device


def _attach(device, model: Model, args: argparse.Namespace) -> None:
    """Use the model the device holds; if it holds another, say so and how to load ours."""
    from .driver import ModelMismatch

    try:
        device.attach(model)
    except ModelMismatch as error:
        if error.held is None:
            raise
        raise FirstSpikeError(f"--model {args.model} ({model.digest()[:12]}): the device holds {error.held}; "
                              "pass --load to load it over the link") from None


def _cmd_infer(args: argparse.Namespace) -> int:
    import contextlib

    from .datasets import load_dataset
    from .inference import run_on_device

    if args.report:
        check_output_path(args.report, "--report", (".png",))
    model = resolve_model(args.model, getattr(args, "schedule", None))
    dataset = load_dataset(args.dataset, args.data_dir)
    x, labels = dataset.split("test")
    if args.limit is not None:
        x, labels = x[:args.limit], labels[:args.limit]
    if x.shape[1] != model.params.n_inputs:
        raise FirstSpikeError(f"the model takes {model.params.n_inputs} inputs but {dataset.name} images "
                              f"have {x.shape[1]} pixels")
    times = model.encoding.encode(x, model.params.time_steps)
    with contextlib.ExitStack() as stack:
        device = _open_device(args, model, stack)
        if not args.load:
            _attach(device, model, args)
        else:
            with progress(device.load_rows(), "load", not args.quiet) as bar:
                device.load_model(model, progress=bar.update)
        with progress(len(times), f"infer {args.device}", not args.quiet) as bar:
            run, results, golden = run_on_device(device, model, times, labels, progress=bar.update)
    status = 0 if run.agreement == 1.0 else 1
    if args.json:
        print(json.dumps(run.as_dict(), indent=2))
    else:
        _print_run(args, device, dataset.name, run)
    if args.report:  # after the figures are out: a failed report loses none of them
        from .report import plot_inference_report
        plot_inference_report(args.report, results, labels, golden,
                              title=f"{args.model} on {dataset.name} via {args.device}")
        print(f"report     {args.report}", file=sys.stderr if args.json else sys.stdout)
    return status


def _print_run(args: argparse.Namespace, device, dataset_name: str, run) -> None:
    bound = "link-bound" if run.link_bound_per_second < run.compute_bound_per_second else "compute-bound"
    print(f"device     {args.device}  (P={device.params.lanes}, {run.clock_hz / 1e6:g} MHz, {run.baud:,} baud)")
    print(f"data       {dataset_name} test split, {run.samples} samples")
    print(f"accuracy   {100 * run.accuracy:.2f} %")
    print(f"agreement  {100 * run.agreement:.2f} % of samples equal the golden model in class, fired flag, "
          f"decision step, output spike times, cycles and spike counts"
          + ("" if run.first_difference is None else f"; first difference at sample {run.first_difference}"))
    print(f"cycles     mean {run.cycles_mean:,.1f} per inference")
    print(f"speed      {run.inferences_per_second:,.1f} inferences/s measured here; at the device's clock and baud "
          f"{run.compute_bound_per_second:,.0f}/s compute-bound, {run.link_bound_per_second:,.0f}/s link-bound "
          f"({bound})")
    print(f"wire       {run.bytes_per_inference:,.1f} bytes per inference (both directions, framing included); "
          f"{run.retried} requests retried")


# -- build -------------------------------------------------------------------------

def _cmd_build(args: argparse.Namespace) -> int:
    build = hw("build", "build")
    check_output_folder(args.out, "--out")
    from .datasets import load_dataset
    from .golden import simulate

    model = resolve_model(args.model, args.schedule or build.BOARDS[args.board].schedule)
    model.params.with_lanes(args.lanes)
    x, _ = load_dataset(args.dataset, args.data_dir).split("test")
    if x.shape[1] != model.params.n_inputs:
        raise FirstSpikeError(f"the model takes {model.params.n_inputs} inputs but {args.dataset} images have "
                              f"{x.shape[1]} pixels: choose the model's --dataset")
    times = model.encoding.encode(x[:args.samples], model.params.time_steps)
    clock_hz = round(args.clock * 1e6) if args.clock else None
    report = build.build_board(args.board, model, args.lanes, args.out, baud=args.baud, clock_hz=clock_hz,
                               golden=simulate(model, times), spike_times=times,
                               progress=lambda line: print(line, file=sys.stderr), seeds=args.seeds,
                               workers=args.workers, scheduler=args.scheduler)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    print("\n".join(report.lines(str(Path(args.out) / "report.json"))))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    sweep_module = hw("sweep", "sweep")
    check_output_folder(args.out, "--out")
    from .datasets import load_dataset
    from .golden import simulate

    boards = hw("build", "sweep").BOARDS
    # Each board runs the schedule asked for, or its own default (as `firstspike build` does).
    models = {board: resolve_model(args.model, args.schedule or boards[board].schedule)
              for board in dict.fromkeys(args.boards)}
    first = next(iter(models.values()))
    x, _ = load_dataset(args.dataset, args.data_dir).split("test")
    times = first.encoding.encode(x[:args.samples], first.params.time_steps)
    goldens = {schedule: simulate(model, times) for schedule, model in
               {model.params.schedule: model for model in models.values()}.items()}
    setups = {board: (model, goldens[model.params.schedule]) for board, model in models.items()}
    with progress(len(models) * len(args.lanes), "sweep", True, unit="build") as bar:
        def report(line: str) -> None:  # a pair built, or kept from an earlier sweep
            bar.update(1)
            bar.write(line, file=sys.stderr)
        rows = sweep_module.sweep(setups, args.lanes, args.out, baud=args.baud,
                                  clock_hz=round(args.clock * 1e6) if args.clock else None,
                                  spike_times=times, progress=report,
                                  workers=args.workers, scheduler=args.scheduler, resume=args.resume)
    plot = Path(args.out) / "sweep.png"
    sweep_module.plot_sweep(rows, plot)
    print(f"{'board':<11} {'P':>3} {'LUTs':>8} {'BRAM':>5} {'clock':>6} {'Fmax MHz':>9} {'cycles/inf':>11} "
          f"{'inf/s @ clock':>14} {'inf/s @ Fmax':>13}  critical path")
    for r in rows:
        if r["outcome"] != "built":
            print(f"{r['board']:<11} {r['lanes']:>3}  {r['schedule']}: {r['outcome']}")
            continue
        fmax = f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "-"
        rate = f"{r['inferences_per_second_at_fmax']:,.0f}" if r["inferences_per_second_at_fmax"] else "-"
        print(f"{r['board']:<11} {r['lanes']:>3} {r['luts']:>8,} {r['block_rams']:>5} {r['clock_mhz']:>6.2f} "
              f"{fmax:>9} {r['cycles_per_inference']:>11,.1f} {r['inferences_per_second_at_clock']:>14,.0f} "
              f"{rate:>13}  {r['critical_path']}")
    print(f"wrote {Path(args.out) / 'sweep.csv'} and {plot}")
    return 0


def _cmd_program(args: argparse.Namespace) -> int:
    ran = hw("program", "program").program(args.board, args.bitstream)
    print(f"programmed {args.board}: {ran}")
    return 0


# -- generate ----------------------------------------------------------------------

def _cmd_generate(args: argparse.Namespace) -> int:
    generate = hw("generate", "generate").generate
    check_output_folder(args.out, "--out")
    model = resolve_model(args.model, getattr(args, "schedule", None))
    model.params.with_lanes(args.lanes)
    verilog, manifest = generate(model, args.lanes, args.out)
    print(f"wrote {verilog} and {manifest} ({'-'.join(map(str, model.params.layer_sizes))}, P={args.lanes}, "
          f"model sha256 {model.digest()[:12]})")
    if args.lint:
        from firstspike.hw.lint import lint
        lint(verilog)
        print("verilator --lint-only -Wall: clean")
    return 0


# -- info, bench -------------------------------------------------------------------

def _cmd_info(args: argparse.Namespace) -> int:
    model = resolve_model(args.model, getattr(args, "schedule", None))
    p = model.params
    info = {
        "layer_sizes": list(p.layer_sizes),
        "layers": [describe(p.layer_shape(k)) for k in range(p.n_layers)],
        "time_steps": p.time_steps, "kernel": p.kernel.value,
        "weight_bits": p.weight_bits, "potential_bits": p.potential_bits, "decision": p.decision.value,
        "encoding": model.encoding.kind, "encoding_x_max": model.encoding.x_max,
        "sha256": model.digest(), "provenance": model.provenance,
    }
    print(json.dumps(info, indent=2))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import bench_golden, bench_model

    images, x_max = None, 255.0
    if args.model is not None:
        from .datasets import load_dataset
        model = resolve_model(args.model)
        name = args.inputs if args.inputs != "random" else model.provenance.get("dataset")
        if name not in DATASETS:
            raise FirstSpikeError(f"--model {args.model}: name its data set with --inputs (the model does not say)")
        data = load_dataset(name, args.data_dir)
        if data.test_x.shape[1] != model.params.n_inputs:
            raise FirstSpikeError(f"{name} images have {data.test_x.shape[1]} pixels; the model takes "
                                  f"{model.params.n_inputs} inputs")
        figures = bench_model(model, model.encoding.encode(data.test_x[:args.batch], model.params.time_steps))
        args.inputs = name
    elif args.inputs != "random":
        from .datasets import load_dataset
        data = load_dataset(args.inputs, args.data_dir)
        images, x_max = data.test_x, data.x_max
        if images.shape[1] != args.sizes[0]:
            raise FirstSpikeError(f"{args.inputs} images have {images.shape[1]} pixels; "
                                  f"--sizes must start with {images.shape[1]}")
    if args.model is None:
        figures = bench_golden(tuple(args.sizes), args.time_steps, args.batch, args.density,
                               images=images, x_max=x_max)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"golden model, {figures['network']} at T={figures['time_steps']}, batch {figures['batch']}, "
              f"{args.inputs} inputs (density {figures['input_density']:.2f}):")
        print(f"  {figures['inferences_per_second']:,.0f} inferences/s "
              f"({figures['microseconds_per_inference']:.1f} us each) on {figures['machine']}")
    return 0


def _cmd_cycles(args: argparse.Namespace) -> int:
    from .cyclebench import cycle_sweep, plot_cycle_sweep
    from .datasets import load_dataset
    from .golden import simulate

    if args.plot:
        check_output_path(args.plot, "--plot", (".png",))
    model = resolve_model(args.model, getattr(args, "schedule", None))
    data = load_dataset(args.dataset, args.data_dir)
    x, _ = data.split("test")
    small_times = model.encoding.encode(x[:args.samples], model.params.time_steps)
    from .synthetic import benchmark_network
    big_model, big_times, big_source = benchmark_network(args.seed, args.samples, args.data_dir)
    name = f"{args.model} ({'-'.join(map(str, model.params.layer_sizes))})"
    points, steps = [], {}
    for network, net, times in ((name, model, small_times), ("784-400-10", big_model, big_times)):
        for schedule in Schedule:
            result = simulate(net.with_schedule(schedule), times)
            points += cycle_sweep(network, result, args.lanes, args.clock_mhz)
            steps[network] = float(result.decision_step.mean())
    if args.json:
        print(json.dumps([p.as_dict() for p in points], indent=2))
    else:
        print(f"{name} on {len(small_times)} {data.name} test images; 784-400-10 (random weights, T=32) on "
              f"{len(big_times)} {big_source}. Cycles = the golden cycle function, which the RTL matches "
              "exactly; layered: layer after layer over all steps; stepped: step by step, stopping at the "
              "decision.")
        rate = "inf/s @ " + format(args.clock_mhz, "g") + " MHz"
        print(f"{'network':<24} {'P':>3} {'layered':>10} {'stepped':>10} {'ratio':>6} {'max':>8} {'ideal':>10} "
              f"{'/ideal':>6} {rate:>16}   (stepped: max, ideal, /ideal, inf/s)")
        layered = {(p.network, p.lanes): p for p in points if p.schedule == "layered"}
        for p in (p for p in points if p.schedule == "stepped"):
            old = layered[(p.network, p.lanes)]
            print(f"{p.network:<24} {p.lanes:>3} {old.cycles_mean:>10,.1f} {p.cycles_mean:>10,.1f} "
                  f"{p.cycles_mean / old.cycles_mean:>6.3f} {p.cycles_max:>8,} {p.ideal_mean:>10,.1f} "
                  f"{p.ratio:>6.3f} {p.inferences_per_second:>16,.0f}")
        for network, step in steps.items():
            print(f"{network}: the decision comes at step {step:.2f} on average")
    if args.plot:
        plot_cycle_sweep(points, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _cmd_bench_link(args: argparse.Namespace) -> int:
    from .datasets import load_dataset
    from .evaluate import check_inputs
    from .link.cost import link_cost

    model = resolve_model(args.model)
    data = load_dataset(args.dataset, args.data_dir)
    x, _ = data.split("test")
    check_inputs(model, x, data.name)
    times = model.encoding.encode(x[:args.samples], model.params.time_steps)
    cost = link_cost(model.params, times, args.baud)
    if args.json:
        print(json.dumps(cost.as_dict(), indent=2))
        return 0
    print(f"{args.model} on {cost.samples:,} {data.name} test images ({cost.spikes:.1f} input spikes each, "
          f"{model.params.n_inputs} inputs, T = {model.params.time_steps})")
    print(f"spike code  {cost.payload_bytes:,.1f} bytes per input, its bound {cost.bound_bytes:,.1f} "
          f"(log2 C(N, n) + n log2 T bits): {cost.ratio:.2f} x")
    print(f"on the wire {cost.request_bytes:,.1f} bytes out, {cost.reply_bytes:,.0f} back (framing included)")
    print(f"the link    {cost.inferences_per_second:,.0f} inferences/s at {cost.baud:,} baud")
    return 0


def _cmd_bench_rtl(args: argparse.Namespace) -> int:
    rtl_speed = hw("sim.speed", "bench-rtl").rtl_speed
    from .bench import machine_description
    from .datasets import load_dataset

    model = resolve_model(args.model, getattr(args, "schedule", None))
    x, _ = load_dataset(args.dataset, args.data_dir).split("test")
    workloads = [(model, model.encoding.encode(x[:args.samples], model.params.time_steps), args.lanes)]
    if args.big_samples:
        from .synthetic import benchmark_network
        big_model, big_times, _ = benchmark_network(args.seed, args.big_samples)
        workloads.append((big_model, big_times, args.big_lanes))
    rows = []
    for workload_model, times, lanes in workloads:
        for simulator in args.simulators:
            for harness in args.harnesses:
                print(f"bench-rtl: {simulator}, {harness} harness, "
                      f"{'-'.join(map(str, workload_model.params.layer_sizes))}, P={lanes}, {len(times)} samples ...",
                      file=sys.stderr)
                rows.append(rtl_speed(workload_model, times, lanes=lanes, simulator=simulator, harness=harness))
    if args.json:
        print(json.dumps({"machine": machine_description(), "runs": rows}, indent=2))
        return 0
    print(f"RTL simulation speed on {machine_description()} (builds excluded; every result checked "
          "against the golden model)")
    print(f"{'simulator':<10} {'harness':<7} {'network':<12} {'P':>3} {'samples':>7} {'inf/s':>9} {'cycles/s':>10} "
          f"{'cycles/inf':>10} {'first build+run s':>17}")
    for r in rows:
        print(f"{r['simulator']:<10} {r['harness']:<7} {r['network']:<12} {r['lanes']:>3} {r['samples']:>7} "
              f"{r['inferences_per_second']:>9,.1f} {r['cycles_per_second']:>10,.0f} {r['core_cycles_mean']:>10,.1f} "
              f"{r['seconds_first_build_and_run']:>17.1f}")
    return 0


# -- the parser ----------------------------------------------------------------------

def _rtl_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--simulator", choices=["icarus", "verilator"],
                   help="RTL simulator for --backend rtl (default: Icarus for short runs, Verilator from "
                        "200,000 simulated cycles, where its build pays for itself)")
    p.add_argument("--harness", choices=["native", "cocotb"], default="native",
                   help="with --backend rtl: native (a Verilog testbench, no Python per clock; default) or cocotb")
    p.add_argument("--board", choices=["icebreaker", "ulx3s"],
                   help="with --backend netlist: whose FPGA's synthesized netlist to simulate (default icebreaker)")
    p.add_argument("--waves", help="with --backend rtl: write a waveform (FST on Icarus, VCD on Verilator) "
                                   "of one sample to this file")
    p.add_argument("--waves-sample", type=int_in("--waves-sample", 0), default=0,
                   help="the sample --waves records (default 0)")


def _parser() -> Parser:
    parser = Parser(prog="firstspike", description="FPGA accelerator for time-to-first-spike SNNs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=Parser)
    lanes = int_in("--lanes", *LIMITS["lanes"])
    shipped = SHIPPED_NAMES

    p = commands.add_parser("eval", help="accuracy, spikes, synaptic ops and cycles on a data set")
    p.add_argument("--model", default="digits", help=f"model file, or a shipped model ({shipped}); default digits")
    model_and_data(p, model=False)
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--backend", default="golden", choices=sorted(BACKENDS))
    p.add_argument("--lanes", type=lanes, default=16, help="parallel neuron lanes P for the cycle count")
    schedule_option(p)
    p.add_argument("--limit", type=int_in("--limit", 1), help="only the first N samples")
    _rtl_options(p)
    cluster_options(p, "shards of samples (--backend rtl, netlist; under 100 samples one worker by default)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_eval)

    p = commands.add_parser("run", help="input spike times (.npy) -> classes and spike times (.npz)")
    p.add_argument("--model", default="digits", help=f"model file, or a shipped model ({shipped})")
    p.add_argument("--input", required=True, help=".npy of int spike times [batch, n_in], -1 = no spike")
    p.add_argument("--output", required=True, help=".npz to write")
    p.add_argument("--backend", default="golden", choices=sorted(BACKENDS))
    p.add_argument("--lanes", type=lanes, default=16, help="parallel neuron lanes P for the cycle count")
    schedule_option(p)
    _rtl_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_run)

    p = commands.add_parser("infer", help="inference through a device: a board, the simulated board or the "
                                          "emulator, checked against the golden model")
    p.add_argument("--device", default="sim",
                   help="serial port or socket:// URL of a board, 'sim' (the RTL behind its UART in a simulator, "
                        "through a socket bridge) or 'emulator' (protocol emulator); default sim")
    model_and_data(p)
    p.add_argument("--limit", type=int_in("--limit", 1), help="only the first N test samples")
    p.add_argument("--lanes", type=lanes, default=16, help="lanes P of the simulated board or emulator")
    schedule_option(p)
    p.add_argument("--simulator", choices=["icarus", "verilator"], help="for --device sim (default icarus)")
    p.add_argument("--load", action="store_true",
                   help="load the model through the link even if the device was built with it")
    p.add_argument("--baud", type=int_in("--baud", 300), default=3_000_000,
                   help="serial baud rate (boards); a device that answers at another usual rate is named")
    p.add_argument("--clock", type=float_in("--clock", 0.0, 1000.0, low_open=True), metavar="MHZ",
                   help="the core clock the device was built for; a different one in its INFO is noted")
    p.add_argument("--timeout", type=float_in("--timeout", 0.0, 3600.0, low_open=True), default=5.0,
                   help="seconds to wait for each reply")
    p.add_argument("--report", help="write a PNG report here (confusion matrix, a spike raster, cycles)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_infer)

    p = commands.add_parser("build", help="board build: Verilog, synthesis, place-and-route, bitstream, report")
    p.add_argument("--board", required=True, choices=["icebreaker", "ulx3s", "arty"])
    p.add_argument("--model", default="digits", help=f"model file, or a shipped model ({shipped})")
    p.add_argument("--lanes", type=lanes, default=1, help="parallel neuron lanes P")
    schedule_option(p, None, " (default; layered on the iCEBreaker, where the stepped core does not fit the UP5K)")
    p.add_argument("--out", required=True, help="build folder")
    p.add_argument("--baud", type=int_in("--baud", 300), default=3_000_000,
                   help="the link's baud rate (default 3,000,000: the USB bridges' fastest)")
    p.add_argument("--clock", type=float_in("--clock", 0.0, 1000.0, low_open=True), metavar="MHZ",
                   help="the core's clock, made by the FPGA's PLL from the board oscillator (the nearest it "
                        "reaches at or below); default: the board's (iCEBreaker 20, ULX3S 40, Arty 100)")
    model_and_data(p, "inputs for the cycles and bytes per inference in the report", model=False)
    p.add_argument("--samples", type=int_in("--samples", 1), default=500)
    p.add_argument("--seeds", type=int_in("--seeds", 1, 64), default=1,
                   help="place and route with nextpnr's seeds 1 ... N, one job each, and keep the fastest "
                        "(default 1: nextpnr's own seed)")
    cluster_options(p, "seeds' place-and-route jobs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_build)

    p = commands.add_parser("sweep", help="board builds over lanes x boards: CSV and a PNG of LUTs, block RAM, "
                                          "Fmax and inferences/s against P")
    p.add_argument("--boards", nargs="+", choices=["icebreaker", "ulx3s", "arty"], default=["icebreaker", "ulx3s"])
    p.add_argument("--lanes", type=lanes, nargs="+", default=[1, 2, 4, 8])
    schedule_option(p, None, " (default; layered on the iCEBreaker, where the stepped core does not fit the UP5K)")
    p.add_argument("--model", default="digits", help=f"model file, or a shipped model ({shipped})")
    p.add_argument("--out", required=True, help="folder for the builds, sweep.csv and sweep.png")
    p.add_argument("--baud", type=int_in("--baud", 300), default=3_000_000)
    p.add_argument("--clock", type=float_in("--clock", 0.0, 1000.0, low_open=True), metavar="MHZ",
                   help="the core's clock on every board (default: each board's)")
    model_and_data(p, model=False)
    p.add_argument("--samples", type=int_in("--samples", 1), default=500)
    cluster_options(p, "builds")
    p.add_argument("--resume", action="store_true", help="keep the pairs already in OUT/sweep.csv, build the rest")
    p.set_defaults(handler=_cmd_sweep)

    p = commands.add_parser("program", help="write a built bitstream into a board (openFPGALoader or iceprog)")
    p.add_argument("--board", required=True, choices=["icebreaker", "ulx3s", "arty"])
    p.add_argument("--bitstream", required=True, help="from firstspike build (firstspike_board.bin / .bit)")
    p.set_defaults(handler=_cmd_program)

    p = commands.add_parser("generate", help="Verilog and a JSON manifest of the core for a model")
    p.add_argument("--model", default="digits", help=f"model file, or a shipped model ({shipped})")
    p.add_argument("--lanes", type=lanes, default=16, help="parallel neuron lanes P")
    schedule_option(p)
    p.add_argument("--out", required=True, help="folder to write firstspike_core.v and manifest.json into")
    p.add_argument("--lint", action="store_true", help="also run verilator --lint-only -Wall on the result")
    p.set_defaults(handler=_cmd_generate)

    from .cli_train import add_commands
    add_commands(commands)

    p = commands.add_parser("info", help="a model file's parameters and provenance")
    p.add_argument("--model", default="digits", help=f"model file, or a shipped model ({shipped})")
    p.set_defaults(handler=_cmd_info)

    p = commands.add_parser("bench", help="golden-model throughput on a model (its data set's test images) "
                                          "or a random network")
    p.add_argument("--model", help="a model file or shipped name, run on its data set's test images "
                                   "(else a random network of --sizes)")
    p.add_argument("--sizes", type=int_in("--sizes", 1, 65535), nargs="+", default=[784, 400, 10])
    p.add_argument("--time-steps", type=int_in("--time-steps", *LIMITS["time_steps"]), default=32)
    p.add_argument("--batch", type=int_in("--batch", 1), default=4096)
    p.add_argument("--density", type=float_in("--density", 0.0, 1.0), default=0.5,
                   help="probability that a random input spikes")
    p.add_argument("--inputs", default="random", choices=["random", *DATASETS],
                   help="random spike times, or a data set's encoded test images")
    p.add_argument("--data-dir", help="folder with the IDX files (fashion-mnist, mnist)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_bench)

    p = commands.add_parser("cycles", help="cycles per inference vs lanes P for a model and 784-400-10, "
                                           "with a PNG plot")
    model_and_data(p, "the model's data set (test split)")
    p.add_argument("--lanes", type=lanes, nargs="+", default=[1, 4, 8, 16, 32, 64, 128, 256])
    p.add_argument("--samples", type=int_in("--samples", 1), default=1000, help="test images per network")
    p.add_argument("--clock-mhz", type=float_in("--clock-mhz", 0.0, low_open=True), default=100.0,
                   help="clock for the inferences/s column")
    p.add_argument("--seed", type=int, default=0, help="seed of the random 784-400-10 network")
    p.add_argument("--plot", help="write a PNG of cycles vs P to this .png file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_cycles)

    p = commands.add_parser("bench-link", help="bytes per inference on the link: the spike code against its "
                                               "bound, frames, inferences/s at a baud")
    model_and_data(p)
    p.add_argument("--samples", type=int_in("--samples", 1), default=2000, help="test images")
    p.add_argument("--baud", type=int_in("--baud", 1), default=3_000_000)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_bench_link)

    p = commands.add_parser("bench-rtl", help="RTL simulation speed (inferences/s, cycles/s) on Icarus "
                                              "and Verilator")
    model_and_data(p)
    p.add_argument("--samples", type=int_in("--samples", 1), default=200)
    p.add_argument("--lanes", type=lanes, default=16)
    schedule_option(p)
    p.add_argument("--simulators", nargs="+", choices=["icarus", "verilator"], default=["icarus", "verilator"])
    p.add_argument("--harnesses", nargs="+", choices=["native", "cocotb"], default=["native", "cocotb"],
                   help="native: the Verilog testbench, no Python per clock; cocotb: the Python testbench")
    p.add_argument("--big-samples", type=int_in("--big-samples", 0), default=20,
                   help="also time a random 784-400-10 network on this many inputs (0: skip)")
    p.add_argument("--big-lanes", type=lanes, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_bench_rtl)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    ended: list[int] = []
    try:
        args = _parser().parse_args(argv)
        args.argv = argv
        with ending_descendants_on_interrupt() as ended:
            return args.handler(args)
    except UsageError as error:
        print(f"{error}", file=sys.stderr)
        return 2
    except FirstSpikeError as error:
        print(f"firstspike: error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # parameter checks (e.g. CoreParams) raised on user values
        print(f"firstspike: error: {error}", file=sys.stderr)
        return 2
    except MemoryError as error:
        print(f"firstspike: error: not enough memory for this run ({error or 'allocation failed'}); "
              "try a smaller batch or --limit", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"firstspike: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        count = sum(ended) + end_descendants()
        print("firstspike: interrupted" + (f"; ended {count} programs it had started" if count else ""),
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
