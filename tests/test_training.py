"""Training: it learns, its methods do what they claim, and what it measured on its own
integer forward pass is what the golden model (and so the hardware) computes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra")

from cases import saturating_case, tie_case  # noqa: E402

from firstspike.sw.datasets import load_dataset  # noqa: E402
from firstspike.sw.errors import FirstSpikeError  # noqa: E402
from firstspike.sw.golden import simulate  # noqa: E402
from firstspike.sw.params import CoreParams, Kernel  # noqa: E402
from firstspike.sw.synthetic import random_model, random_spike_times  # noqa: E402
from firstspike.sw.train.config import TrainConfig  # noqa: E402
from firstspike.sw.train.exact import exact_forward  # noqa: E402
from firstspike.sw.train.loop import train  # noqa: E402

SHORT = TrainConfig(hidden=(48,), epochs=6, batch_size=64)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module", params=[Kernel.STEP, Kernel.RAMP], ids=["step", "ramp"])
def trained(request, digits):
    config = replace(SHORT, kernel=request.param)
    return config, train(digits.train_x, digits.train_y, x_max=digits.x_max, config=config, provenance={})


def assert_same_as_golden(model, spike_times):
    golden = simulate(model, spike_times)
    exact = exact_forward(model, spike_times)
    for layer, (mine, theirs) in enumerate(zip(exact.spike_times, golden.spike_times)):
        differ = np.argwhere(mine != theirs)
        assert len(differ) == 0, f"layer {layer}: first difference at (sample, neuron) {tuple(differ[0])}"
    np.testing.assert_array_equal(exact.output_potentials[-1], golden.potentials[-1])
    np.testing.assert_array_equal(exact.decision, golden.decision)
    np.testing.assert_array_equal(exact.fired, golden.fired)


def test_training_learns_digits_well_above_chance(trained, digits):
    config, result = trained
    golden = simulate(result.model, result.model.encoding.encode(digits.test_x, config.time_steps))
    accuracy = np.mean(golden.decision == digits.test_y)
    assert accuracy > 0.80, f"{config.kernel.value}: {accuracy:.3f}"
    assert result.history[-1]["ce"] < result.history[0]["ce"]


def test_training_forward_pass_agrees_with_golden_on_the_whole_test_split(trained, digits):
    config, result = trained
    assert_same_as_golden(result.model, result.model.encoding.encode(digits.test_x, config.time_steps))


@pytest.mark.parametrize("kernel", [Kernel.STEP, Kernel.RAMP], ids=["step", "ramp"])
@pytest.mark.parametrize("seed", range(4))
def test_integer_forward_pass_agrees_with_golden_on_random_networks(kernel, seed):
    rng = np.random.default_rng(seed)
    params = CoreParams((23, 17, 9, 5), time_steps=int(rng.integers(2, 20)), kernel=kernel,
                        weight_bits=int(rng.integers(3, 9)), potential_bits=int(rng.integers(9, 14)))
    model = random_model(params, rng, firing=float(rng.uniform(0.2, 0.8)))
    assert_same_as_golden(model, random_spike_times(params, rng, 64, density=float(rng.uniform(0.2, 0.9))))


@pytest.mark.parametrize("case", [saturating_case, tie_case], ids=["saturation", "ties"])
@pytest.mark.parametrize("kernel", [Kernel.STEP, Kernel.RAMP], ids=["step", "ramp"])
def test_integer_forward_pass_agrees_with_golden_on_edge_cases(case, kernel):
    assert_same_as_golden(*case(kernel))


@pytest.mark.parametrize("kernel", [Kernel.STEP, Kernel.RAMP], ids=["step", "ramp"])
@pytest.mark.parametrize("seed", range(2))
def test_integer_forward_pass_agrees_with_golden_on_random_conv_networks(kernel, seed):
    from firstspike.sw.topology import Conv2d, Dense, MapShape, Pooling, PoolKind, stack
    rng = np.random.default_rng(seed)
    sizes, shapes = stack(MapShape(2, 9, 7), [
        lambda m: Conv2d(m, 3, (3, 3), 1, 1), lambda m: Conv2d(m, 4, (3, 2), (2, 1), (1, 0), Pooling(2)),
        lambda m: Dense(6, m, Pooling(2, PoolKind.MAX)), lambda m: Dense(4)])
    params = CoreParams(sizes, time_steps=int(rng.integers(3, 12)), kernel=kernel, weight_bits=5,
                        potential_bits=int(rng.integers(9, 14)), shapes=shapes)
    model = random_model(params, rng, firing=float(rng.uniform(0.2, 0.6)))
    assert_same_as_golden(model, random_spike_times(params, rng, 32, density=float(rng.uniform(0.2, 0.9))))


@pytest.mark.parametrize("pool", ["avg"])  # max pooling's forward pass: the random conv networks above
def test_a_conv_network_trains_and_exports_to_the_integers_the_golden_model_runs(digits, pool):
    config = replace(SHORT, conv=((8, 3, 1),), pool=pool, hidden=(32,), epochs=4, spike_penalty=0.05)
    result = train(digits.train_x, digits.train_y, x_max=digits.x_max, config=config, provenance={},
                   image_shape=digits.image_shape)
    model = result.model
    assert [s.kind for s in model.params.shapes] == ["conv2d", "dense", "dense"]
    assert model.layers[0].weights.shape == (1, 3, 3, 8) and model.layers[0].thresholds.shape == (8,)
    assert model.params.shapes[1].pool.kind.value == {"avg": "sum", "max": "max"}[pool]
    times = model.encoding.encode(digits.test_x, config.time_steps)
    assert_same_as_golden(model, times)
    assert np.mean(simulate(model, times).decision == digits.test_y) > 0.4
    assert result.history[-1]["ce"] < result.history[0]["ce"]


def test_the_first_spike_latchs_running_maximum_has_cummaxs_values_and_gradients():
    """The loop that replaced ``torch.cummax`` (a third of a CNN training step) changes no
    value and no gradient: a tie passes the gradient to the later step, as cummax does."""
    from firstspike.sw.train.network import running_max
    generator = torch.Generator().manual_seed(3)
    for shape in ((5, 16, 7), (2, 1, 3), (4, 9, 2, 5)):
        x = torch.randint(-2, 3, shape, generator=generator).float().requires_grad_()  # many ties
        grad = torch.randn(shape, generator=generator)
        expected = torch.cummax(x, dim=1).values
        (expected_grad,) = torch.autograd.grad(expected, x, grad)
        got = running_max(x)
        (got_grad,) = torch.autograd.grad(got, x, grad)
        assert torch.equal(got, expected) and torch.equal(got_grad, expected_grad)


def test_folding_batch_norm_leaves_every_potential_where_it_was():
    """The normalisation is affine in V, as weights and initial potentials are: folding it
    changes no potential of any layer at any step (float, off the integer grid)."""
    from firstspike.sw.topology import Conv2d, Dense, MapShape, stack
    from firstspike.sw.train.network import SurrogateNet
    sizes, shapes = stack(MapShape(2, 5, 5), [lambda m: Conv2d(m, 3, (3, 3), (1, 1), (1, 1)),
                                              lambda m: Dense(6), lambda m: Dense(4)])
    net = SurrogateNet(sizes, replace(SHORT, batch_norm=0.5), torch.Generator().manual_seed(1), shapes)
    times = torch.randint(-1, 16, (32, sizes[0]))
    for _ in range(3):
        net(times, alpha=0.0)  # running statistics
    with torch.no_grad():
        for norm in net.norms:
            norm.gain.uniform_(-2, 2)  # negative gains flip a channel: still affine
            norm.shift.uniform_(-1, 1)
    net.eval()
    _, _, before = net(times, alpha=0.0)
    net.fold_norms()
    assert not net.normalizing
    _, _, after = net(times, alpha=0.0)
    for b, a in zip(before, after):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # three short trainings of a conv network
def test_a_batch_normalised_conv_network_exports_bit_exact_and_resumes_across_the_fold(digits, tmp_path):
    config = replace(SHORT, conv=((8, 3, 1),), hidden=(32,), epochs=4, batch_norm=0.5, spike_penalty=0.05)
    x, y = digits.train_x[:600], digits.train_y[:600]
    whole = train(x, y, x_max=digits.x_max, config=config, provenance={}, image_shape=digits.image_shape)
    times = whole.model.encoding.encode(digits.test_x, config.time_steps)
    assert_same_as_golden(whole.model, times)
    assert np.mean(simulate(whole.model, times).decision == digits.test_y) > 0.4
    checkpoint = tmp_path / "bn.pt"

    def stop_after_the_fold(epoch, batch, batches, stats):
        if epoch == 3 and batch == 1:  # folded at the start of epoch 2 (counting from 0)
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(x, y, x_max=digits.x_max, config=config, provenance={}, checkpoint=checkpoint,
              progress=stop_after_the_fold, image_shape=digits.image_shape)
    assert torch.load(checkpoint, weights_only=True)["net"]["folded"]
    resumed = train(x, y, x_max=digits.x_max, config=config, provenance={}, checkpoint=checkpoint, resume=True,
                    image_shape=digits.image_shape)
    assert resumed.model.digest() == whole.model.digest()


def test_pool_at_pools_only_the_inputs_of_the_layers_it_names():
    from firstspike.sw.topology import MapShape
    config = replace(SHORT, conv=((4, 5, 2), (6, 3, 1)), pool_at=(2,), hidden=(16,))
    sizes, shapes = config.architecture(MapShape(1, 28, 28), 10)
    assert [shape.pool is not None for shape in shapes] == [False, False, True, False]
    assert sizes == (784, 4 * 14 * 14, 6 * 14 * 14, 16, 10)
    assert TrainConfig.from_dict(config.as_dict()) == config
    assert "pool_at" not in SHORT.as_dict()  # checkpoints from before the option still match


def test_spike_penalty_reduces_hidden_spikes(digits):
    def hidden_spikes(penalty):
        config = replace(SHORT, spike_penalty=penalty, reversal=0.0)
        model = train(digits.train_x, digits.train_y, x_max=digits.x_max, config=config, provenance={}).model
        golden = simulate(model, model.encoding.encode(digits.test_x, config.time_steps))
        return golden.spike_counts[:, 1].mean() / config.hidden[0]
    assert hidden_spikes(3.0) < 0.7 * hidden_spikes(0.0)


def test_min_fired_exports_a_threshold_at_which_outputs_fire_that_often_on_held_out_images(digits):
    """The threshold is chosen on the tenth of the training split the network did not see."""
    config = replace(SHORT, first_spike=3.0, min_fired=0.97)
    model = train(digits.train_x, digits.train_y, x_max=digits.x_max, config=config, provenance={}).model
    held_out = np.random.default_rng(config.seed).permutation(len(digits.train_y))[:len(digits.train_y) // 10]
    golden = simulate(model, model.encoding.encode(digits.train_x[held_out], config.time_steps))
    assert golden.fired.mean() >= 0.97
    plain = train(digits.train_x, digits.train_y, x_max=digits.x_max, config=SHORT, provenance={}).model
    test_times = model.encoding.encode(digits.test_x, config.time_steps)
    assert simulate(model, test_times).fired.mean() > simulate(plain, test_times).fired.mean()


def test_resumed_training_ends_exactly_where_an_uninterrupted_run_does(digits, tmp_path):
    config = replace(SHORT, epochs=3)
    x, y = digits.train_x[:400], digits.train_y[:400]
    whole = train(x, y, x_max=digits.x_max, config=config, provenance={})
    checkpoint = tmp_path / "run.pt"

    def stop_in_epoch_two(epoch, batch, batches, stats):
        if epoch == 1 and batch == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(x, y, x_max=digits.x_max, config=config, provenance={}, checkpoint=checkpoint,
              progress=stop_in_epoch_two)
    resumed = train(x, y, x_max=digits.x_max, config=config, provenance={}, checkpoint=checkpoint, resume=True)
    assert resumed.model.digest() == whole.model.digest()


def test_resume_refuses_a_checkpoint_from_other_settings(digits, tmp_path):
    checkpoint = tmp_path / "run.pt"
    x, y = digits.train_x[:100], digits.train_y[:100]
    train(x, y, x_max=digits.x_max, config=replace(SHORT, epochs=1), provenance={}, checkpoint=checkpoint)
    with pytest.raises(FirstSpikeError, match="other settings"):
        train(x, y, x_max=digits.x_max, config=replace(SHORT, epochs=1, hidden=(20,)), provenance={},
              checkpoint=checkpoint, resume=True)


def test_a_finished_run_resumed_with_another_output_firing_floor_only_exports_again(digits, tmp_path):
    """--min-fired picks the output threshold after training: a finished run's checkpoint
    exports at a new floor without training again (the same weights, another threshold)."""
    checkpoint = tmp_path / "run.pt"
    x, y = digits.train_x[:300], digits.train_y[:300]
    config = replace(SHORT, epochs=1, min_fired=0.5)
    first = train(x, y, x_max=digits.x_max, config=config, provenance={}, checkpoint=checkpoint)
    again = train(x, y, x_max=digits.x_max, config=replace(config, min_fired=0.9), provenance={},
                  checkpoint=checkpoint, resume=True)
    assert again.history == first.history
    for a, b in zip(first.model.layers, again.model.layers):
        assert np.array_equal(a.weights, b.weights)
    times = again.model.encoding.encode(x, config.time_steps)
    assert simulate(again.model, times).fired.mean() >= simulate(first.model, times).fired.mean()
    assert again.model.layers[-1].thresholds.max() <= first.model.layers[-1].thresholds.max()
    with pytest.raises(FirstSpikeError, match="other settings"):  # 0 holds no images out: another run
        train(x, y, x_max=digits.x_max, config=replace(config, min_fired=0.0), provenance={},
              checkpoint=checkpoint, resume=True)


def test_a_run_started_from_another_runs_weights_continues_from_them_on_its_own_schedule(digits, tmp_path):
    """--start-from: the first run's weights, then a new run (its own epochs, optimizer and
    learning-rate schedule), recorded in the provenance; another network is refused by name."""
    x, y = digits.train_x[:300], digits.train_y[:300]
    first_checkpoint = tmp_path / "first.pt"
    first = train(x, y, x_max=digits.x_max, config=replace(SHORT, epochs=2), provenance={},
                  checkpoint=first_checkpoint)
    config = replace(SHORT, epochs=1, learning_rate=1e-9)  # one epoch that moves nothing
    more = train(x, y, x_max=digits.x_max, config=config, provenance={}, start_from=first_checkpoint)
    fresh = train(x, y, x_max=digits.x_max, config=config, provenance={})
    for name, weights in first.net.state_dict().items():
        assert torch.allclose(more.net.state_dict()[name], weights, atol=1e-5), name
    assert not torch.allclose(fresh.net.state_dict()["weights.0"], first.net.state_dict()["weights.0"], atol=1e-3)
    assert more.model.provenance["started_from"]["epochs"] == 2
    assert len(more.model.provenance["started_from"]["history"]) == 2
    with pytest.raises(FirstSpikeError, match="--start-from .*first.pt: its network is 64-48-10, this one 64-20-10"):
        train(x, y, x_max=digits.x_max, config=replace(SHORT, hidden=(20,)), provenance={},
              start_from=first_checkpoint)


def test_a_run_started_from_a_model_file_begins_at_exactly_its_integers():
    """--start-from MODEL.npz: each neuron's weights and initial potential over its threshold,
    so the shipped CNN (conv layers, folded normalisation) exports back to the same integers;
    a model of another network is refused by name."""
    from firstspike.sw.model import load_model
    from firstspike.sw.models import shipped_model_path
    from firstspike.sw.topology import MapShape
    from firstspike.sw.train import loop
    from firstspike.sw.train.export import integer_layers

    path = shipped_model_path("fashion-mnist-cnn")
    model = load_model(path)
    config = replace(TrainConfig.from_dict(model.provenance["config"]), batch_norm=0.0)
    sizes, shapes = config.architecture(MapShape(1, 28, 28), 10)
    params = CoreParams(sizes, config.time_steps, config.kernel, config.weight_bits, config.potential_bits,
                        shapes=shapes)
    state = loop._new_state(config, sizes, shapes)
    recorded = loop._start_from(path, state, sizes, params)
    for k, ((w, b, theta), layer) in enumerate(zip(integer_layers(state.net, params), model.layers)):
        np.testing.assert_array_equal(w, layer.weights, err_msg=f"layer {k}")
        np.testing.assert_array_equal(b, layer.initial_potentials, err_msg=f"layer {k}")
        assert theta == layer.thresholds[0], k
    assert recorded["digest"] == model.digest() and recorded["accuracy"] == model.provenance["accuracy"]
    other = replace(config, hidden=(64,))
    sizes, shapes = other.architecture(MapShape(1, 28, 28), 10)
    with pytest.raises(FirstSpikeError, match="--start-from .*fashion-mnist-cnn.npz: its network "
                                              "784-6272-6272-128-10, this run's 784-6272-6272-64-10"):
        loop._start_from(path, None, sizes, CoreParams(sizes, 16, shapes=shapes))


def test_resume_names_a_damaged_checkpoint(digits, tmp_path):
    checkpoint = tmp_path / "run.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(FirstSpikeError, match="not a FirstSpike training checkpoint"):
        train(digits.train_x[:50], digits.train_y[:50], x_max=digits.x_max, config=SHORT, provenance={},
              checkpoint=checkpoint, resume=True)


@pytest.mark.parametrize("change, message", [
    ({"init": "xavier"}, "init must be one of"),
    ({"decoding": "max"}, "decoding must be one of"),
    ({"spike_penalty": -1.0}, "spike_penalty must be >= 0"),
    ({"hidden": ()}, "at least one hidden layer"),
    ({"pool": "mean"}, "pool must be one of avg, max, none, not 'mean'"),
    ({"batch_norm": 1.5}, "batch_norm must be at most 1"),
    ({"conv": ((8, 3, 1),), "pool_at": (2,)}, r"pool_at names layers 1 ... 1 \(the conv layers after the first "
                                              r"and the first dense layer\), not \[2\]"),
    ({"shift": 9}, r"shift must be 0 ... 8 pixels, not 9"),
    ({"conv": ((8, 3),)}, r"a conv layer is \(channels, kernel, stride\), each 1 ... 255, not \(8, 3\)"),
])
def test_bad_settings_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        replace(SHORT, **change)


def test_augmentation_moves_and_mirrors_images_and_what_moves_in_never_spikes():
    import torch

    from firstspike.sw.train.loop import augment
    h, w = 5, 7
    times = torch.arange(h * w).view(1, -1).repeat(600, 1)
    moved = augment(times, (h, w), 2, True, torch.Generator().manual_seed(3)).view(600, h, w)
    image = times[0].view(h, w)
    expected = {(dy, dx, mirror): _moved(image.flip(-1) if mirror else image, dy, dx)
                for dy in range(-2, 3) for dx in range(-2, 3) for mirror in (False, True)}
    seen = set()
    for out in moved:
        found = [move for move, candidate in expected.items() if torch.equal(out, candidate)]
        assert len(found) == 1
        seen.add(found[0])
    assert len(seen) == 50  # every move, mirrored and not
    assert torch.equal(augment(times, (h, w), 0, False, torch.Generator()), times)


def _moved(image, dy: int, dx: int):
    """``image`` with the pixel at (y, x) moved to (y - dy, x - dx), -1 where nothing moved in."""
    h, w = image.shape
    out = image.new_full((h, w), -1)
    for y in range(h):
        for x in range(w):
            if 0 <= y + dy < h and 0 <= x + dx < w:
                out[y, x] = image[y + dy, x + dx]
    return out


def test_augmentation_needs_the_image_shape(digits):
    with pytest.raises(FirstSpikeError, match="shift and flip need the images' height and width"):
        train(digits.train_x, digits.train_y, x_max=digits.x_max, config=replace(SHORT, flip=True), provenance={})


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits", "fashion-mnist"])
def test_shipped_models_reach_their_recorded_accuracy_with_the_training_forward_pass_agreeing(name):
    from firstspike.sw.model import load_model
    from firstspike.sw.models import SHIPPED, shipped_model_path
    assert name in SHIPPED
    model = load_model(shipped_model_path(name))
    dataset = load_dataset(name)
    spike_times = model.encoding.encode(dataset.test_x, model.params.time_steps)
    golden = simulate(model, spike_times)
    assert np.mean(golden.decision == dataset.test_y) == model.provenance["accuracy"]
    assert golden.spike_counts[:, 1:-1].mean() / sum(model.params.layer_sizes[1:-1]) <= 0.3
    assert model.provenance["command"].startswith(f"firstspike train --dataset {name}")
    assert_same_as_golden(model, spike_times)
