"""NIR with convolutions: a real snnTorch CNN export read the TTFS way, FirstSpike's own
conv graphs round trip exactly, and what FirstSpike cannot run is refused by node."""

from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from firstspike.sw.errors import FirstSpikeError  # noqa: E402
from firstspike.sw.golden import simulate  # noqa: E402
from firstspike.sw.nirgraph import NIRImportError, export_nir, import_nir  # noqa: E402
from firstspike.sw.params import CoreParams, Kernel  # noqa: E402
from firstspike.sw.synthetic import random_model  # noqa: E402
from firstspike.sw.topology import Conv2d, Dense, MapShape, Pooling, PoolKind, stack  # noqa: E402


def conv_model(kernel: Kernel = Kernel.STEP, pool: PoolKind = PoolKind.SUM):
    sizes, shapes = stack(MapShape(2, 13, 12), [
        lambda m: Conv2d(m, 3, (3, 3), 1, 1), lambda m: Conv2d(m, 4, (3, 3), (2, 1), (0, 1), Pooling(2, pool)),
        lambda m: Dense(5, m, Pooling(2, pool)), lambda m: Dense(3)])
    params = CoreParams(sizes, time_steps=6, kernel=kernel, shapes=shapes)
    return random_model(params, np.random.default_rng(4))


@pytest.mark.parametrize("kernel", [Kernel.STEP, Kernel.RAMP], ids=lambda k: k.value)
def test_conv_models_round_trip_through_nir_exactly(kernel, tmp_path):
    model = conv_model(kernel)
    graph = export_nir(model)
    kinds = [type(graph.nodes[name]).__name__ for name in ("conv0", "pool1", "conv1", "pool2", "flatten2", "affine2")]
    assert kinds == ["Conv2d", "SumPool2d", "Conv2d", "SumPool2d", "Flatten", "Affine"]
    nir.write(tmp_path / "m.nir", graph)
    back, report = import_nir(tmp_path / "m.nir")
    assert report.exact and back.digest() == model.digest()


def test_max_pooling_has_no_nir_node_and_export_says_which_layer():
    with pytest.raises(FirstSpikeError, match="layer 1 reads its input through max pooling"):
        export_nir(conv_model(pool=PoolKind.MAX))


def test_non_square_kernels_are_refused_on_export_as_nir_cannot_shape_them():
    sizes, shapes = stack(MapShape(1, 6, 6), [lambda m: Conv2d(m, 2, (2, 3)), lambda m: Dense(3)])
    model = random_model(CoreParams(sizes, time_steps=4, shapes=shapes), np.random.default_rng(0))
    with pytest.raises(FirstSpikeError, match="layer 0's kernel is 2x3"):
        export_nir(model)


def test_a_graph_of_nir_nodes_reads_as_the_same_integers_with_average_pooling_in_the_weights():
    """AvgPool2d divides by p²: the next layer's weights take the 1/p² before quantization."""
    model = conv_model()
    graph = export_nir(model)
    graph.metadata = {}
    graph.nodes["pool1"] = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                         padding=np.array([0, 0]))
    graph.nodes["conv1"].weight = graph.nodes["conv1"].weight * 4  # so that the average's 1/4 gives them back
    imported, report = import_nir(graph, time_steps=6, x_max=1.0, weight_bits=8, potential_bits=16)
    assert not report.exact
    assert [s.kind for s in imported.params.shapes] == ["conv2d", "conv2d", "dense", "dense"]
    assert imported.params.shapes[1].pool == Pooling(2, PoolKind.SUM)
    # Layer 1 is rescaled to spend the 8-bit range: had the average's 1/4 been lost, its
    # scale (and so its thresholds) would be 4 times smaller.
    scale = 127 / np.abs(model.layers[1].weights).max()
    assert report.layers[1].scale == pytest.approx(scale)
    assert np.array_equal(imported.layers[1].thresholds, np.round(model.layers[1].thresholds * scale))


def _replace(graph, name, node):
    graph.nodes[name] = node
    graph.metadata = {}
    return graph


