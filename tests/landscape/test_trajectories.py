"""Optimizer paths on 2-D functions and the critical-point search (the course's Himmelblau / saddle demos)."""

from __future__ import annotations

import math

import pytest
import torch

from ravine import optim
from ravine.curvature import classify_critical_point
from ravine.errors import ConfigError, UnknownNameError
from ravine.landscape import critical_points, functions, run_optimizer, trajectories


def _autograd_eigs(fn: functions.TestFunction, point: tuple[float, float]) -> torch.Tensor:
    hess = torch.autograd.functional.hessian(lambda v: fn.value(v[0], v[1]), torch.tensor(point,
                                                                                         dtype=torch.float64))
    return torch.linalg.eigvalsh(hess)


def test_himmelblau_search_finds_the_four_minima_and_the_saddles() -> None:
    fn = functions.get("himmelblau")
    found = critical_points(fn, grid=9)
    minima = [c for c in found if c.kind == "minimum"]
    assert len(minima) == 4
    for c in minima:
        # f ≥ 0 everywhere and f = 0 only at the global minima: an oracle that needs no listed coordinates
        assert c.value == pytest.approx(0.0, abs=1e-18)
        assert float(_autograd_eigs(fn, c.point)[0]) > 0
    # every listed minimum is among them
    for m in fn.minima:
        assert min(math.dist(m, c.point) for c in minima) < 1e-9
    saddles = [c for c in found if c.kind == "saddle"]
    assert saddles, "the grid of starts must reach some saddles"
    for c in saddles:
        eig = _autograd_eigs(fn, c.point)
        assert float(eig[0]) < 0 < float(eig[1])
        grad = torch.autograd.functional.jacobian(lambda v: fn.value(v[0], v[1]),
                                                  torch.tensor(c.point, dtype=torch.float64))
        assert float(grad.norm()) < 1e-8
    assert {c.kind for c in found} <= {"minimum", "saddle", "maximum"}


def test_saddle_at_origin_is_a_saddle() -> None:
    fn = functions.get("saddle")
    eig = _autograd_eigs(fn, (0.0, 0.0))
    assert classify_critical_point(eigenvalues=eig, grad_norm=0.0, tol=1e-8).kind == "saddle"
    found = critical_points(fn, grid=3)
    assert [(c.kind, c.point) for c in found] == [("saddle", (0.0, 0.0))]


def test_monkey_saddle_origin_is_degenerate() -> None:
    found = critical_points("monkey-saddle", grid=4)
    assert [c.kind for c in found] == ["degenerate"]
    assert math.dist(found[0].point, (0.0, 0.0)) < 1e-6


def test_gradient_descent_path_is_the_formula() -> None:
    # θ_{t+1} = θ_t − ε ∇f(θ_t), written out with the hand gradient
    fn, eps = functions.get("himmelblau"), 0.005
    run = run_optimizer(fn, "gd", start=(0.5, -0.5), steps=15, lr=eps)
    x, y = torch.tensor(0.5, dtype=torch.float64), torch.tensor(-0.5, dtype=torch.float64)
    for t in range(16):
        assert run.path[t] == pytest.approx((float(x), float(y)), rel=1e-12, abs=1e-12)
        gx, gy = fn.gradient(x, y)
        x, y = x - eps * gx, y - eps * gy


def test_newton_and_gauss_newton_solve_the_quadratic_in_one_step() -> None:
    runs = trajectories(functions.get("quadratic", kappa=100.0), ["newton", "gn"], start=(1.5, -1.0), steps=3)
    for run in runs.values():
        assert run.path[1] == pytest.approx((0.0, 0.0), abs=1e-12)
        assert run.steps_to_within == 1


def test_every_registry_optimizer_runs_from_the_same_start() -> None:
    fn = functions.get("rosenbrock")
    runs = trajectories(fn, optim.names(), start=(-1.2, 1.0), steps=5)
    assert list(runs) == optim.names()
    for name, run in runs.items():
        assert run.path[0] == (-1.2, 1.0), name
        assert run.status in ("ok", "converged"), name
        assert run.values[0] == pytest.approx(24.2)  # f(−1.2, 1) = 2.2² + 100·0.44²
        assert math.isclose(run.distance, math.dist(run.final, (1.0, 1.0)), rel_tol=1e-12)


def test_second_order_methods_reach_the_rosenbrock_minimum() -> None:
    runs = trajectories("rosenbrock", ["newton", "lm", "bfgs"], start=(-1.2, 1.0), steps=100)
    for name, run in runs.items():
        assert run.distance < 1e-6, name
        first = run.steps_to_within
        assert first is not None and math.dist(run.path[first], (1.0, 1.0)) <= 1e-6
        assert math.dist(run.path[first - 1], (1.0, 1.0)) > 1e-6


def test_least_squares_optimizer_needs_residuals() -> None:
    with pytest.raises(ConfigError, match="not a sum of squares"):
        trajectories("six-hump-camel", ["gd", "lm"], steps=3)


def test_divergence_is_recorded() -> None:
    run = run_optimizer("quadratic", "gd", start=(1.0, 1.0), steps=400, lr=1.0)  # ε·κ = 10 > 2
    assert run.status == "diverged"
    assert all(math.isfinite(v) for v in run.path[-1])


def test_bad_inputs() -> None:
    with pytest.raises(UnknownNameError):
        trajectories("rosenbrock", ["gd", "nope"], steps=2)
    with pytest.raises(ConfigError, match="start"):
        run_optimizer("rosenbrock", "gd", start=(1.0,), steps=2)
    with pytest.raises(ConfigError, match="steps"):
        run_optimizer("rosenbrock", "gd", steps=0)
    with pytest.raises(ConfigError, match="each name once"):
        trajectories("rosenbrock", ["gd", "gd"], steps=2)
    with pytest.raises(ConfigError, match="lr"):
        run_optimizer("rosenbrock", "gd", steps=2, lr=-1.0)


def test_json_form_is_plain() -> None:
    import json

    run = run_optimizer("saddle", "gd", steps=3)
    d = run.to_dict()
    assert d["nearest_minimum"] is None and d["distance_to_nearest_minimum"] is None
    json.dumps(d, allow_nan=False)
