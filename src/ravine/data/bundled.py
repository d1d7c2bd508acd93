"""Datasets bundled with scikit-learn: nothing is downloaded.

scikit-learn ships these files inside its package (``sklearn/datasets/data``),
so ``sklearn.datasets.load_*`` reads them from disk; ravine only converts them
to a :class:`~ravine.data.base.Dataset`.
"""

from __future__ import annotations

import functools

import numpy as np

from ravine.data.base import Dataset
from ravine.errors import unknown_name

# name -> (sklearn loader name, task, image shape)
_BUNDLED = {
    "digits": ("load_digits", "classification", (1, 8, 8)),
    "breast-cancer": ("load_breast_cancer", "classification", None),
    "wine": ("load_wine", "classification", None),
    "iris": ("load_iris", "classification", None),
    "diabetes": ("load_diabetes", "regression", None),
}


def bundled_names() -> list[str]:
    """The bundled dataset names.

    Example:
        >>> bundled_names()
        ['digits', 'breast-cancer', 'wine', 'iris', 'diabetes']
    """
    return list(_BUNDLED)


@functools.cache
def _read(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...] | None]:
    import sklearn.datasets

    loader, task, _ = _BUNDLED[name]
    # diabetes: the raw (unscaled) features; ravine standardizes on the train split itself.
    kwargs = {"scaled": False} if name == "diabetes" else {}
    bunch = getattr(sklearn.datasets, loader)(**kwargs)
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64 if task == "classification" else np.float64)
    features = tuple(str(f) for f in bunch.feature_names)
    classes = tuple(str(c) for c in bunch.target_names) if task == "classification" else None
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y, features, classes


def load_bundled(name: str) -> Dataset:
    """Load one of scikit-learn's bundled datasets.

    ``digits``: 1797 images 8×8 (pixels 0..16), 10 classes; ``breast-cancer``:
    569 × 30, 2 classes; ``wine``: 178 × 13, 3 classes; ``iris``: 150 × 4,
    3 classes; ``diabetes``: 442 × 10 (raw, unscaled), regression target.

    Example:
        >>> ds = load_bundled("iris")
        >>> ds.X.shape, ds.n_classes
        ((150, 4), 3)

    Raises:
        UnknownNameError: listing the bundled names.
    """
    if name not in _BUNDLED:
        raise unknown_name("bundled dataset", name, _BUNDLED)
    X, y, features, classes = _read(name)
    _, task, image_shape = _BUNDLED[name]
    return Dataset(name=name, X=X.copy(), y=y.copy(), task=task,  # type: ignore[arg-type]
                   feature_names=list(features), class_names=None if classes is None else list(classes),
                   image_shape=image_shape)