@pytest.mark.parametrize("change, message", [
    (lambda g: _replace(g, "conv0", nir.Conv2d(input_shape=(13, 12), weight=g.nodes["conv0"].weight, stride=1,
                                               padding=1, dilation=2, groups=1, bias=g.nodes["conv0"].bias)),
     r"node 'conv0': dilation \(2, 2\) is not supported"),
    (lambda g: _replace(g, "conv0", nir.Conv2d(input_shape=(13, 12), weight=g.nodes["conv0"].weight, stride=1,
                                               padding=1, dilation=1, groups=2, bias=g.nodes["conv0"].bias)),
     "node 'conv0': groups = 2 is not supported"),
    (lambda g: _replace(g, "pool1", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]),
                                                  padding=np.array([0, 0]))),
     "node 'pool1': FirstSpike pools square windows at a stride of their size"),
    (lambda g: _replace(g, "if0", nir.LIF(tau=np.full((3, 13, 12), 5.0), r=np.ones((3, 13, 12)),
                                          v_leak=np.zeros((3, 13, 12)), v_threshold=np.ones((3, 13, 12)))),
     r"node 'if0' \(LIF\) leaks"),
    (lambda g: _replace(g, "if0", nir.IF(r=np.ones((3, 13, 12)), v_threshold=np.arange(468.0).reshape(3, 13, 12))),
     "node 'if0': v_threshold differs between positions of one channel"),
    (lambda g: _replace(g, "flatten2", nir.Delay(delay=np.ones(1))),
     r"node 'flatten2' \(Delay\) is not supported"),
])
def test_what_firstspike_cannot_run_is_refused_naming_the_node(change, message):
    graph = change(export_nir(conv_model()))
    with pytest.raises(NIRImportError, match=message):
        import_nir(graph, time_steps=6, x_max=1.0)


def test_an_snntorch_cnn_export_imports_as_conv_layers_with_pooling():
    """A real export: snnTorch's export_to_nir on Conv2d, AvgPool2d, Flatten, Linear and
    non-leaky Leaky neurons (per-neuron beta, which snnTorch's type inference needs)."""
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    from snntorch.export_nir import export_to_nir

    def leaky(*shape, output=False):
        return snn.Leaky(beta=torch.ones(*shape), threshold=torch.full(shape, 0.5), init_hidden=True, output=output)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), leaky(4, 8, 8),
        torch.nn.AvgPool2d((2, 2), stride=(2, 2)),
        torch.nn.Conv2d(4, 6, 3, stride=2, padding=1), leaky(6, 2, 2),
        torch.nn.Flatten(),
        torch.nn.Linear(6 * 2 * 2, 3), leaky(3, output=True))
    with np.errstate(divide="ignore"):  # snnTorch writes beta = 1 as tau = dt / 0
        graph = export_to_nir(net, torch.zeros(1, 1, 8, 8), ignore_dims=[0])
    model, report = import_nir(graph, time_steps=8, x_max=16.0)
    shapes = model.params.shapes
    assert [s.kind for s in shapes] == ["conv2d", "conv2d", "dense"]
    assert shapes[0].input_map == MapShape(1, 8, 8) and shapes[0].padding == (1, 1)
    assert shapes[1].pool == Pooling(2, PoolKind.SUM) and shapes[1].stride == (2, 2)
    assert model.params.layer_sizes == (64, 256, 24, 3)
    # The integers are the float weights on each layer's grid; AvgPool2d's 1/4 is in layer 1's.
    w0 = net[0].weight.detach().numpy().transpose(1, 2, 3, 0)
    scale0 = report.layers[0].scale
    assert np.array_equal(model.layers[0].weights, np.round(w0 * scale0).astype(np.int64))
    assert np.array_equal(model.layers[0].thresholds, np.round(np.full(4, 0.5) * scale0).astype(np.int64))
    w1 = net[3].weight.detach().numpy().transpose(1, 2, 3, 0) / 4
    assert np.array_equal(model.layers[1].weights, np.round(w1 * report.layers[1].scale).astype(np.int64))
    simulate(model, np.random.default_rng(0).integers(-1, 8, (4, 64)))  # and the golden model runs it
