"""Trace (Hutch++ / Hutchinson) and SLQ density against exact values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from curv_oracle import classification_data, mlp, reference_hessian
from ravine import curvature
from ravine.errors import RavineError


def _spectrum_with_outliers(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A network-like spectrum: a bulk near 0 and a few large outliers, in a random basis."""
    gen = torch.Generator().manual_seed(seed)
    lam = torch.cat([0.05 * torch.randn(n - 5, generator=gen, dtype=torch.float64),
                     torch.tensor([40.0, 25.0, 18.0, 9.0, 6.0], dtype=torch.float64)])
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return Q @ torch.diag(lam) @ Q.T, lam


def test_trace_estimates_are_within_their_error_bars_and_hutchpp_wins():
    A, lam = _spectrum_with_outliers()
    exact = float(lam.sum())
    errors = {"hutch++": [], "hutchinson": []}
    for seed in range(5):
        for method in errors:
            est = curvature.trace(A, n_products=60, method=method, seed=seed)
            assert est.n_products == 60 and est.method == method
            assert abs(est.value - exact) <= 4.5 * est.stderr, (method, est, exact)
            errors[method].append(abs(est.value - exact))
    # the outliers hold most of ‖A‖_F: deflating them must cut the error by a wide margin
    assert sum(errors["hutch++"]) < 0.2 * sum(errors["hutchinson"])


def test_trace_of_the_model_hessian(small_problem):
    p = small_problem
    exact = float(torch.diagonal(p["H"]).sum())
    est = curvature.trace(p["model"], p["loss_fn"], (p["x"], p["y"]), n_products=90, seed=3)
    assert abs(est.value - exact) <= 4.5 * est.stderr
    small = mlp([4, 6, 3], seed=2)
    x, y = classification_data(12, 4, 3, seed=3)
    full = curvature.trace(small, nn.functional.cross_entropy, (x, y), n_products=10_000)
    assert full.method == "exact" and full.stderr == 0.0 and full.n_products == 51
    ref = float(torch.diagonal(reference_hessian(small, nn.functional.cross_entropy, x, y)).sum())
    assert math.isclose(full.value, ref, rel_tol=1e-10)


def test_slq_quadrature_reproduces_the_moments_of_the_probe():
    # Gauss quadrature with m nodes is exact for polynomials of degree ≤ 2m − 1:
    # Σ τᵢ θᵢᵏ = vᵀ Aᵏ v / vᵀv for k < 2m.
    A, _ = _spectrum_with_outliers(n=120, seed=1)
    A = A / 40.0
    v = torch.randn(120, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    m = 6
    theta, tau = curvature.lanczos_tridiagonal(curvature.MatrixOperator(A), v, m)
    assert math.isclose(float(tau.sum()), 1.0, rel_tol=1e-12)
    u = v / v.norm()
    Ak_u = u.clone()
    for k in range(2 * m):
        exact = float(u @ Ak_u)
        assert math.isclose(float((tau * theta ** k).sum()), exact, rel_tol=1e-8, abs_tol=1e-12), k
        Ak_u = A @ Ak_u


def test_density_is_a_probability_density_and_sees_the_outliers():
    A, lam = _spectrum_with_outliers(n=200, seed=2)
    d = curvature.density(A, probes=6, steps=40, sigma=0.5, seed=0)
    assert d.n_products == 6 * 40
    assert math.isclose(float(torch.trapezoid(d.density, d.grid)), 1.0, rel_tol=1e-3)
    # the extreme nodes converge to the extreme eigenvalues
    assert math.isclose(float(d.nodes.max()), float(lam.max()), rel_tol=1e-6)
    assert float(d.nodes.min()) == pytest.approx(float(lam.min()), abs=0.05)
    # the density's mean is the normalized trace (tr A / P): exact in expectation, close for 6 probes
    mean = float(torch.trapezoid(d.grid * d.density, d.grid))
    assert mean == pytest.approx(float(lam.mean()), abs=0.2)


def test_trace_and_density_reject_bad_arguments():
    A = torch.eye(4, dtype=torch.float64)
    with pytest.raises(RavineError, match="Invalid method"):
        curvature.trace(A, method="xtrace")
    with pytest.raises(RavineError, match="Invalid n_products"):
        curvature.trace(A, n_products=2)
    with pytest.raises(RavineError, match="Invalid steps"):
        curvature.density(A, steps=1)
