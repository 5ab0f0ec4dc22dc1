"""Data sets: scikit-learn's 8x8 digits (the embedded default), Fashion-MNIST and MNIST.

* ``digits``: 1,797 images of 8x8 pixels, intensities 0 ... 16, from scikit-learn.
  Fixed split: every sample whose index is a multiple of 4 is a test sample (450),
  the others train (1,347). No randomness, so the split is the same everywhere.
* ``fashion-mnist`` and ``mnist``: the standard 60,000 / 10,000 split from IDX files
  (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
  ``t10k-labels-idx1-ubyte``, each raw or ``.gz``), intensities 0 ... 255.
  Fashion-MNIST defaults to :data:`FASHION_MNIST_DIR` (Debian's ``dataset-fashion-mnist``);
  MNIST needs a folder from the user.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError

__all__ = ["Dataset", "load_dataset", "read_idx", "DATASETS", "FASHION_MNIST_DIR"]

DATASETS = ("digits", "fashion-mnist", "mnist")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_IDX_TYPES: dict[int, type | str] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Dataset:
    """Images flattened to ``[n, pixels]`` with integer labels ``[n]``."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    x_max: float
    image_shape: tuple[int, int]
    n_classes: int = 10

    @property
    def n_features(self) -> int:
        return self.train_x.shape[1]

    def split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of ``'train'`` or ``'test'``."""
        if which == "train":
            return self.train_x, self.train_y
        if which == "test":
            return self.test_x, self.test_y
        raise ValueError(f"split must be 'train' or 'test', not {which!r}")


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load a data set by name (``digits``, ``fashion-mnist``, ``mnist``)."""
    if name == "digits":
        return _digits()
    if name == "fashion-mnist":
        folder = Path(data_dir) if data_dir is not None else FASHION_MNIST_DIR
        how = ("install Debian's package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
               "or pass --data-dir with the Fashion-MNIST IDX files")
        return _idx_dataset(name, folder, how)
    if name == "mnist":
        if data_dir is None:
            raise DatasetError("MNIST is not installed with FirstSpike: pass --data-dir DIR, a folder with "
                               + ", ".join(f"{f}[.gz]" for f in _IDX_FILES.values()))
        return _idx_dataset(name, Path(data_dir), "pass --data-dir with the MNIST IDX files")
    raise DatasetError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")


def _digits() -> Dataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetError("the digits data set comes with scikit-learn, which is not installed: "
                           "pip install 'firstspike[data]'") from None
    bunch = load_digits()
    x = bunch.data.astype(np.uint8)
    y = bunch.target.astype(np.int64)
    test = np.arange(len(x)) % 4 == 0
    return Dataset("digits", x[~test], y[~test], x[test], y[test], x_max=16.0, image_shape=(8, 8))


def _find(folder: Path, stem: str, dataset: str, how: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    if not folder.is_dir():
        raise DatasetError(f"{dataset}: folder {folder} does not exist; {how}")
    raise DatasetError(f"{dataset}: {folder} has no {stem} or {stem}.gz; {how}")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into an array of its declared shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise DatasetError(f"{path}: cannot be read ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {data[:4].hex()})")
    dtype = np.dtype(_IDX_TYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DatasetError(f"{path}: header declares shape {list(shape)} ({expected} bytes of data), "
                           f"but the file holds {len(data) - header}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _idx_dataset(name: str, folder: Path, how: str) -> Dataset:
    arrays = {key: read_idx(_find(folder, stem, name, how)) for key, stem in _IDX_FILES.items()}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DatasetError(f"{name} in {folder}: {split} images {list(x.shape)} and labels "
                               f"{list(y.shape)} do not match")
    shape = arrays["train_x"].shape[1:]
    return Dataset(
        name,
        arrays["train_x"].reshape(len(arrays["train_x"]), -1),
        arrays["train_y"].astype(np.int64),
        arrays["test_x"].reshape(len(arrays["test_x"]), -1),
        arrays["test_y"].astype(np.int64),
        x_max=255.0,
        image_shape=(int(shape[0]), int(shape[1])),
    )
