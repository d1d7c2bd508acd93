"""Critical points, condition numbers, convexity: oracles written out from the formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from curv_oracle import reference_hessian
from ravine import curvature
from ravine.errors import RavineError


def _hessian_2d(f, point: tuple[float, float]) -> torch.Tensor:
    return torch.autograd.functional.hessian(f, torch.tensor(point, dtype=torch.float64))


def test_saddle_x2_minus_y2_and_a_bowl_and_a_cap():
    def saddle(p):
        return p[0] ** 2 - p[1] ** 2
    got = curvature.classify_critical_point(eigenvalues=torch.linalg.eigvalsh(_hessian_2d(saddle, (0.0, 0.0))),
                                            grad_norm=0.0)
    assert (got.kind, got.n_positive, got.n_negative, got.n_zero, got.critical) == ("saddle", 1, 1, 0, True)
    assert curvature.classify_critical_point(eigenvalues=[2.0, 0.5]).kind == "minimum"
    assert curvature.classify_critical_point(eigenvalues=[-2.0, -0.5]).kind == "maximum"


def test_monkey_saddle_is_degenerate():
    def monkey(p):
        return p[0] ** 3 - 3 * p[0] * p[1] ** 2
    eig = torch.linalg.eigvalsh(_hessian_2d(monkey, (0.0, 0.0)))
    got = curvature.classify_critical_point(eigenvalues=eig, grad_norm=0.0)
    assert got.kind == "degenerate" and got.n_zero == 2


def test_extremes_alone_classify_like_the_full_spectrum():
    full = torch.tensor([5.0, 3.0, 1.0, 0.5, -0.25])
    extremes = torch.tensor([5.0, -0.25])
    assert curvature.classify_critical_point(eigenvalues=full).kind == "saddle"
    assert curvature.classify_critical_point(eigenvalues=extremes).kind == "saddle"
    point = curvature.classify_critical_point(eigenvalues=[1.0, 2.0], grad_norm=0.3)
    assert point.kind == "minimum" and point.critical is False


def test_classify_accepts_an_eigen_result_and_rejects_nan():
    A = torch.diag(torch.tensor([3.0, -1.0, 2.0, 4.0, 1.0], dtype=torch.float64))
    res = curvature.eigenvalues(A, k=1, which="both_ends")
    assert curvature.classify_critical_point(eigenvalues=res).kind == "saddle"
    with pytest.raises(RavineError, match="Invalid eigenvalues"):
        curvature.classify_critical_point(eigenvalues=[float("nan")])


def _quadratic_model(eigs: list[float], seed: int = 0):
    """Linear least squares whose Hessian (2/N)XᵀX has exactly the eigenvalues ``eigs`` (no bias)."""
    d = len(eigs)
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    n = d
    # X = √(N/2) diag(√λ) Qᵀ ⇒ (2/N) XᵀX = Q diag(λ) Qᵀ
    X = math.sqrt(n / 2) * torch.diag(torch.tensor(eigs, dtype=torch.float64).sqrt()) @ Q.T
    y = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, d, generator=gen, dtype=torch.float64))
    return model, nn.functional.mse_loss, (X, y)


def test_condition_number_of_an_ill_conditioned_quadratic_is_its_kappa():
    kappa = 300.0
    eigs = torch.logspace(0, math.log10(kappa), 40, dtype=torch.float64).tolist()
    model, loss_fn, data = _quadratic_model(eigs)
    got = curvature.condition_number(model, loss_fn, data, tol=1e-8)
    assert got == pytest.approx(kappa, rel=1e-6)
    assert curvature.condition_number_of([kappa, 1.0, 2.0]) == kappa
    assert curvature.condition_number(torch.diag(torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64))) == math.inf


def test_least_squares_solution_is_a_minimum():
    model, loss_fn, (X, y) = _quadratic_model([1.0, 2.0, 5.0, 0.5])
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(X, y).solution.T)
    g = curvature.gradient(model, loss_fn, (X, y))
    eig = curvature.eigenvalues(model, loss_fn, (X, y), k=1, which="both_ends", tol=1e-8)
    point = curvature.classify_critical_point(eigenvalues=eig, grad_norm=float(g.norm()))
    assert point.kind == "minimum" and point.critical


def test_convexity_along_directions_and_gradient_curvature(small_problem):
    p = small_problem
    H = p["H"]
    eigval, eigvec = torch.linalg.eigh(H)
    data = (p["x"], p["y"])
    top, bottom = eigvec[:, -1], eigvec[:, 0]
    assert eigval[0] < 0 < eigval[-1]  # the random tanh MLP sits on a saddle-shaped spot
    conv = curvature.is_convex(p["model"], p["loss_fn"], data, [top, bottom])
    assert conv.curvatures[0] == pytest.approx(float(eigval[-1]), rel=1e-8)
    assert conv.curvatures[1] == pytest.approx(float(eigval[0]), rel=1e-8)
    assert not conv.convex
    assert curvature.is_convex(p["model"], p["loss_fn"], data, top).convex
    g = curvature.gradient(p["model"], p["loss_fn"], data)
    assert curvature.gradient_curvature(p["model"], p["loss_fn"], data) == pytest.approx(
        float(g @ H @ g / (g @ g)), rel=1e-10)


def test_convexity_on_a_segment_of_a_double_well():
    # J(w) = mean((w² − 1)²) with one weight: convex along w near w = 2, not on [−1, 1] around 0
    class Square(nn.Module):
        def __init__(self, w: float) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.tensor([w], dtype=torch.float64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.w ** 2

    def loss_fn(out, y):
        return ((out - y) ** 2).mean()

    data = (torch.ones(3, 1, dtype=torch.float64), torch.ones(3, 1, dtype=torch.float64))
    d = torch.ones(1, dtype=torch.float64)
    assert curvature.is_convex(Square(2.0), loss_fn, data, d, radius=0.3).convex
    local = curvature.is_convex(Square(0.9), loss_fn, data, d)
    assert local.convex  # J'' = 12w² − 4 > 0 at 0.9 ...
    seg = curvature.is_convex(Square(0.9), loss_fn, data, d, radius=1.0)
    assert seg.segment == [False] and not seg.convex  # ... but not on [−0.1, 1.9]
    # oracle for the local curvature: J''(w) = 12 w² − 4
    assert local.curvatures[0] == pytest.approx(12 * 0.81 - 4, rel=1e-10)
    H = reference_hessian(Square(0.9), loss_fn, *data)
    assert float(H) == pytest.approx(12 * 0.81 - 4, rel=1e-10)
