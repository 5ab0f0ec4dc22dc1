"""Data sets: the fixed digits split, IDX files raw and gzip, and errors that name the path."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from firstspike.sw.datasets import FASHION_MNIST_DIR, DatasetError, load_dataset, read_idx


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def make_idx_folder(folder, n_train=5, n_test=3, compress=False):
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        write_idx(folder / name, array, compress)
    return arrays


def test_digits_split_is_every_fourth_sample():
    data = load_dataset("digits")
    assert data.train_x.shape == (1347, 64) and data.test_x.shape == (450, 64)
    from sklearn.datasets import load_digits
    full = load_digits()
    assert np.array_equal(data.test_x, full.data[::4].astype(np.uint8))
    assert np.array_equal(data.test_y, full.target[::4])
    assert data.x_max == 16 and data.train_x.max() == 16


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_idx_folder_loads_as_flat_images(tmp_path, compress):
    arrays = make_idx_folder(tmp_path / "mnist", compress=compress)
    data = load_dataset("mnist", tmp_path / "mnist")
    assert data.train_x.shape == (5, 784) and data.test_x.shape == (3, 784)
    assert np.array_equal(data.train_x, arrays["train-images-idx3-ubyte"].reshape(5, -1))
    assert np.array_equal(data.test_y, arrays["t10k-labels-idx1-ubyte"])
    assert data.image_shape == (28, 28) and data.x_max == 255


def test_fashion_mnist_from_the_debian_package_folder():
    data = load_dataset("fashion-mnist")
    assert data.train_x.shape == (60000, 784) and data.test_x.shape == (10000, 784)
    assert set(np.unique(data.test_y)) == set(range(10))


def test_missing_fashion_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_dataset("fashion-mnist", tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(error.value)
    assert "apt-get install dataset-fashion-mnist" in str(error.value)
    assert str(FASHION_MNIST_DIR).startswith("/usr/share/datasets")


def test_missing_file_in_folder_is_named(tmp_path):
    make_idx_folder(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match="has no t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", tmp_path / "d")


def test_mnist_without_a_folder_asks_for_one():
    with pytest.raises(DatasetError, match="pass --data-dir DIR"):
        load_dataset("mnist")


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DatasetError, match="choose one of digits, fashion-mnist, mnist"):
        load_dataset("cifar")


def test_bad_magic_and_truncated_idx_are_refused(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((4, 3), np.uint8))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-2])
    with pytest.raises(DatasetError, match=r"declares shape \[4, 3\] \(12 bytes of data\), but the file holds 10"):
        read_idx(tmp_path / "short")
