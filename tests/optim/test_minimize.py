"""``ravine.optim.minimize``: SciPy's Rosenbrock oracles, stopping rules, result fields, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.optimize import rosen, rosen_der

from ravine.errors import DataError, DivergenceError, HyperparameterError, RavineError, UnknownNameError
from ravine.optim.minimization import METHODS, minimize
from ravine.optim.result import OptimizeResult

F64 = torch.float64


def rosen_torch(x: torch.Tensor) -> torch.Tensor:
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


X0 = np.array([-1.2, 1.0, -1.2, 1.0, -1.2, 1.0])
X0_SCIPY_DOCS = np.array([1.3, 0.7, 0.8, 1.9, 1.2])  # from -1.2, 1, ... n-D Rosenbrock has a local minimum


@pytest.mark.parametrize("method", METHODS)
def test_rosenbrock_minimum_with_scipy_oracles(method):
    res = minimize(rosen_torch, X0_SCIPY_DOCS, method=method, gtol=1e-6, max_iter=2000)
    assert isinstance(res, OptimizeResult)
    assert res.success and res.status == 1, res.message
    np.testing.assert_allclose(res.x.numpy(), np.ones(5), atol=1e-5)
    # the reported cost and gradient are SciPy's rosen / rosen_der at x
    np.testing.assert_allclose(res.cost, rosen(res.x.numpy()), rtol=1e-10, atol=1e-18)
    np.testing.assert_allclose(res.jac.numpy(), rosen_der(res.x.numpy()), rtol=1e-8, atol=1e-12)
    assert res.grad_norm == pytest.approx(np.abs(rosen_der(res.x.numpy())).max(), rel=1e-8, abs=1e-14)
    assert res.grad_norm <= 1e-6
    assert res.nfev >= res.nit >= 1 and res.njev >= 1


def test_newton_one_iteration_on_a_quadratic():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((8, 8))
    A = torch.as_tensor(M @ M.T + 8 * np.eye(8))
    b = torch.as_tensor(rng.standard_normal(8))
    res = minimize(lambda x: 0.5 * x @ A @ x - b @ x, torch.zeros(8, dtype=F64), method="newton", gtol=1e-9)
    assert res.nit == 1 and res.success
    assert torch.allclose(res.x, torch.linalg.solve(A, b))


def test_stopping_rules_and_status_codes():
    capped = minimize(rosen_torch, X0, method="bfgs", max_iter=3)
    assert (capped.status, capped.success, capped.nit) == (0, False, 3)
    by_cost = minimize(rosen_torch, X0, method="lbfgs", ftol=1e3)
    assert (by_cost.status, by_cost.success, by_cost.nit) == (2, True, 1)
    by_step = minimize(rosen_torch, X0, method="newton", xtol=1e3)
    assert (by_step.status, by_step.success, by_step.nit) == (3, True, 1)
    at_min = minimize(rosen_torch, np.ones(4), method="newton-cg")
    assert (at_min.status, at_min.nit, at_min.grad_norm) == (1, 0, 0.0)


def test_float32_and_x0_left_alone():
    x0 = torch.tensor([-1.2, 1.0], dtype=torch.float32)
    res = minimize(rosen_torch, x0, method="lbfgs", gtol=1e-4, max_iter=500)
    assert res.x.dtype == torch.float32 and torch.equal(x0, torch.tensor([-1.2, 1.0]))
    assert torch.allclose(res.x, torch.ones(2), atol=1e-3)


def test_integer_x0_becomes_float64_and_options_pass_through():
    res = minimize(rosen_torch, [0, 0, 0], method="lbfgs", history_size=3, max_iter=500)
    assert res.x.dtype == F64 and res.success


def test_result_to_dict_is_json():
    res = minimize(rosen_torch, X0[:2], method="bfgs")
    data = json.loads(json.dumps(res.to_dict()))
    assert data["x"] == res.x.tolist() and data["extra"]["nhev"] == 0


def test_bad_input():
    with pytest.raises(UnknownNameError, match="newton-cg"):
        minimize(rosen_torch, X0, method="nelder-mead")
    with pytest.raises(HyperparameterError, match="gtol"):
        minimize(rosen_torch, X0, gtol=-1.0)
    with pytest.raises(HyperparameterError, match="max_iter"):
        minimize(rosen_torch, X0, max_iter=0)
    with pytest.raises(HyperparameterError, match="history_size"):
        minimize(rosen_torch, X0, method="lbfgs", history_size=0)
    with pytest.raises(HyperparameterError, match="Invalid hyperparameter for optimizer 'bfgs': 'damping' "):
        minimize(rosen_torch, X0, method="bfgs", damping=1.0)
    with pytest.raises(RavineError, match="tolerance_grad"):
        minimize(rosen_torch, X0, tolerance_grad=1.0)
    with pytest.raises(DataError, match="scalar"):
        minimize(lambda x: x ** 2, X0)
    with pytest.raises(DataError, match="x0"):
        minimize(rosen_torch, [])


@pytest.mark.parametrize("method", METHODS)
def test_nan_at_start_raises_divergence_error(method):
    with pytest.raises(DivergenceError):
        minimize(lambda x: torch.log(x).sum(), -np.ones(3), method=method)


def test_package_attribute_stays_callable_after_the_module_is_imported():
    import ravine.optim

    for _ in range(2):  # the second lookup finds what the import system bound
        assert ravine.optim.minimize(rosen_torch, [1.0, 1.0]).success
