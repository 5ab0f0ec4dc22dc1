"""The model file: round trip, numpy-only readability, and a clear error for each defect."""

from __future__ import annotations

import json

import numpy as np
import pytest

from firstspike.sw import CoreParams, Kernel, ModelFileError, load_model, save_model
from firstspike.sw.files import OutputPathError
from firstspike.sw.models import shipped_model_path
from firstspike.sw.synthetic import random_model


@pytest.fixture
def model():
    params = CoreParams((6, 4, 3), time_steps=8, kernel=Kernel.RAMP, weight_bits=6, potential_bits=12)
    return random_model(params, np.random.default_rng(0))


def write_with(path, model, **changes):
    """Save ``model``, then rewrite the archive with ``changes`` (None deletes a key)."""
    save_model(model, path)
    arrays = dict(np.load(path))
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(path, **arrays)
    return path


def test_round_trip_preserves_every_array_and_the_digest(tmp_path, model):
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.params == model.params
    assert loaded.digest() == model.digest()
    for a, b in zip(loaded.layers, model.layers):
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.thresholds, b.thresholds)
        assert np.array_equal(a.initial_potentials, b.initial_potentials)


def test_file_reads_with_numpy_alone_and_no_pickle(tmp_path, model):
    save_model(model, tmp_path / "m.npz")
    archive = np.load(tmp_path / "m.npz", allow_pickle=False)
    assert str(archive["format"]) == "firstspike-model" and int(archive["format_version"]) == 2
    assert archive["weights_0"].shape == (6, 4) and np.issubdtype(archive["weights_0"].dtype, np.integer)
    assert str(archive["kernel"]) == "ramp"
    assert isinstance(json.loads(str(archive["provenance"])), dict)


def test_shipped_digits_model_loads_and_names_its_command():
    model = load_model(shipped_model_path("digits"))
    assert model.params.layer_sizes[0] == 64 and model.params.layer_sizes[-1] == 10
    assert model.provenance["command"].startswith("firstspike train")
    assert model.provenance["accuracy"] >= 0.95


