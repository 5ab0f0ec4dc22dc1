"""NIR import and export: graphs built with ``nir`` itself, read the TTFS way."""

from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from firstspike.sw.cli import main  # noqa: E402
from firstspike.sw.errors import FirstSpikeError  # noqa: E402
from firstspike.sw.model import load_model  # noqa: E402
from firstspike.sw.nirgraph import NIRImportError, export_nir, import_nir, write_nir  # noqa: E402
from firstspike.sw.params import CoreParams, Kernel  # noqa: E402
from firstspike.sw.synthetic import random_model  # noqa: E402

UNIT = 0.02  # NIR units per integer step in the hand-built graphs


def integer_layers(rng, sizes):
    """Integer weights (each layer's largest magnitude exactly 127), thresholds, biases."""
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        w = rng.integers(-127, 128, (n_in, n_out))
        w[0, 0] = 127
        layers.append((w, rng.integers(50, 400, n_out), rng.integers(-40, 40, n_out)))
    return layers


def chain(layers, *, ramp=False, linear_first=False, r=2.0):
    """Input -> Affine/Linear -> [I] -> IF ... -> Output, as snnTorch and Norse name nodes."""
    n_in = layers[0][0].shape[0]
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    edges, previous = [], "input"
    for k, (w, theta, bias) in enumerate(layers):
        n_out = w.shape[1]
        if linear_first and k == 0:
            synapse = nir.Linear(weight=w.T * UNIT / r)
        else:
            synapse = nir.Affine(weight=w.T * UNIT / r, bias=bias * UNIT)
        steps = [(f"fc{k}", synapse)]
        if ramp:
            steps.append((f"syn{k}", nir.I(r=np.ones(n_out))))
        steps.append((f"lif{k}", nir.IF(r=np.full(n_out, r), v_threshold=theta * UNIT)))
        for name, node in steps:
            nodes[name] = node
            edges.append((previous, name))
            previous = name
    nodes["output"] = nir.Output(output_type={"output": np.array([layers[-1][0].shape[1]])})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


@pytest.mark.parametrize("ramp", [False, True], ids=["step", "ramp"])
def test_import_reads_weights_gains_thresholds_and_biases_exactly(ramp):
    rng = np.random.default_rng(1)
    layers = integer_layers(rng, (12, 9, 4))
    model, report = import_nir(chain(layers, ramp=ramp), time_steps=10, x_max=1.0)
    assert model.params.kernel is (Kernel.RAMP if ramp else Kernel.STEP)
    assert model.params.layer_sizes == (12, 9, 4)
    for layer, (w, theta, bias) in zip(model.layers, layers):
        np.testing.assert_array_equal(layer.weights, w)
        np.testing.assert_array_equal(layer.thresholds, theta)
        np.testing.assert_array_equal(layer.initial_potentials, bias)
    assert not report.exact
    assert all(abs(r.scale - 1 / UNIT) < 1e-6 and r.weight_rms_error < 1e-9 for r in report.layers)


def test_a_linear_node_means_zero_initial_potentials():
    layers = integer_layers(np.random.default_rng(2), (5, 3))
    model, _ = import_nir(chain(layers, linear_first=True), time_steps=4, x_max=1.0)
    assert not model.layers[0].initial_potentials.any()


def test_import_quantizes_float_weights_and_reports_rounding_and_clipping():
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.1, (30, 6))
    w[4, 2] = 5.0  # one outlier
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([30])}), nir.Affine(weight=w.T, bias=np.zeros(6)),
        nir.IF(r=np.ones(6), v_threshold=np.full(6, 1e6)), nir.Output(output_type={"output": np.array([6])}))
    whole, report = import_nir(graph, time_steps=8, x_max=1.0)
    assert whole.layers[0].weights[4, 2] == 127
    assert report.layers[0].weights_clipped == 0 and report.layers[0].weight_rms_error > 0
    assert report.layers[0].thresholds_clipped == 6  # 1e6 * scale is far beyond 16 bits
    clipped, report = import_nir(graph, time_steps=8, x_max=1.0, clip_percentile=99.0)
    assert report.layers[0].weights_clipped >= 1
    assert np.abs(clipped.layers[0].weights).astype(bool).sum() > np.abs(whole.layers[0].weights).astype(bool).sum()
    assert f"clipped: {report.layers[0].weights_clipped} weights" in report.layers[0].line()


@pytest.mark.parametrize("kernel", [Kernel.STEP, Kernel.RAMP], ids=["step", "ramp"])
def test_export_then_import_gives_back_the_same_model(kernel, tmp_path):
    rng = np.random.default_rng(4)
    model = random_model(CoreParams((11, 7, 5, 3), 9, kernel, weight_bits=6, potential_bits=12), rng)
    write_nir(model, tmp_path / "m.nir")
    back, report = import_nir(tmp_path / "m.nir")
    assert report.exact and report.overrides == ()
    assert back.digest() == model.digest()
    assert back.encoding == model.encoding


def test_parameters_given_for_an_exported_graph_replace_its_own_and_are_reported(tmp_path):
    model = random_model(CoreParams((11, 7, 3), 9, Kernel.STEP, weight_bits=6, potential_bits=12),
                         np.random.default_rng(6))
    write_nir(model, tmp_path / "m.nir")
    back, report = import_nir(tmp_path / "m.nir", time_steps=5, potential_bits=14, x_max=model.encoding.x_max)
    assert report.overrides == ("time_steps 9 -> 5", "potential_bits 12 -> 14")
    assert (back.params.time_steps, back.params.potential_bits, back.params.weight_bits) == (5, 14, 6)
    assert all(np.array_equal(a.weights, b.weights) for a, b in zip(back.layers, model.layers))


