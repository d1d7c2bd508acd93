"""BFGS and L-BFGS: the course's behaviours, checked against independent oracles.

Oracles: the BFGS update and the quasi-Newton product written straight from the formula, the
exact line-search step −gᵀd/(dᵀAd) on a quadratic, ``torch.linalg.solve``, plain gradient descent
in NumPy, analytic minimizers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ravine.optim
from ravine.errors import ClosureError, DivergenceError, HyperparameterError

F64 = torch.float64
METHODS = ["bfgs", "lbfgs"]


def _quadratic(n: int = 10, cond: float = 1e4, seed: int = 0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = q @ np.diag(np.logspace(0, math.log10(cond), n)) @ q.T
    return A, rng.standard_normal(n)


def _loss_closure(opt, x, fn):
    def closure():
        opt.zero_grad()
        loss = fn(x)
        loss.backward()
        return loss
    return closure


def _rosen(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


@pytest.mark.parametrize("method", METHODS)
def test_at_most_n_plus_1_iterations_on_quadratic_with_exact_line_search(method):
    A_np, b_np = _quadratic()
    A, b = torch.as_tensor(A_np), torch.as_tensor(b_np)
    n = len(b)

    def exact_step(theta, d, f, g):  # argmin_t f(θ + t d) for f = ½θᵀAθ − bᵀθ
        return float(-(g @ d) / (d @ A @ d))

    x = torch.zeros(n, dtype=F64, requires_grad=True)
    extra = {"history_size": n} if method == "lbfgs" else {}
    opt = ravine.optim.create(method, [x], max_iter=n + 1, line_search=exact_step, tolerance_grad=1e-8, **extra)
    opt.step(_loss_closure(opt, x, lambda v: 0.5 * v @ A @ v - b @ v))
    assert opt.flat_state["status"] == 1, opt.flat_state["message"]  # gradient tolerance, within n + 1
    assert opt.flat_state["n_iter"] <= n + 1
    assert torch.allclose(x.detach(), torch.linalg.solve(A, b), rtol=1e-6, atol=1e-8)


def test_bfgs_inverse_hessian_is_exact_after_n_exact_steps():
    A_np, b_np = _quadratic(n=5, cond=100.0)
    A, b = torch.as_tensor(A_np), torch.as_tensor(b_np)
    x = torch.zeros(5, dtype=F64, requires_grad=True)
    opt = ravine.optim.create("bfgs", [x], max_iter=5, tolerance_grad=0.0,
                              line_search=lambda th, d, f, g: float(-(g @ d) / (d @ A @ d)))
    opt.step(_loss_closure(opt, x, lambda v: 0.5 * v @ A @ v - b @ v))
    opt.step(_loss_closure(opt, x, lambda v: 0.5 * v @ A @ v - b @ v))  # completes the last pair
    assert torch.allclose(opt.flat_state["inv_hessian"], torch.linalg.inv(A), rtol=1e-5, atol=1e-8)


def test_gradient_descent_needs_thousands_of_steps_on_the_same_quadratic():
    A, b = _quadratic()
    x = np.zeros(len(b))
    g0 = np.abs(A @ x - b).max()
    eig = np.linalg.eigvalsh(A)
    lr = 2.0 / (eig.max() + eig.min())  # the best fixed step
    for _ in range(5000):
        x -= lr * (A @ x - b)
    # still far from the tolerance BFGS met in n + 1 = 11 iterations (and Newton in 1)
    assert np.abs(A @ x - b).max() > 1e-8 * g0


def test_bfgs_update_matches_formula():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, dtype=F64, generator=gen, requires_grad=True)
    opt = ravine.optim.create("bfgs", [x])
    fn = lambda v: (v ** 4).sum() + (v[0] * v[1]) ** 2 + v.sum()  # noqa: E731
    opt.step(_loss_closure(opt, x, fn))  # first step: H̃ = I direction, pair pending
    s = opt.flat_state["s"].clone()
    g_old = opt.flat_state["prev_grad"].clone()
    opt.step(_loss_closure(opt, x, fn))  # update with (s, y) then a second step
    xs = (x.detach() - opt.flat_state["s"]).requires_grad_(True)  # the point where y was completed
    (g1,) = torch.autograd.grad(fn(xs), [xs])
    y = g1 - g_old
    rho = 1 / (y @ s)
    eye = torch.eye(4, dtype=F64)
    h0 = (y @ s) / (y @ y) * eye
    expected = (eye - rho * torch.outer(s, y)) @ h0 @ (eye - rho * torch.outer(y, s)) + rho * torch.outer(s, s)
    assert torch.allclose(opt.flat_state["inv_hessian"], expected, atol=1e-12)


def test_lbfgs_two_loop_matches_the_explicit_product():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, dtype=F64, generator=gen, requires_grad=True)
    opt = ravine.optim.create("lbfgs", [x], history_size=3, max_iter=6, tolerance_grad=0.0)
    fn = lambda v: (v ** 4).sum() + 0.5 * (v ** 2).sum() + v[0] * v[-1]  # noqa: E731
    opt.step(_loss_closure(opt, x, fn))
    opt.step(_loss_closure(opt, x, fn))  # completes the pending pair
    state = opt.flat_state
    assert len(state["steps"]) == 3
    g = torch.randn(6, dtype=F64, generator=gen)
    h = state["gamma"] * torch.eye(6, dtype=F64)
    eye = torch.eye(6, dtype=F64)
    for s, y in zip(state["steps"], state["grad_diffs"], strict=True):
        rho = 1 / (y @ s)
        h = (eye - rho * torch.outer(s, y)) @ h @ (eye - rho * torch.outer(y, s)) + rho * torch.outer(s, s)
    assert torch.allclose(opt._quasi_newton_direction(g), -h @ g, atol=1e-10)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 1e-2)])
def test_rosenbrock_reaches_the_minimum(method, dtype, tol):
    x = torch.tensor([-1.2, 1.0, -1.2, 1.0], dtype=dtype, requires_grad=True)
    opt = ravine.optim.create(method, [x], max_iter=500)
    opt.step(_loss_closure(opt, x, _rosen))
    assert torch.allclose(x.detach(), torch.ones(4, dtype=dtype), atol=tol)


@pytest.mark.parametrize("method", METHODS)
def test_one_iteration_per_step_by_default_and_memory_kept_across_steps(method):
    x = torch.tensor([-1.2, 1.0], dtype=F64, requires_grad=True)
    opt = ravine.optim.create(method, [x])
    closure = _loss_closure(opt, x, _rosen)
    for _ in range(200):
        opt.step(closure)
    assert opt.flat_state["n_iter"] <= 200
    assert torch.allclose(x.detach(), torch.ones(2, dtype=F64), atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_trial_step_into_nan_region_is_shrunk_not_propagated(method):
    # f(x) = −x − 10⁻³ log(2 − x): NaN for x > 2, minimizer x = 2 − 10⁻³ (f' = 0).
    x = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = ravine.optim.create(method, [x], max_iter=100)
    opt.step(_loss_closure(opt, x, lambda v: (-v - 1e-3 * torch.log(2 - v)).sum()))
    assert abs(float(x.detach()) - 1.999) < 1e-6


@pytest.mark.parametrize("method", METHODS)
def test_nan_loss_raises_divergence_error(method):
    x = torch.ones(2, requires_grad=True)
    opt = ravine.optim.create(method, [x])
    with pytest.raises(DivergenceError, match="loss"):
        opt.step(_loss_closure(opt, x, lambda v: (v * float("nan")).sum()))


@pytest.mark.parametrize("method", METHODS)
def test_closure_errors(method):
    x = torch.ones(2, requires_grad=True)
    opt = ravine.optim.create(method, [x])
    with pytest.raises(ClosureError):
        opt.step()
    with pytest.raises(ClosureError, match="backward"):
        opt.step(lambda: (x ** 2).sum())

    def vector_closure():
        opt.zero_grad()
        loss = x ** 2
        loss.sum().backward()
        return loss

    with pytest.raises(ClosureError, match="scalar"):
        opt.step(vector_closure)


@pytest.mark.parametrize("method,key,value", [
    ("bfgs", "lr", 0.0), ("bfgs", "c1", 0.0), ("bfgs", "c2", 1e-5), ("bfgs", "max_ls", 0),
    ("bfgs", "line_search", "backtracking"), ("bfgs", "tolerance_change", -1.0), ("bfgs", "max_iter", 1.5),
    ("lbfgs", "history_size", 0), ("lbfgs", "tolerance_step", float("nan")),
])
def test_bad_hyperparameters_name_the_field(method, key, value):
    with pytest.raises(HyperparameterError, match=key):
        ravine.optim.create(method, [torch.ones(2, requires_grad=True)], **{key: value})


def test_bfgs_refuses_too_many_params_and_points_to_lbfgs():
    with pytest.raises(HyperparameterError, match="lbfgs"):
        ravine.optim.create("bfgs", [torch.ones(11, requires_grad=True)], max_params=10)


@pytest.mark.parametrize("method", METHODS)
def test_state_dict_round_trip(method):
    x = torch.tensor([-1.2, 1.0, 0.5], dtype=F64, requires_grad=True)
    opt = ravine.optim.create(method, [x])
    for _ in range(4):
        opt.step(_loss_closure(opt, x, _rosen))
    x2 = x.detach().clone().requires_grad_(True)
    opt2 = ravine.optim.create(method, [x2])
    opt2.load_state_dict(opt.state_dict())
    for _ in range(3):
        opt.step(_loss_closure(opt, x, _rosen))
        opt2.step(_loss_closure(opt2, x2, _rosen))
    assert torch.equal(x, x2)
    assert opt2.flat_state["n_iter"] == opt.flat_state["n_iter"]


def test_registry_entries():
    for name in METHODS:
        entry = ravine.optim.info(name)
        assert entry.closure == "loss" and entry.full_batch and entry.train_lr == 1.0
        assert entry.defaults["lr"] == 1.0 and entry.formula
    assert ravine.optim.info("l-bfgs").name == "lbfgs"