@pytest.mark.parametrize("changes, message", [
    ({"weights_1": np.full((4, 3), 40)}, "weights_1[0, 0] = 40 is outside the 6-bit signed range [-32, 31]"),
    ({"weights_0": np.zeros((6, 4), np.float32)}, "weights_0 must hold integers, found float32"),
    ({"thresholds_0": np.zeros(5, np.int64)}, "thresholds_0 must have shape [4] (from layer_sizes [6, 4, 3]), found [5]"),
    ({"initial_potentials_1": np.full(3, 5000)}, "initial_potentials_1[0] = 5000 is outside the 12-bit signed range [-2048, 2047]"),
    ({"time_steps": None}, "missing 'time_steps' (every model file has it)"),
    ({"weights_1": None}, "missing 'weights_1' (layer_sizes has 2 layers)"),
    ({"kernel": np.array("exp")}, "'kernel' is 'exp'; it must be one of 'step', 'ramp'"),
    ({"format_version": np.array(7)}, "format version 7 is not supported (this FirstSpike reads versions 1, 2)"),
    ({"format": np.array("other")}, "'format' is 'other', expected 'firstspike-model'"),
    ({"weight_bits": np.array(1)}, "weight_bits must be an integer between 2 and 16, not 1"),
    ({"time_steps": np.array(2.5)}, "'time_steps' must be an integer, found float64"),
    ({"provenance": np.array("{oops")}, "'provenance' is not valid JSON"),
    ({"encoding_x_max": np.array(-1.0)}, "encoding x_max must be a positive finite number, not -1.0"),
])
def test_loader_names_exactly_what_is_wrong(tmp_path, model, changes, message):
    path = write_with(tmp_path / "bad.npz", model, **changes)
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_missing_file_and_non_archive_are_named(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "absent.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ModelFileError, match=r"junk.npz: not a model file \(not an .npz archive\)$"):
        load_model(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ModelFileError, match="holds a single array"):
        load_model(tmp_path / "single.npy")


def test_failed_save_leaves_the_old_file_whole(tmp_path, model, monkeypatch):
    path = tmp_path / "m.npz"
    save_model(model, path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OutputPathError, match=r"m.npz: could not write it \(disk full\)$"):
        save_model(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


@pytest.mark.slow
def test_shipped_digits_models_command_trains_the_same_network_as_well_again(tmp_path):
    """Its command trains the same network to within a point of its accuracy. Not bit for
    bit on every machine: the CPU's vector units and the libraries' kernels change the last
    bits of float sums, and 80 epochs of training amplify them (a machine of this project's
    CI trained other integers from the same command, 2026-12-03)."""
    import shlex

    from firstspike.sw.cli import main
    shipped = load_model(shipped_model_path("digits"))
    argv = shlex.split(shipped.provenance["command"])[1:]
    argv[argv.index("--out") + 1] = str(tmp_path / "again.npz")
    assert main(argv + ["--quiet"]) == 0
    again = load_model(tmp_path / "again.npz")
    assert again.params == shipped.params and again.encoding == shipped.encoding
    assert abs(again.provenance["accuracy"] - shipped.provenance["accuracy"]) <= 0.01
    assert again.provenance["exact_forward_agreement"] == 1.0


@pytest.fixture
def conv_model():
    from firstspike.sw.topology import Conv2d, Dense, MapShape, Pooling, PoolKind, stack
    sizes, shapes = stack(MapShape(2, 9, 8), [lambda m: Conv2d(m, 3, (3, 2), (2, 1), (1, 0)),
                                              lambda m: Dense(4, m, Pooling(2, PoolKind.MAX))])
    params = CoreParams(sizes, time_steps=8, weight_bits=6, potential_bits=12, shapes=shapes)
    return random_model(params, np.random.default_rng(0))


def test_conv_models_round_trip_with_their_shapes(tmp_path, conv_model):
    save_model(conv_model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.params == conv_model.params and loaded.digest() == conv_model.digest()
    archive = np.load(tmp_path / "m.npz")
    assert str(archive["layer_kind_0"]) == "conv2d" and archive["kernel_0"].tolist() == [3, 2]
    assert str(archive["pool_kind_1"]) == "max" and archive["weights_0"].shape == (2, 3, 2, 3)


def test_a_layer_shape_changes_the_digest(conv_model):
    from dataclasses import replace
    shapes = conv_model.params.shapes
    other = replace(shapes[1], pool=replace(shapes[1].pool, kind=type(shapes[1].pool.kind)("sum")))
    params = replace(conv_model.params, shapes=(shapes[0], other))
    assert type(conv_model)(params, conv_model.layers, conv_model.encoding).digest() != conv_model.digest()


def test_version_1_files_load_as_dense_networks(tmp_path, model):
    path = write_with(tmp_path / "v1.npz", model, format_version=np.array(1), layer_kind_0=None, layer_kind_1=None)
    loaded = load_model(path)
    assert loaded.params.shapes == () and loaded.digest() == model.digest()


@pytest.mark.parametrize("changes, message", [
    ({"layer_kind_0": np.array("pool")}, "'layer_kind_0' is 'pool'; it must be one of 'dense', 'conv2d'"),
    ({"layer_kind_0": None}, "missing 'layer_kind_0' (every model file has it)"),
    ({"kernel_0": np.array([3, 2, 1])}, "'kernel_0' must be 2 integers, found int64 of shape [3]"),
    ({"stride_0": None}, "missing 'stride_0' (format version 2 requires it for this layer)"),
    ({"input_map_0": np.array([2, 9, 7])}, "layer 0's input map [2, 9, 7] holds 126 neurons, but layer_sizes[0] is 144"),
    ({"channels_0": np.array(0)}, "layer 0: channels must be an integer between 1 and 65535, not 0"),
    ({"pool_kind_1": np.array("mean")}, "'pool_kind_1' is 'mean'; it must be one of 'sum', 'max'"),
    ({"pool_1": np.array(9)}, "layer 1: a 9x9 pooling needs a map of at least 9x9, not 5x7"),
    ({"weights_0": np.zeros((2, 3, 3, 3), np.int8)},
     "weights_0 must have shape [2, 3, 2, 3] (from layer 0's conv2d shape), found [2, 3, 3, 3]"),
    ({"thresholds_0": np.zeros(4, np.int8)}, "thresholds_0 must have shape [3] (from layer 0's conv2d shape), found [4]"),
])
def test_loader_names_the_bad_layer_shape_field(tmp_path, conv_model, changes, message):
    path = write_with(tmp_path / "bad.npz", conv_model, **changes)
    with pytest.raises(ModelFileError) as error:
        load_model(path)
    assert message in str(error.value)
