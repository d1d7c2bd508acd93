"""The 2-D test functions: hand-written gradients, Hessians and residuals against autograd and SciPy;
the listed critical points against autograd's gradient and Hessian."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch

from ravine.errors import ConfigError, UnknownNameError
from ravine.landscape import functions

NAMES = functions.names()


def _points(fn: functions.TestFunction, n: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    (x_lo, x_hi), (y_lo, y_hi) = fn.bounds
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.stack([x_lo + (x_hi - x_lo) * u[:, 0], y_lo + (y_hi - y_lo) * u[:, 1]], 1)


def _autograd(fn: functions.TestFunction, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    def f(v: torch.Tensor) -> torch.Tensor:
        return fn.value(v[0], v[1])

    return torch.autograd.functional.jacobian(f, p), torch.autograd.functional.hessian(f, p)


def test_registry_has_the_issue_functions() -> None:
    assert set(NAMES) == {"rosenbrock", "beale", "himmelblau", "saddle", "monkey-saddle", "quadratic",
                          "six-hump-camel", "rastrigin"}


@pytest.mark.parametrize("name", NAMES)
def test_gradient_and_hessian_match_autograd(name: str) -> None:
    fn = functions.get(name)
    for p in _points(fn):
        grad, hess = _autograd(fn, p)
        gx, gy = fn.gradient(p[0], p[1])
        torch.testing.assert_close(torch.stack([gx, gy]), grad, rtol=1e-10, atol=1e-9)
        torch.testing.assert_close(fn.hessian(p[0], p[1]), hess, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_vectorized_over_a_grid(name: str) -> None:
    fn = functions.get(name)
    pts = _points(fn, 5)
    values = fn.value(pts[:, 0], pts[:, 1])
    for k, p in enumerate(pts):
        assert float(values[k]) == pytest.approx(float(fn.value(p[0], p[1])), rel=1e-12)
    assert fn.hessian(pts[:, 0], pts[:, 1]).shape == (5, 2, 2)


@pytest.mark.parametrize("name", [n for n in NAMES if functions.get(n).residuals is not None])
def test_residuals_are_the_square_root_of_the_function(name: str) -> None:
    fn = functions.get(name)
    for p in _points(fn):
        r = fn.residual_vector(p)
        assert float(0.5 * (r**2).sum()) == pytest.approx(float(fn(p)), rel=1e-12, abs=1e-12)


def test_least_squares_functions_are_the_sums_of_squares() -> None:
    with_residuals = {n for n in NAMES if functions.get(n).residuals is not None}
    assert with_residuals == {"rosenbrock", "beale", "himmelblau", "quadratic"}
    with pytest.raises(ConfigError, match="not a sum of squares"):
        functions.get("rastrigin").residual_vector(torch.zeros(2))


def test_rosenbrock_against_scipy() -> None:
    fn = functions.get("rosenbrock")
    for p in _points(fn):
        x = p.numpy()
        assert float(fn(p)) == pytest.approx(scipy.optimize.rosen(x), rel=1e-12)
        gx, gy = fn.gradient(p[0], p[1])
        np.testing.assert_allclose([float(gx), float(gy)], scipy.optimize.rosen_der(x), rtol=1e-12)
        np.testing.assert_allclose(fn.hessian(p[0], p[1]).numpy(), scipy.optimize.rosen_hess(x), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_listed_critical_points_are_what_they_claim(name: str) -> None:
    fn = functions.get(name)
    groups = {"minimum": fn.minima, "saddle": fn.saddles, "maximum": fn.maxima, "degenerate": fn.degenerate}
    for kind, points in groups.items():
        for point in points:
            grad, hess = _autograd(fn, torch.tensor(point, dtype=torch.float64))
            assert float(grad.norm()) < 1e-8, (kind, point)
            eig = torch.linalg.eigvalsh(hess)
            if kind == "minimum":
                assert bool((eig > 0).all())
            elif kind == "maximum":
                assert bool((eig < 0).all())
            elif kind == "saddle":
                assert float(eig[0]) < 0 < float(eig[1])
            else:
                assert float(eig.abs().max()) < 1e-12


def test_known_values_at_the_minima() -> None:
    # certified values: Rosenbrock, Beale, Himmelblau and Rastrigin have f = 0 at their global minima;
    # the six-hump camel's global minimum is −1.031628453 (Dixon & Szegő's table)
    for name in ("rosenbrock", "beale", "himmelblau", "rastrigin"):
        fn = functions.get(name)
        for m in fn.minima:
            assert float(fn(torch.tensor(m, dtype=torch.float64))) == pytest.approx(0.0, abs=1e-20)
    camel = functions.get("six-hump-camel")
    assert float(camel(torch.tensor(camel.minima[0], dtype=torch.float64))) == pytest.approx(-1.031628453, abs=1e-8)


@pytest.mark.parametrize("kappa", [1.0, 10.0, 1000.0])
@pytest.mark.parametrize("angle", [0.0, 30.0, 75.0])
def test_quadratic_condition_number_is_kappa(kappa: float, angle: float) -> None:
    fn = functions.get("quadratic", kappa=kappa, angle=angle)
    _, hess = _autograd(fn, torch.tensor([0.3, -0.7], dtype=torch.float64))
    eig = torch.linalg.eigvalsh(hess)
    assert float(eig[-1] / eig[0]) == pytest.approx(kappa, rel=1e-10)
    # and through ravine.curvature, from the same autograd Hessian
    from ravine.curvature import eigenvalues

    both = eigenvalues(hess, k=1, which="both_ends")
    assert float(both.values.max() / both.values.min()) == pytest.approx(kappa, rel=1e-8)


def test_bad_names_and_options() -> None:
    with pytest.raises(UnknownNameError, match="rosenbrock"):
        functions.get("banana")
    with pytest.raises(ConfigError, match="kappa"):
        functions.get("quadratic", kappa=0.5)
    with pytest.raises(ConfigError):
        functions.get("rosenbrock", kappa=3.0)


def test_nearest_minimum_is_euclidean() -> None:
    fn = functions.get("himmelblau")
    point = (2.0, 2.5)
    best, dist = fn.nearest_minimum(point)
    assert dist == min(math.dist(point, m) for m in fn.minima)
    assert best == (3.0, 2.0)
    assert math.isnan(functions.get("saddle").nearest_minimum((0.0, 1.0))[1])