def test_exported_graph_without_firstspike_metadata_still_imports_to_the_same_integers():
    rng = np.random.default_rng(5)
    model = random_model(CoreParams((8, 6, 3), 7, Kernel.STEP, weight_bits=8), rng)
    for k, layer in enumerate(model.layers):  # largest magnitude 127: the import's scale is 1
        weights = np.clip(layer.weights, -127, 127)
        weights[0, 0] = 127
        model = model.replace_layer(k, type(layer)(weights, layer.thresholds, layer.initial_potentials))
    graph = export_nir(model)
    graph.metadata = {}
    back, report = import_nir(graph, time_steps=7, x_max=1.0, weight_bits=8)
    assert not report.exact
    assert back.digest() == model.digest()


def graph_with(extra_node):
    """Built without NIR's own type check, so that FirstSpike's checks are what answers."""
    return nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([3])}), nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
        extra_node, nir.Output(output_type={"output": np.array([2])}), type_check=False)


@pytest.mark.parametrize("graph, message", [
    (graph_with(nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2))),
     r"node 'lif' \(LIF\) leaks \(tau = 1"),
    (graph_with(nir.CubaLIF(tau_syn=np.ones(2), tau_mem=np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
                            v_threshold=np.ones(2))), r"node 'cubalif' \(CubaLIF\) is not supported"),
    (graph_with(nir.IF(r=np.ones(3), v_threshold=np.ones(3))), "r has 3 values for 2 neurons"),
    (graph_with(nir.IF(r=np.ones(2), v_threshold=np.array([1.0, np.nan]))), "not finite"),
    (nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([4])}),
                            nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
                            nir.IF(r=np.ones(2), v_threshold=np.ones(2)),
                            nir.Output(output_type={"output": np.array([2])}), type_check=False),
     r"weight shape \(2, 3\) does not take 4 inputs"),
    (nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([3])}),
                            nir.Output(output_type={"output": np.array([3])})),
     "no Affine/Linear -> IF layer"),
])
def test_unsupported_graphs_are_refused_naming_the_node(graph, message):
    with pytest.raises(NIRImportError, match=message):
        import_nir(graph, time_steps=4, x_max=1.0)


def test_a_non_leaky_lif_as_snntorch_writes_leaky_beta_1_reads_as_if():
    """snnTorch exports Leaky(beta=1) as LIF(tau=dt/(1-beta)=inf, r=tau/dt=inf, v_leak=0)."""
    rng = np.random.default_rng(8)
    layers = integer_layers(rng, (6, 4, 3))
    graph = chain(layers, r=1.0)
    for k, (w, theta, _) in enumerate(layers):
        n = w.shape[1]
        with np.errstate(divide="ignore"):
            tau = np.full(n, 1e-4) / (1 - np.ones(n))
        graph.nodes[f"lif{k}"] = nir.LIF(tau=tau, r=tau / 1e-4, v_leak=np.zeros(n), v_threshold=theta * UNIT)
    model, _ = import_nir(graph, time_steps=6, x_max=1.0)
    expected, _ = import_nir(chain(layers, r=1.0), time_steps=6, x_max=1.0)
    assert model.digest() == expected.digest()


def test_branching_graphs_are_refused():
    graph = graph_with(nir.IF(r=np.ones(2), v_threshold=np.ones(2)))
    graph.nodes["other"] = nir.Output(output_type={"output": np.array([2])})
    graph.edges.append(("if", "other"))
    with pytest.raises(NIRImportError, match="has 2 successors"):
        import_nir(graph, time_steps=4, x_max=1.0)


def test_mixed_synapses_are_refused():
    layers = integer_layers(np.random.default_rng(6), (4, 3, 2))
    graph = chain(layers, ramp=True)
    # Bypass the second layer's I node.
    graph.edges.remove(("fc1", "syn1"))
    graph.edges.remove(("syn1", "lif1"))
    graph.edges.append(("fc1", "lif1"))
    del graph.nodes["syn1"]
    with pytest.raises(NIRImportError, match="same synapse"):
        import_nir(graph, time_steps=4, x_max=1.0)


def test_a_file_that_is_not_nir_is_named(tmp_path):
    path = tmp_path / "junk.nir"
    path.write_bytes(b"\x89HDF junk" * 10)
    with pytest.raises(NIRImportError, match="junk.nir: not a NIR graph"):
        import_nir(path, time_steps=4, x_max=1.0)
    with pytest.raises(FirstSpikeError, match="no such file"):
        import_nir(tmp_path / "missing.nir", time_steps=4, x_max=1.0)


def test_cli_export_and_import_round_trip(tmp_path, capsys):
    assert main(["export", "--model", "digits", "--out", str(tmp_path / "d.nir")]) == 0
    assert main(["import", str(tmp_path / "d.nir"), "--out", str(tmp_path / "d.npz"), "--x-max", "16"]) == 0
    out = capsys.readouterr().out
    assert "integers restored exactly" in out
    from firstspike.sw.models import shipped_model_path
    assert load_model(tmp_path / "d.npz").digest() == load_model(shipped_model_path("digits")).digest()


def test_cli_import_needs_the_encoding(tmp_path, capsys):
    graph = chain(integer_layers(np.random.default_rng(7), (4, 2)))
    nir.write(tmp_path / "g.nir", graph)
    assert main(["import", str(tmp_path / "g.nir"), "--out", str(tmp_path / "g.npz")]) == 2
    assert "--x-max" in capsys.readouterr().err
    assert not (tmp_path / "g.npz").exists()
    assert main(["import", str(tmp_path / "g.nir"), "--out", str(tmp_path / "g.npz"), "--x-max", "1",
                 "--time-steps", "5"]) == 0
    assert "scale 50" in capsys.readouterr().out
