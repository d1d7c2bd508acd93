"""Train / validation / test splits and preprocessing fitted on train only.

The split uses scikit-learn's ``train_test_split`` twice (stratified for
classes, seeded). Standardization and PCA whitening are a few lines of NumPy
here rather than ``sklearn.preprocessing.StandardScaler`` / ``PCA(whiten=True)``
because ravine needs the std = 0 guard, the "global" (one scalar) variant for
images, and exact identity covariance on train with the population (1/n)
convention; the formulas are in the docstrings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ravine.data.base import Dataset
from ravine.errors import ConfigError, DataError, check_range
from ravine.utils import resolve_device

StandardizeMode = bool | Literal["feature", "global"]


@dataclass
class Splits:
    """Train / validation / test tensors, already preprocessed (fitted on train only).

    Example:
        >>> s = Splits(*[torch.zeros(2, 1)] * 6)
        >>> len(s.X_train)
        2
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    feature_names: list[str] | None = None


def split_indices(n: int, y: np.ndarray | None = None, fractions: Sequence[float] = (0.6, 0.2, 0.2),
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded train / validation / test index arrays, stratified when ``y`` is given.

    The three index sets are disjoint and cover ``range(n)``; a fraction may be
    0 only for the test split (for data that comes with its own test set).

    Example:
        >>> tr, va, te = split_indices(10, fractions=(0.6, 0.2, 0.2), seed=0)
        >>> len(tr), len(va), len(te)
        (6, 2, 2)

    Raises:
        DataError: a split would be empty, or a class is too small to stratify.
    """
    from sklearn.model_selection import train_test_split

    _, f_val, f_test = _check_fractions(fractions)
    idx = np.arange(n)
    n_test = round(f_test * n)
    n_val = round(f_val * n)
    if y is not None:  # first: its message says how many rows of each class a stratified split needs
        _check_stratifiable(np.asarray(y), n_val, n_test, fractions)
    if n - n_test - n_val < 1 or n_val < 1 or (f_test > 0 and n_test < 1):
        need = _rows_needed(1, f_val, f_test)
        raise DataError(f"Invalid data: {n} rows (too few for a {_percent(fractions)} train/val/test split; "
                        f"allowed: at least {need} rows)")
    try:
        if n_test:
            rest, test = train_test_split(idx, test_size=n_test, random_state=seed, stratify=y)
        else:
            rest, test = idx, idx[:0]
        strat = None if y is None else y[rest]
        train, val = train_test_split(rest, test_size=n_val, random_state=seed + 1, stratify=strat)
    except ValueError:  # a corner the check above does not foresee; scikit-learn's own text names no field
        raise _too_small_to_stratify(np.asarray(y), fractions) from None
    return np.sort(train), np.sort(val), np.sort(test)


def _percent(fractions: Sequence[float]) -> str:
    return "/".join(f"{100 * f:g}" for f in fractions) + " %"


def _rows_needed(k: int, f_val: float, f_test: float) -> int:
    """The fewest rows whose train, validation and (when f_test > 0) test parts each get at least k rows."""
    m = 1
    while True:
        n_test, n_val = round(f_test * m), round(f_val * m)
        if n_val >= k and m - n_test - n_val >= k and (f_test == 0 or n_test >= k):
            return m
        m += 1


def _per_class_needed(f_test: float) -> int:
    """The fewest rows of one class that leave two of them for the train/validation split after the test part."""
    c = 2
    while c - math.ceil(c * f_test - 1e-9) < 2:
        c += 1
    return c


def _too_small_to_stratify(y: np.ndarray, fractions: Sequence[float]) -> DataError:
    _, f_val, f_test = (float(f) for f in fractions)
    labels, counts = np.unique(y, return_counts=True)
    need_rows = max(_rows_needed(len(labels), f_val, f_test), len(labels) * _per_class_needed(f_test))
    return DataError(f"Invalid data: {len(y)} rows in {len(labels)} classes, the smallest with {int(counts.min())} "
                     f"(too few for a stratified {_percent(fractions)} train/val/test split; allowed: at least "
                     f"{_per_class_needed(f_test)} rows of every class and {need_rows} rows in all)")


def _check_stratifiable(y: np.ndarray, n_val: int, n_test: int, fractions: Sequence[float]) -> None:
    """Refuse, in plain words, what scikit-learn's stratified split would refuse in its own words.

    Each part must hold at least one row of every class, and each class must keep two rows
    for the train / validation split after the test rows are taken out.
    """
    n = len(y)
    _, counts = np.unique(y, return_counts=True)
    k = len(counts)
    # a class of c rows gives at most ceil(c * n_test / n) of them to the test part (integers: no rounding)
    enough = (n_val >= k and n - n_test - n_val >= k and (n_test == 0 or n_test >= k)
              and all(int(c) + (-int(c) * n_test) // n >= 2 for c in counts))  # c - ceil(c·n_test/n)
    if not enough:
        raise _too_small_to_stratify(y, fractions)


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3:
        raise ConfigError(f"Invalid split: {tuple(fractions)!r} (allowed: three fractions train, val, test)")
    f = tuple(check_range(f"split[{i}]", v, 0.0, 1.0, error=ConfigError) for i, v in enumerate(fractions))
    if abs(sum(f) - 1.0) > 1e-9 or f[0] <= 0 or f[1] <= 0:
        raise ConfigError(f"Invalid split: {tuple(fractions)!r} (allowed: train, val > 0, test >= 0, sum 1)")
    return f  # type: ignore[return-value]


@dataclass
class Standardizer:
    """Per-dimension standardization x' = (x − μ) / σ with μ, σ from train.

    σ is the population std (``np.std``, 1/n); a constant column (σ below
    ``1e-8 · max(1, |μ|)``) gets σ = 1 so it maps to 0 instead of NaN.
    ``mode="global"`` uses one scalar μ and σ over all entries (for images).

    Example:
        >>> s = Standardizer().fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
        >>> s.transform(np.array([[2.0, 5.0]]))
        array([[0., 0.]])
    """

    mode: Literal["feature", "global"] = "feature"
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> Standardizer:
        """Fit μ and σ on ``X`` (the train split)."""
        axis = None if self.mode == "global" else 0
        self.mean = np.asarray(X.mean(axis=axis), dtype=np.float64)
        std = np.asarray(X.std(axis=axis), dtype=np.float64)
        self.std = np.where(std > 1e-8 * np.maximum(1.0, np.abs(self.mean)), std, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply (x − μ) / σ."""
        if self.mean is None or self.std is None:
            raise RuntimeError("Standardizer.transform called before fit")
        return (X - self.mean) / self.std


@dataclass
class PCAWhitener:
    """PCA whitening z = Λ^{-1/2} Vᵀ (x − μ), fitted on train.

    C = (1/n) Σ (x − μ)(x − μ)ᵀ = V Λ Vᵀ. Directions with eigenvalue below
    ``rel_tol · λ_max`` carry no variance on train and are dropped (they would
    divide by ~0), so the output may have fewer columns; on train the output
    has mean 0 and covariance exactly I.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(500, 3)) @ np.array([[2.0, 0, 0], [1, 1, 0], [0, 0, 3]])
        >>> Z = PCAWhitener().fit(X).transform(X)
        >>> np.allclose(np.cov(Z.T, bias=True), np.eye(3))
        True
    """

    rel_tol: float = 1e-10
    mean: np.ndarray | None = None
    components: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> PCAWhitener:
        """Fit μ and the whitening matrix on ``X`` (the train split)."""
        self.mean = X.mean(axis=0)
        centered = X - self.mean
        cov = centered.T @ centered / X.shape[0]
        eigvals, eigvecs = np.linalg.eigh(cov)
        keep = eigvals > self.rel_tol * max(float(eigvals.max()), 0.0)
        if not keep.any():
            raise DataError("cannot whiten: the training features have zero variance")
        # descending variance, like PCA
        order = np.argsort(eigvals[keep])[::-1]
        self.components = (eigvecs[:, keep] / np.sqrt(eigvals[keep]))[:, order]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply z = Λ^{-1/2} Vᵀ (x − μ)."""
        if self.mean is None or self.components is None:
            raise RuntimeError("PCAWhitener.transform called before fit")
        return (X - self.mean) @ self.components


def prepare(dataset: Dataset, seed: int = 0, *, fractions: Sequence[float] = (0.6, 0.2, 0.2),
            standardize: StandardizeMode = True, whiten: bool = False, standardize_target: bool = False,
            device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Splits:
    """Split, preprocess (fitted on train only) and move to tensors.

    Args:
        dataset: the data; when it has ``X_test`` that is the test split and
            ``fractions`` only divides ``X`` into train and validation
            (the test fraction is then ignored and the first two renormalized).
        seed: seeds the split.
        fractions: train, validation, test fractions (default 60/20/20).
        standardize: True / ``"feature"``: per-dimension (x − μ)/σ;
            ``"global"``: one scalar μ, σ (images); False: raw.
        whiten: PCA-whiten instead (implies centering; may drop constant directions).
        standardize_target: for regression, also standardize y with train μ, σ.
        device: where the tensors go (``"cpu"``, ``"cuda"``, ``"auto"``, a ``torch.device``).
        dtype: floating dtype of X (and of y for regression).

    Returns:
        ``Splits`` with classification targets as int64 class indices.

    Example:
        >>> from ravine.data import load
        >>> s = prepare(load("iris"), seed=0)
        >>> tuple(s.X_train.shape), tuple(s.X_val.shape), tuple(s.X_test.shape)
        ((90, 4), (30, 4), (30, 4))
    """

    dataset.check()
    strat = dataset.y if dataset.task == "classification" else None
    if dataset.X_test is None:
        tr, va, te = split_indices(len(dataset.X), strat, fractions, seed)
        X_test, y_test = dataset.X[te], dataset.y[te]
    else:
        f_train, f_val, _ = _check_fractions(fractions)
        total = f_train + f_val
        tr, va, _ = split_indices(len(dataset.X), strat, (f_train / total, f_val / total, 0.0), seed)
        X_test, y_test = dataset.X_test, dataset.y_test
    parts = [(dataset.X[tr], dataset.y[tr]), (dataset.X[va], dataset.y[va]), (X_test, y_test)]
    parts = _preprocess(parts, standardize, whiten, standardize_target and dataset.task == "regression")
    dev = resolve_device(device)
    y_dtype = torch.int64 if dataset.task == "classification" else dtype
    tensors = [(torch.as_tensor(X, dtype=dtype, device=dev), torch.as_tensor(y, dtype=y_dtype, device=dev))
               for X, y in parts]
    names = dataset.feature_names if not whiten else [f"pc{i}" for i in range(parts[0][0].shape[1])]
    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = tensors
    return Splits(X_tr, y_tr, X_va, y_va, X_te, y_te, feature_names=names)


def _preprocess(parts: list, standardize: StandardizeMode, whiten: bool,
                standardize_target: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    X_train, y_train = parts[0]
    if whiten:
        transform = PCAWhitener().fit(X_train).transform
    elif standardize:
        transform = Standardizer(mode="global" if standardize == "global" else "feature").fit(X_train).transform
    else:
        def transform(X: np.ndarray) -> np.ndarray:
            return X
    target = Standardizer().fit(y_train).transform if standardize_target else (lambda y: y)
    return [(transform(np.asarray(X, dtype=np.float64)), target(y)) for X, y in parts]
