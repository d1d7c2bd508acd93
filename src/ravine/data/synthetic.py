"""Synthetic datasets from the course, generated from a seed.

Each is generated with ``np.random.default_rng(seed)``; the same seed gives the
same data. The noise standard deviation is the Bayes error (rmse of the true
function), which the problems use as their reference error.
"""

from __future__ import annotations

import numpy as np

from ravine.data.base import Dataset
from ravine.errors import ConfigError, check_int, check_range


def sigmoid_neuron_target(x: np.ndarray, weight: float = 3.0, bias: float = -1.0) -> np.ndarray:
    """The true function of ``sparse-sigmoid``: σ(w·x + b) = 1 / (1 + exp(−(w·x + b)))."""
    return 1.0 / (1.0 + np.exp(-(weight * x + bias)))


def sparse_sigmoid(seed: int = 0, n: int = 100, zero_fraction: float = 0.8, noise: float = 0.02) -> Dataset:
    """One input, mostly zero; the target is a sigmoid neuron plus noise.

    A fraction ``zero_fraction`` of the ``n`` points has x = 0 exactly (so the
    weight's gradient is zero on them and only the bias learns there); the rest
    have x ~ N(0, 1). y = σ(3x − 1) + N(0, noise²). It shows why AdaGrad helps on
    sparse features. Do not standardize it: centering would destroy the zeros.

    Example:
        >>> ds = sparse_sigmoid(seed=0)
        >>> ds.X.shape, int((ds.X == 0).sum())
        ((100, 1), 80)
    """
    n = check_int("n", n, 10, error=ConfigError)
    zero_fraction = check_range("zero_fraction", zero_fraction, 0.0, 1.0, high_inclusive=False, error=ConfigError)
    noise = check_range("noise", noise, 0.0, error=ConfigError)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    n_zero = round(zero_fraction * n)
    x[rng.permutation(n)[:n_zero]] = 0.0
    y = sigmoid_neuron_target(x) + noise * rng.normal(size=n)
    return Dataset(name="sparse-sigmoid", X=x[:, None], y=y, task="regression", feature_names=["x"])


def unnormalized_regression(seed: int = 0, n: int = 200, center: float = 1000.0, spread: float = 10.0,
                            noise: float = 0.1) -> Dataset:
    """Two features around ``center`` with a small ``spread``; y linear in them.

    x_j = center + spread · N(0, 1); y = 0.3 x₁ − 0.2 x₂ + b + N(0, noise²) with
    b chosen so that y is about 5 ± 3.6. Unstandardized, the least-squares
    Hessian E[x̃ x̃ᵀ] (x̃ = (x₁, x₂, 1)) has one eigenvalue ≈ 2·center² and the
    others ≈ spread² or far smaller, so the stable step of gradient descent is
    tiny and progress along the informative directions crawls; standardizing
    the inputs makes the Hessian ≈ I.

    Example:
        >>> ds = unnormalized_regression(seed=0)
        >>> bool(abs(ds.X.mean() - 1000) < 5)
        True
    """
    n = check_int("n", n, 10, error=ConfigError)
    center = check_range("center", center, error=ConfigError)
    spread = check_range("spread", spread, 0.0, low_inclusive=False, error=ConfigError)
    noise = check_range("noise", noise, 0.0, error=ConfigError)
    rng = np.random.default_rng(seed)
    X = center + spread * rng.normal(size=(n, 2))
    weights = np.array([0.3, -0.2])
    bias = 5.0 - center * weights.sum()
    y = X @ weights + bias + noise * rng.normal(size=n)
    return Dataset(name="unnormalized-regression", X=X, y=y, task="regression", feature_names=["x1", "x2"])


def noisy_quadratic(seed: int = 0, n: int = 1000, dim: int = 10, condition: float = 300.0,
                    noise: float = 0.1, rotate: bool = True) -> Dataset:
    """Linear least squares with a Hessian of condition number ``condition``.

    Latent feature i is s_i · N(0, 1) with s_i = κ^(−i / (2(dim−1))), so the
    mse Hessian 2·E[x xᵀ] ≈ 2·Q diag(s_i²) Qᵀ has eigenvalues from 2 down to
    2/κ. With ``rotate`` the features are x = Q z for a random orthogonal Q
    (so the ill-conditioning is not axis-aligned and per-coordinate methods
    cannot undo it); without it Q = I. The true weights are
    w* = Q (±1 / (s_i √dim)): every eigendirection carries the same share of
    y's variance (≈ 1), so the flat directions matter and gradient descent
    crawls along them. y = x·w* + N(0, noise²); minibatches add gradient noise.

    Example:
        >>> ds = noisy_quadratic(seed=0, dim=4, condition=100.0)
        >>> ds.X.shape
        (1000, 4)
    """
    n = check_int("n", n, 10, error=ConfigError)
    dim = check_int("dim", dim, 2, error=ConfigError)
    condition = check_range("condition", condition, 1.0, error=ConfigError)
    noise = check_range("noise", noise, 0.0, error=ConfigError)
    if not isinstance(rotate, bool):
        raise ConfigError(f"Invalid rotate: {rotate!r} (allowed: true, false)")
    rng = np.random.default_rng(seed)
    scales = condition ** (-np.arange(dim) / (2.0 * (dim - 1)))
    X = rng.normal(size=(n, dim)) * scales
    w_true = rng.choice([-1.0, 1.0], size=dim) / (scales * np.sqrt(dim))
    if rotate:
        q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
        q = q * np.sign(np.diag(r))  # Haar-distributed orthogonal matrix
        X, w_true = X @ q.T, q @ w_true
    y = X @ w_true + noise * rng.normal(size=n)
    return Dataset(name="noisy-quadratic", X=X, y=y, task="regression",
                   feature_names=[f"x{i}" for i in range(dim)])
