"""Newton and Newton-CG: the course's behaviours, checked against independent oracles.

Oracles: ``torch.linalg.lstsq`` (linear regression), ``torch.autograd.functional.hessian``,
``scipy.optimize.rosen_hess``, central finite differences of the gradient, ``torch.linalg.solve``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import rosen_hess

import ravine.optim
from ravine.errors import ClosureError, DivergenceError, HyperparameterError
from ravine.optim.newton import hessian_from_grads, hessian_vector_product, modified_newton_solve, truncated_cg

F64 = torch.float64


def _regression(dtype: torch.dtype = F64, n: int = 80, d: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=dtype)
    y = X @ torch.randn(d, 1, generator=gen, dtype=dtype) + 0.3 + 0.1 * torch.randn(n, 1, generator=gen, dtype=dtype)
    return X, y


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_newton_reaches_least_squares_solution_in_one_step(dtype, tol):
    X, y = _regression(dtype)
    model = torch.nn.Linear(4, 1).to(dtype)
    opt = ravine.optim.create("newton", model.parameters())
    opt.step(lambda: ((model(X) - y) ** 2).mean())
    A = torch.cat([X, torch.ones(len(X), 1, dtype=dtype)], dim=1).double()
    w_star = torch.linalg.lstsq(A, y.double()).solution.reshape(-1)
    got = torch.cat([model.weight.detach().reshape(-1), model.bias.detach()]).double()
    assert torch.allclose(got, w_star, atol=tol, rtol=tol)
    assert opt.flat_state["n_iter"] == 1


def _ill_conditioned_quadratic(n: int = 10, cond: float = 1e4, seed: int = 0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = torch.as_tensor(q @ np.diag(np.logspace(0, math.log10(cond), n)) @ q.T)
    b = torch.as_tensor(rng.standard_normal(n))
    return A, b


def test_newton_one_step_on_ill_conditioned_quadratic():
    A, b = _ill_conditioned_quadratic()
    x = torch.zeros(10, dtype=F64, requires_grad=True)
    opt = ravine.optim.create("newton", [x])
    opt.step(lambda: 0.5 * x @ A @ x - b @ x)
    assert torch.allclose(x.detach(), torch.linalg.solve(A, b), rtol=1e-8, atol=1e-10)


def test_newton_cg_on_ill_conditioned_quadratic_one_outer_step():
    A, b = _ill_conditioned_quadratic()
    x = torch.zeros(10, dtype=F64, requires_grad=True)
    opt = ravine.optim.create("newton-cg", [x], max_iter=50, tolerance_grad=1e-9)
    opt.step(lambda: 0.5 * x @ A @ x - b @ x)
    assert torch.allclose(x.detach(), torch.linalg.solve(A, b), rtol=1e-6, atol=1e-8)


def test_hessian_matches_torch_functional_hessian_for_an_mlp():
    gen = torch.Generator().manual_seed(1)
    X, y = torch.randn(20, 3, generator=gen, dtype=F64), torch.randn(20, 1, generator=gen, dtype=F64)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    flat = torch.cat([p.detach().reshape(-1) for p in params])

    def loss_of(vec: torch.Tensor) -> torch.Tensor:
        chunks = vec.split([math.prod(s) for s in shapes])
        w1, b1, w2, b2 = (c.reshape(s) for c, s in zip(chunks, shapes, strict=True))
        return ((torch.tanh(X @ w1.T + b1) @ w2.T + b2 - y) ** 2).mean()

    expected = torch.autograd.functional.hessian(loss_of, flat)
    grads = torch.autograd.grad(((model(X) - y) ** 2).mean(), params, create_graph=True)
    assert torch.allclose(hessian_from_grads(grads, params), expected, atol=1e-12)


def test_hessian_matches_scipy_rosen_hess():
    x0 = np.array([0.3, -0.7, 1.2, 0.5])
    x = torch.tensor(x0, requires_grad=True)
    f = (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
    grads = torch.autograd.grad(f, [x], create_graph=True)
    np.testing.assert_allclose(hessian_from_grads(grads, [x]).numpy(), rosen_hess(x0), rtol=1e-12)


def test_hessian_vector_product_matches_finite_differences():
    gen = torch.Generator().manual_seed(2)
    w = torch.randn(6, dtype=F64, generator=gen, requires_grad=True)
    v = torch.randn(6, dtype=F64, generator=gen)

    def grad_at(point: torch.Tensor) -> torch.Tensor:
        p = point.detach().requires_grad_(True)
        return torch.autograd.grad(torch.log1p(torch.exp(p.sin() * 2)).sum() + (p ** 4).sum() * p[0], p)[0]

    h = 1e-5
    fd = (grad_at(w + h * v) - grad_at(w - h * v)) / (2 * h)
    grads = torch.autograd.grad(torch.log1p(torch.exp(w.sin() * 2)).sum() + (w ** 4).sum() * w[0], [w],
                                create_graph=True)
    assert torch.allclose(hessian_vector_product(grads, [w], v), fd, rtol=1e-6, atol=1e-8)


def test_truncated_cg_solves_spd_system_when_gradient_is_small():
    A, b = _ill_conditioned_quadratic(n=6, cond=100.0)
    g = 1e-8 * b  # forcing term √‖g‖₁ ≈ 1e-4 -> tight solve
    d = truncated_cg(lambda v: A @ v, g, 100)
    assert torch.allclose(d, torch.linalg.solve(A, -g), rtol=1e-3)


def test_truncated_cg_negative_curvature_gives_descent_direction():
    H = torch.diag(torch.tensor([-1.0, 2.0, 3.0], dtype=F64))
    g = torch.tensor([1.0, 1.0, 1.0], dtype=F64)
    assert float(g @ truncated_cg(lambda v: H @ v, g, 10)) < 0


def test_modified_newton_solve_is_plain_solve_when_positive_definite():
    A, b = _ill_conditioned_quadratic(n=5, cond=10.0)
    assert torch.allclose(modified_newton_solve(A, b), torch.linalg.solve(A, b))


@pytest.mark.parametrize("method", ["newton", "newton-cg"])
def test_newton_decreases_at_a_saddle(method):
    # f = ½x² − ½y² + ¼y⁴ has a saddle at 0: the pure Newton step from (0.01, 0.5) jumps to it
    # (f rises from −0.1093 to 0); the modified step must go downhill towards y = ±1.
    xy = torch.tensor([0.01, 0.5], dtype=F64, requires_grad=True)

    def f():
        return 0.5 * xy[0] ** 2 - 0.5 * xy[1] ** 2 + 0.25 * xy[1] ** 4

    opt = ravine.optim.create(method, [xy])
    before = float(f().detach())
    opt.step(f)
    assert float(f().detach()) < before
    opt = ravine.optim.create(method, [xy], max_iter=50)
    opt.step(f)
    assert abs(abs(float(xy[1].detach())) - 1.0) < 1e-6 and abs(float(xy[0].detach())) < 1e-6


@pytest.mark.parametrize("method", ["newton", "newton-cg"])
def test_nan_loss_raises_divergence_error(method):
    w = torch.ones(2, requires_grad=True)
    opt = ravine.optim.create(method, [w])
    with pytest.raises(DivergenceError, match="loss"):
        opt.step(lambda: (w * float("nan")).sum())


@pytest.mark.parametrize("method", ["newton", "newton-cg"])
def test_closure_errors(method):
    w = torch.ones(2, requires_grad=True)
    opt = ravine.optim.create(method, [w])
    with pytest.raises(ClosureError):
        opt.step()
    with pytest.raises(ClosureError, match="without|autograd"):
        opt.step(lambda: (w ** 2).sum().detach())


@pytest.mark.parametrize("method,key,value", [
    ("newton", "lr", -1.0), ("newton", "damping", -0.1), ("newton", "max_iter", 0), ("newton", "c1", 1.5),
    ("newton", "c2", 1e-5), ("newton", "line_search", "exact"), ("newton", "tolerance_grad", -1.0),
    ("newton-cg", "cg_max_iter", 0), ("newton-cg", "max_ls", 0),
])
def test_bad_hyperparameters_name_the_field(method, key, value):
    with pytest.raises(HyperparameterError, match=key):
        ravine.optim.create(method, [torch.ones(2, requires_grad=True)], **{key: value})


def test_newton_refuses_too_many_params_and_points_to_newton_cg():
    with pytest.raises(HyperparameterError, match="newton-cg"):
        ravine.optim.create("newton", [torch.ones(11, requires_grad=True)], max_params=10)


@pytest.mark.parametrize("method", ["newton", "newton-cg"])
def test_state_dict_round_trip(method):
    X, y = _regression()
    w = torch.zeros(4, 1, dtype=F64, requires_grad=True)
    opt = ravine.optim.create(method, [w], line_search="armijo")
    opt.step(lambda: ((X @ w - y) ** 4).mean())
    w2 = w.detach().clone().requires_grad_(True)
    opt2 = ravine.optim.create(method, [w2])
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["line_search"] == "armijo"
    assert opt2.flat_state["n_iter"] == opt.flat_state["n_iter"] == 1
    opt.step(lambda: ((X @ w - y) ** 4).mean())
    opt2.step(lambda: ((X @ w2 - y) ** 4).mean())
    assert torch.equal(w, w2)


def test_registry_entries():
    for name in ("newton", "newton-cg"):
        entry = ravine.optim.info(name)
        assert entry.closure == "graph" and entry.full_batch and entry.train_lr == 1.0
        assert entry.defaults["lr"] == 1.0 and entry.formula
