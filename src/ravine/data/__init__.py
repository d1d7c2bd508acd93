"""Datasets: scikit-learn's bundled sets, the course's synthetic sets, the user's files.

Everything loads into a :class:`Dataset` (NumPy arrays); :func:`prepare` splits
it train / validation / test (60/20/20, stratified, seeded), fits
standardization or PCA whitening on train only, and returns tensors as
:class:`ravine.data.Splits`. Nothing is downloaded.

Example:
    >>> from ravine import data
    >>> ds = data.load("digits")
    >>> ds.X.shape, ds.n_classes
    ((1797, 64), 10)
    >>> splits = data.prepare(ds, seed=0)
    >>> tuple(splits.X_train.shape)
    (1079, 64)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ravine.data.base import Dataset, Task
from ravine.data.bundled import bundled_names, load_bundled
from ravine.data.idx import MNIST_FILES, load_mnist, read_idx
from ravine.data.loaders import encode_labels, load_csv, load_npz
from ravine.data.splits import PCAWhitener, Splits, Standardizer, prepare, split_indices
from ravine.data.synthetic import noisy_quadratic, sparse_sigmoid, unnormalized_regression
from ravine.errors import ConfigError, unknown_name

__all__ = [
    "MNIST_FILES", "Dataset", "PCAWhitener", "Splits", "Standardizer", "Task", "encode_labels", "load", "load_bundled",
    "load_csv", "load_mnist", "load_npz", "names", "noisy_quadratic", "prepare", "read_idx", "sparse_sigmoid",
    "split_indices", "unnormalized_regression",
]

_SYNTHETIC: dict[str, Callable[..., Dataset]] = {
    "sparse-sigmoid": sparse_sigmoid,
    "unnormalized-regression": unnormalized_regression,
    "noisy-quadratic": noisy_quadratic,
}


def names() -> list[str]:
    """Every dataset name :func:`load` knows (files: ``csv``, ``npz``, ``mnist``, ``fashion-mnist``)."""
    return [*bundled_names(), *_SYNTHETIC, "mnist", "fashion-mnist", "csv", "npz"]


def load(name: str, seed: int = 0, **options: Any) -> Dataset:
    """Load a dataset by name.

    Bundled sets take no options; synthetic sets take ``seed`` and their
    generator's options; ``mnist`` / ``fashion-mnist`` take ``data_dir`` (and
    ``limit``); ``csv`` takes ``data``, ``target``, ``task``; ``npz`` takes
    ``data``, ``task``.

    Example:
        >>> load("sparse-sigmoid", seed=1).X.shape
        (100, 1)

    Raises:
        UnknownNameError: listing the known names.
    """
    if name in bundled_names():
        return load_bundled(name, **options)
    if name in _SYNTHETIC:
        return _SYNTHETIC[name](seed=seed, **options)
    if name in ("mnist", "fashion-mnist"):
        return load_mnist(variant=name, **options)
    if name in ("csv", "npz"):
        path = options.pop("data", None)
        if path is None:
            raise ConfigError(f"dataset {name} needs option data (the path of a .{name} file)")
        return (load_csv if name == "csv" else load_npz)(path, **options)
    raise unknown_name("dataset", name, names())
