"""Synthetic and bundled datasets: the properties each one promises, checked from the formulas."""

from __future__ import annotations

import numpy as np
import pytest

from ravine import data
from ravine.errors import ConfigError, UnknownNameError


def test_sparse_sigmoid_zeros_and_targets() -> None:
    ds = data.sparse_sigmoid(seed=0, n=100, zero_fraction=0.8, noise=0.02)
    x = ds.X[:, 0]
    assert ds.X.shape == (100, 1) and int((x == 0).sum()) == 80
    residual = ds.y - 1.0 / (1.0 + np.exp(-(3.0 * x - 1.0)))  # the sigmoid neuron, from its formula
    assert 0.01 < residual.std() < 0.03
    noiseless = data.sparse_sigmoid(seed=0, noise=0.0)
    np.testing.assert_allclose(noiseless.y, 1.0 / (1.0 + np.exp(-(3.0 * noiseless.X[:, 0] - 1.0))))


def _condition(X: np.ndarray, intercept: bool) -> float:
    if intercept:
        X = np.hstack([X, np.ones((len(X), 1))])
    eig = np.linalg.eigvalsh(X.T @ X / len(X))
    return float(eig.max() / eig.min())


def test_unnormalized_regression_is_ill_conditioned_until_standardized() -> None:
    ds = data.unnormalized_regression(seed=0)
    assert np.all(np.abs(ds.X.mean(axis=0) - 1000) < 3) and np.all(np.abs(ds.X.std(axis=0) - 10) < 2)
    standardized = (ds.X - ds.X.mean(axis=0)) / ds.X.std(axis=0)
    assert _condition(ds.X, intercept=True) > 1e8
    assert _condition(standardized, intercept=True) < 2.0
    # y is linear in x up to the noise: the least-squares residual std is the noise level
    A = np.hstack([ds.X, np.ones((len(ds.X), 1))])
    resid = ds.y - A @ np.linalg.lstsq(A, ds.y, rcond=None)[0]
    assert 0.08 < resid.std() < 0.12


@pytest.mark.parametrize("rotate", [True, False])
def test_noisy_quadratic_condition_number_and_noise(rotate: bool) -> None:
    ds = data.noisy_quadratic(seed=1, n=20000, dim=6, condition=300.0, noise=0.1, rotate=rotate)
    eig = np.linalg.eigvalsh(ds.X.T @ ds.X / len(ds.X))  # the mse Hessian / 2
    assert 300 / 1.15 < eig.max() / eig.min() < 300 * 1.15
    cov = ds.X.T @ ds.X / len(ds.X)
    off_diagonal = np.abs(cov - np.diag(np.diag(cov))).max()
    assert (off_diagonal > 0.05) if rotate else (off_diagonal < 0.02)
    resid = ds.y - ds.X @ np.linalg.lstsq(ds.X, ds.y, rcond=None)[0]
    assert 0.095 < resid.std() < 0.105


@pytest.mark.parametrize("name", ["sparse-sigmoid", "unnormalized-regression", "noisy-quadratic"])
def test_synthetic_seeded(name: str) -> None:
    a, b, c = data.load(name, seed=4), data.load(name, seed=4), data.load(name, seed=5)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, c.y)


def test_synthetic_options_validated() -> None:
    with pytest.raises(ConfigError, match="zero_fraction"):
        data.sparse_sigmoid(zero_fraction=1.5)
    with pytest.raises(ConfigError, match="condition"):
        data.noisy_quadratic(condition=0.5)
    with pytest.raises(ConfigError, match="spread"):
        data.unnormalized_regression(spread=0.0)


# Sizes from scikit-learn's dataset documentation (the UCI originals).
@pytest.mark.parametrize(("name", "shape", "n_classes", "task"), [
    ("digits", (1797, 64), 10, "classification"),
    ("breast-cancer", (569, 30), 2, "classification"),
    ("wine", (178, 13), 3, "classification"),
    ("iris", (150, 4), 3, "classification"),
    ("diabetes", (442, 10), 0, "regression"),
])
def test_bundled_datasets(name: str, shape: tuple[int, int], n_classes: int, task: str) -> None:
    ds = data.load(name)
    assert ds.X.shape == shape and ds.n_classes == n_classes and ds.task == task
    assert len(ds.feature_names) == shape[1] and np.isfinite(ds.X).all()
    ds.X[0, 0] = -1.0  # a copy: the cached arrays are untouched
    assert data.load(name).X[0, 0] != -1.0


def test_breast_cancer_class_counts_and_digits_image_shape() -> None:
    assert np.bincount(data.load("breast-cancer").y).tolist() == [212, 357]
    digits = data.load("digits")
    assert digits.image_shape == (1, 8, 8) and digits.X.max() == 16


def test_unknown_dataset_lists_known() -> None:
    with pytest.raises(UnknownNameError, match=r"Invalid dataset: 'cifar' \(.*allowed: .*digits.*noisy-quadratic"):
        data.load("cifar")
    with pytest.raises(UnknownNameError, match="breast-cancer"):
        data.load_bundled("boston")
