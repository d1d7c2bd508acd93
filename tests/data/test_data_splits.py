"""Splits and preprocessing: disjoint, stratified, seeded; statistics from train only."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from ravine import data
from ravine.data import PCAWhitener, Standardizer, prepare, split_indices
from ravine.errors import ConfigError, DataError


def test_split_indices_disjoint_cover_and_sizes() -> None:
    n = 1797
    tr, va, te = split_indices(n, fractions=(0.6, 0.2, 0.2), seed=3)
    assert len(set(tr) & set(va)) == len(set(tr) & set(te)) == len(set(va) & set(te)) == 0
    assert sorted(np.concatenate([tr, va, te]).tolist()) == list(range(n))
    assert len(te) == round(0.2 * n) and len(va) == round(0.2 * n)
    assert len(tr) == n - 2 * round(0.2 * n)


def test_split_indices_stratified() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=1000, p=[0.6, 0.3, 0.1])
    overall = np.bincount(y, minlength=3) / len(y)
    for idx in split_indices(len(y), y, seed=0):
        share = np.bincount(y[idx], minlength=3) / len(idx)
        # stratification keeps each class within about one sample of its overall share
        assert np.all(np.abs(share - overall) <= 1.5 / len(idx) + 1e-12)


def test_split_indices_seeded() -> None:
    a = split_indices(200, seed=7)
    b = split_indices(200, seed=7)
    c = split_indices(200, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.6, 0.3, 0.3), (0.8, 0.0, 0.2), (1.2, -0.1, -0.1)])
def test_split_fractions_validated(fractions: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError, match="split"):
        split_indices(100, fractions=fractions)


def test_stratify_with_a_singleton_class_is_a_data_error() -> None:
    y = np.array([0] * 20 + [1])
    with pytest.raises(DataError, match="stratified"):
        split_indices(len(y), y)


def test_too_few_rows() -> None:
    with pytest.raises(DataError, match=r"Invalid data: 2 rows \(too few for a 60/20/20 % train/val/test split; "
                                        r"allowed: at least 3 rows\)"):
        split_indices(2)


def _raw_and_standardized(seed: int = 0) -> tuple:
    ds = data.load("wine")
    return prepare(ds, seed, standardize=False, dtype=torch.float64), \
        prepare(ds, seed, standardize=True, dtype=torch.float64)


def test_standardization_uses_train_statistics_only() -> None:
    raw, std = _raw_and_standardized()
    train = raw.X_train.numpy()
    mean, sd = train.mean(axis=0), train.std(axis=0)  # the oracle: numpy on the train rows
    for raw_x, std_x in ((raw.X_train, std.X_train), (raw.X_val, std.X_val), (raw.X_test, std.X_test)):
        np.testing.assert_allclose(std_x.numpy(), (raw_x.numpy() - mean) / sd, rtol=1e-10, atol=1e-10)
    # the same splits and targets with or without preprocessing
    assert torch.equal(raw.y_train, std.y_train) and torch.equal(raw.y_test, std.y_test)


def test_standardizer_guards_constant_columns() -> None:
    X = np.array([[1.0, 7.0], [3.0, 7.0], [5.0, 7.0]])
    out = Standardizer().fit(X).transform(np.array([[3.0, 7.0], [3.0, 9.0]]))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 1], [0.0, 2.0])  # σ = 1 for the constant column


def test_global_standardization_is_one_scalar() -> None:
    X = np.arange(12.0).reshape(4, 3)
    s = Standardizer(mode="global").fit(X)
    np.testing.assert_allclose(s.transform(X), (X - X.mean()) / X.std())


def test_pca_whitening_gives_identity_covariance_on_train() -> None:
    ds = data.load("digits")  # several constant pixels: the whitener drops those directions
    s = prepare(ds, 0, whiten=True, dtype=torch.float64)
    Z = s.X_train.numpy()
    assert Z.shape[1] < 64 and Z.shape[1] == s.X_val.shape[1] == s.X_test.shape[1]
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.cov(Z.T, bias=True), np.eye(Z.shape[1]), atol=1e-8)


def test_pca_whitener_on_correlated_gaussian() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3)) @ np.array([[3.0, 1.0, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 0.2]]) + 5.0
    w = PCAWhitener().fit(X)
    np.testing.assert_allclose(np.cov(w.transform(X).T, bias=True), np.eye(3), atol=1e-10)


def test_prepare_shapes_dtypes_and_target_standardization() -> None:
    s = prepare(data.load("diabetes"), 1, standardize_target=True, dtype=torch.float64)
    assert s.X_train.dtype == s.y_train.dtype == torch.float64
    assert abs(s.y_train.mean().item()) < 1e-10 and abs(s.y_train.std(unbiased=False).item() - 1) < 1e-10
    c = prepare(data.load("iris"), 1)
    assert c.y_train.dtype == torch.int64 and c.X_train.dtype == torch.float32
    assert c.feature_names == data.load("iris").feature_names


def test_prepare_uses_the_official_test_set_when_given() -> None:
    rng = np.random.default_rng(0)
    ds = data.Dataset("t", rng.normal(size=(60, 2)), rng.integers(0, 2, 60), "classification",
                      X_test=rng.normal(size=(9, 2)), y_test=rng.integers(0, 2, 9))
    s = prepare(ds, 0, fractions=(0.75, 0.25, 0.0), standardize=False, dtype=torch.float64)
    np.testing.assert_array_equal(s.X_test.numpy(), ds.X_test)
    assert len(s.X_train) + len(s.X_val) == 60 and len(s.X_val) == 15


def test_too_small_for_a_stratified_split_says_the_numbers() -> None:
    # 5 rows, 3 of class 0 and 2 of class 1: the 60/20/20 split would take 1 test and 1 validation row,
    # fewer than the 2 classes; scikit-learn's own words ("test_size = 1 should be greater or equal to the
    # number of classes = 2") named neither the data nor what would do
    y = np.array([0, 1, 0, 1, 0])
    with pytest.raises(DataError) as info:
        split_indices(len(y), y)
    assert str(info.value) == ("Invalid data: 5 rows in 2 classes, the smallest with 2 (too few for a stratified "
                               "60/20/20 % train/val/test split; allowed: at least 3 rows of every class and 8 rows "
                               "in all)")


@pytest.mark.parametrize("fractions", [(0.6, 0.2, 0.2), (0.8, 0.1, 0.1), (0.5, 0.25, 0.25), (0.75, 0.25, 0.0)])
def test_stratified_split_refuses_only_in_plain_words_and_the_stated_minimum_suffices(fractions) -> None:
    from sklearn.model_selection import train_test_split

    def sklearn_splits(y: np.ndarray, seed: int) -> bool:  # the oracle: scikit-learn's two stratified splits
        n = len(y)
        n_test, n_val = round(fractions[2] * n), round(fractions[1] * n)
        try:
            rest = (train_test_split(np.arange(n), test_size=n_test, random_state=seed, stratify=y)[0]
                    if n_test else np.arange(n))
            train_test_split(rest, test_size=n_val, random_state=seed + 1, stratify=y[rest])
        except ValueError:
            return False
        return True

    rng = np.random.default_rng(0)
    for trial in range(300):
        k = int(rng.integers(2, 5))
        y = np.repeat(np.arange(k), rng.integers(1, 9, size=k))
        rng.shuffle(y)
        try:
            split_indices(len(y), y, fractions, seed=trial)
        except DataError as exc:
            assert str(exc).startswith("Invalid data: ") and "test_size" not in str(exc) and "\n" not in str(exc)
            continue
        assert sklearn_splits(y, trial)  # accepted: scikit-learn agrees, for this seed
    # the minimum the message states is enough: every class at the per-class minimum, the rest in class 0
    for k in (2, 3, 5):
        text = str(pytest.raises(DataError, split_indices, k, np.arange(k), fractions).value)
        per_class, rows = (int(w) for w in re.findall(r"at least (\d+) rows of every class and (\d+) rows", text)[0])
        counts = [per_class] * k
        counts[0] += rows - k * per_class
        y = np.repeat(np.arange(k), counts)
        for seed in range(5):
            tr, va, te = split_indices(len(y), y, fractions, seed=seed)
            assert len(tr) + len(va) + len(te) == rows
