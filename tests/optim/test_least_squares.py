"""Gauss–Newton, Levenberg, Levenberg–Marquardt: the step against its formula, the course's limits, failures.

Oracles: the normal equations solved with ``torch.linalg.solve`` (written from the
formula), ``torch.linalg.lstsq``, ``torch.autograd.functional.jacobian``, central
finite differences, and the closed-form minimum of a separable problem.
"""

from __future__ import annotations

import math

import pytest
import torch

import ravine.optim
from ravine.errors import ClosureError, DivergenceError, RavineError
from ravine.optim._jacobian import check_jacobian_memory, flat_jacobian, jacobian_bytes, params_jacobian
from ravine.optim.levenberg_marquardt import (Damping, GaussNewton, LevenbergMarquardt, damped_step, gauss_newton_step,
                                        lambda_for_radius, least_squares)

pytestmark = pytest.mark.usefixtures("single_thread")
F64 = torch.float64


def exp_decay(seed: int = 0, m: int = 30):
    """r(b) = b0·exp(−b1·t) + b2 − y with y from b* = (2, 3, 0.5) plus small noise (nonzero residual)."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 2, m, dtype=F64)
    y = 2 * torch.exp(-3 * t) + 0.5 + 0.01 * torch.randn(m, generator=gen, dtype=F64)
    return lambda b: b[0] * torch.exp(-b[1] * t) + b[2] - y


def jacobian_oracle(fn, x):
    return torch.autograd.functional.jacobian(fn, x)


def normal_equations(J, r, lam, D2):
    """δ from (JᵀJ + λ D²) δ = Jᵀr, straight from the formula."""
    return torch.linalg.solve(J.T @ J + lam * torch.diag(D2), J.T @ r)


# ---------------------------------------------------------------- Jacobians


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_flat_jacobian_matches_autograd_and_finite_differences(mode):
    fn = exp_decay()
    x = torch.tensor([1.0, 2.0, 0.1], dtype=F64)
    r, J = flat_jacobian(fn, x, mode=mode)
    assert torch.allclose(r, fn(x))
    assert torch.allclose(J, jacobian_oracle(fn, x), rtol=1e-12, atol=1e-12)
    h = 1e-6
    fd = torch.stack([(fn(x + h * e) - fn(x - h * e)) / (2 * h) for e in torch.eye(3, dtype=F64)], 1)
    assert torch.allclose(J, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_params_jacobian_of_a_module_closure_matches_autograd(mode):
    gen = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=F64))
    X = torch.randn(7, 2, generator=gen, dtype=F64)
    y = torch.randn(7, generator=gen, dtype=F64)
    params = list(net.parameters())
    r, J = params_jacobian(lambda: net(X).squeeze(1) - y, params, mode=mode)
    flat = torch.cat([p.detach().reshape(-1) for p in params])

    def fn(z):
        out, offset = X, 0
        chunks = []
        for p in params:
            chunks.append(z[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        out = torch.tanh(out @ chunks[0].T + chunks[1]) @ chunks[2].T + chunks[3]
        return out.squeeze(1) - y

    assert torch.allclose(r, fn(flat))
    assert torch.allclose(J, jacobian_oracle(fn, flat), rtol=1e-10, atol=1e-12)


def test_params_jacobian_of_a_closure_with_batchnorm_falls_back_to_autograd():
    gen = torch.Generator().manual_seed(6)
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 1)).double()
    X = torch.randn(8, 2, generator=gen, dtype=F64)
    params = list(net.parameters())
    r, J = params_jacobian(lambda: net(X).squeeze(1), params)  # BatchNorm updates its running stats in place
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(net(X).squeeze(1)[i], params)])
            for i in range(8)]
    assert torch.allclose(J, torch.stack(rows), rtol=1e-10, atol=1e-12)


def test_jacobian_memory_is_reported_and_a_too_large_one_is_refused():
    assert jacobian_bytes(1000, 10, torch.float32) == 40_000
    with pytest.raises(RavineError, match="Jacobian too large"):
        check_jacobian_memory(10**6, 10**4, F64, torch.device("cpu"), budget=2**30)
    with pytest.raises(RavineError, match="Jacobian too large"):
        least_squares(exp_decay(), torch.ones(3, dtype=F64), memory_budget=16)


# ---------------------------------------------------------------- the step and its limits


def test_damped_step_solves_the_damped_normal_equations_both_shapes():
    gen = torch.Generator().manual_seed(1)
    for m, n in [(12, 5), (4, 9)]:  # tall: stacked QR; wide: the m x m system
        J = torch.randn(m, n, generator=gen, dtype=F64)
        r = torch.randn(m, generator=gen, dtype=F64)
        D2 = torch.rand(n, generator=gen, dtype=F64) + 0.5
        for lam in (1e-3, 1.0, 1e3):
            assert torch.allclose(damped_step(J, r, lam, D2), normal_equations(J, r, lam, D2), rtol=1e-9, atol=1e-12)


def test_lm_tends_to_gauss_newton_as_lambda_goes_to_zero():
    fn = exp_decay()
    x = torch.tensor([1.0, 2.0, 0.1], dtype=F64)
    J, r = jacobian_oracle(fn, x), fn(x)
    gn = torch.linalg.solve(J.T @ J, J.T @ r)
    D2 = (J * J).sum(0)
    for lam in (1e-6, 1e-9, 1e-12):
        step = damped_step(J, r, lam, D2)
        assert torch.allclose(step, gn, rtol=100 * lam * float(torch.linalg.cond(J.T @ J)), atol=0)
    assert torch.allclose(gauss_newton_step(J, r), gn, rtol=1e-10)


def test_lm_tends_to_a_diagonally_scaled_gradient_step_as_lambda_grows():
    fn = exp_decay()
    x = torch.tensor([1.0, 2.0, 0.1], dtype=F64)
    J, r = jacobian_oracle(fn, x), fn(x)
    D2 = (J * J).sum(0)
    g = J.T @ r
    for lam in (1e4, 1e6, 1e8):
        step = damped_step(J, r, lam, D2)
        scaled_gradient = g / (lam * D2)
        assert torch.allclose(step, scaled_gradient, rtol=10 / lam)
        assert step.norm() < 10 * g.norm() / lam  # and it is small


def test_lambda_for_radius_hits_the_radius_and_a_collapsed_column_is_detected():
    gen = torch.Generator().manual_seed(5)
    J = torch.randn(9, 3, generator=gen, dtype=F64)
    r = torch.randn(9, generator=gen, dtype=F64)
    D2 = (J * J).sum(0)
    full = float((D2.sqrt() * normal_equations(J, r, 1e-12, D2)).norm())
    lam = lambda_for_radius(J, r, D2, 0.3 * full, 1e-12)
    assert float((D2.sqrt() * normal_equations(J, r, lam, D2)).norm()) == pytest.approx(0.3 * full, rel=0.02)
    damp = Damping.start("lm", J, 1e-3)
    dead = J.clone()
    dead[:, 1] = 1e-9 * J[:, 1]  # the column's norm fell by 1e9: the parameter lost its influence
    assert damp.collapsed(dead) and not damp.collapsed(0.5 * J)


def test_gauss_newton_on_a_linear_problem_reaches_lstsq_in_one_step():
    gen = torch.Generator().manual_seed(2)
    A = torch.randn(20, 4, generator=gen, dtype=F64)
    b = torch.randn(20, generator=gen, dtype=F64)
    w = torch.nn.Parameter(torch.zeros(4, dtype=F64))
    GaussNewton([w]).step(lambda: A @ w - b)
    assert torch.allclose(w.detach(), torch.linalg.lstsq(A, b.unsqueeze(1)).solution.squeeze(1), rtol=1e-10)
    res = least_squares(lambda v: A @ v - b, torch.zeros(4, dtype=F64), method="gn")
    assert torch.allclose(res.x, torch.linalg.lstsq(A, b.unsqueeze(1)).solution.squeeze(1), rtol=1e-10)


def test_fewer_residuals_than_parameters_gives_the_minimum_norm_step():
    gen = torch.Generator().manual_seed(3)
    J = torch.randn(3, 8, generator=gen, dtype=F64)
    r = torch.randn(3, generator=gen, dtype=F64)
    assert torch.allclose(gauss_newton_step(J, r), torch.linalg.pinv(J) @ r, rtol=1e-9)


def test_singular_jtj_is_handled_by_damping():
    # Two identical columns: JᵀJ is singular; b0 + b1 is determined, b0 − b1 is not.
    t = torch.linspace(0, 1, 10, dtype=F64)
    fn = lambda b: (b[0] + b[1]) * t - 3 * t  # noqa: E731
    for method in ("lm", "levenberg", "gn"):
        res = least_squares(fn, torch.tensor([0.0, 0.0], dtype=F64), method=method)
        assert bool(torch.isfinite(res.x).all())
        assert float(res.x.sum()) == pytest.approx(3.0, rel=1e-8)
    J = torch.stack([t, t], 1)
    step = gauss_newton_step(J, -3 * t)
    assert torch.allclose(step, torch.linalg.pinv(J) @ (-3 * t), rtol=1e-6)


# ---------------------------------------------------------------- the solver


@pytest.mark.parametrize("method", ["lm", "levenberg", "gn"])
def test_functional_solver_finds_the_minimum_of_a_separable_problem(method):
    # r_i = b_i² − c_i: the minimum is b = √c (from b0 = 1), an exact oracle.
    c = torch.tensor([2.0, 3.0, 5.0, 7.0], dtype=F64)
    res = least_squares(lambda b: b**2 - c, torch.ones(4, dtype=F64), method=method)
    assert res.success and res.status > 0
    assert torch.allclose(res.x, c.sqrt(), rtol=1e-9)
    assert res.cost == pytest.approx(0.0, abs=1e-18)
    assert res.nfev >= res.nit and res.njev >= 1
    assert torch.allclose(res.jac, torch.diag(2 * res.x), rtol=1e-12)


def test_functional_solver_accepts_a_user_jacobian_and_gets_the_same_answer():
    fn = exp_decay()
    x0 = torch.tensor([1.0, 1.0, 0.0], dtype=F64)
    exact = least_squares(fn, x0, ftol=1e-15, xtol=1e-12)
    user = least_squares(fn, x0, jac=lambda x: jacobian_oracle(fn, x), ftol=1e-15, xtol=1e-12)
    assert torch.allclose(exact.x, user.x, rtol=1e-8)
    # the first-order optimality condition at the answer: Jᵀr ≈ 0
    J = jacobian_oracle(fn, exact.x)
    assert float((J.T @ fn(exact.x)).abs().max()) < 1e-8
    with pytest.raises(ClosureError, match="jac returned shape"):
        least_squares(fn, x0, jac=lambda x: torch.zeros(2, 2, dtype=F64))


def test_max_nfev_stops_without_success():
    res = least_squares(exp_decay(), torch.tensor([1.0, 1.0, 0.0], dtype=F64), max_nfev=2)
    assert not res.success and res.status == 0 and res.nfev <= 2


def test_bad_arguments_raise_ravine_errors():
    fn = exp_decay()
    x0 = torch.ones(3, dtype=F64)
    with pytest.raises(RavineError, match="least-squares method"):
        least_squares(fn, x0, method="dogleg")
    with pytest.raises(RavineError, match="ftol"):
        least_squares(fn, x0, ftol=-1)
    with pytest.raises(RavineError, match="all 0"):
        least_squares(fn, x0, ftol=0, xtol=0, gtol=0)


def test_nan_residual_at_start_stops_with_a_clear_message():
    with pytest.raises(DivergenceError, match="not finite"):
        least_squares(lambda b: torch.log(b) - 1, torch.tensor([-1.0, 2.0], dtype=F64))


def test_nan_at_a_trial_point_is_a_rejected_step_not_garbage():
    # log(b) is NaN for b < 0; an overlong first step lands there and must be rejected.
    res = least_squares(lambda b: torch.log(b) - torch.tensor([-5.0], dtype=F64), torch.tensor([1.0], dtype=F64),
                        lambda0=1e-9)
    assert res.success
    assert float(res.x) == pytest.approx(math.exp(-5.0), rel=1e-9)


def test_residual_that_changes_shape_raises_closure_error():
    calls = []

    def fn(b):
        calls.append(None)
        return b.repeat(1 + (len(calls) > 1))

    with pytest.raises(ClosureError, match="keep its shape"):
        least_squares(fn, torch.ones(2, dtype=F64), jac=lambda b: torch.eye(2, dtype=F64))


# ---------------------------------------------------------------- the optimizers


def test_registry_entries():
    for name in ("gauss-newton", "levenberg", "levenberg-marquardt"):
        entry = ravine.optim.info(name)
        assert entry.closure == "residual" and entry.full_batch and entry.train_lr == 1.0
    assert ravine.optim.info("lm").name == "levenberg-marquardt"


def test_functional_api_is_reachable_from_the_package():
    import importlib

    importlib.import_module("ravine.optim.levenberg_marquardt")  # the import that could shadow the function
    assert ravine.optim.least_squares is least_squares
    res = ravine.optim.least_squares(lambda b: b - 1, torch.zeros(2, dtype=F64))
    assert torch.allclose(res.x, torch.ones(2, dtype=F64))


def test_lm_optimizer_first_step_follows_the_formula():
    fn = exp_decay()
    b = torch.nn.Parameter(torch.tensor([1.0, 2.0, 0.1], dtype=F64))
    x = b.detach().clone()
    J, r = jacobian_oracle(fn, x), fn(x)
    expected = x - normal_equations(J, r, 1e-3, (J * J).sum(0))  # accepted: this start is well behaved
    opt = LevenbergMarquardt([b], lambda0=1e-3)
    loss = opt.step(lambda: fn(b))
    assert float(loss) == pytest.approx(0.5 * float(r @ r), rel=1e-12)
    assert torch.allclose(b.detach(), expected, rtol=1e-9)
    assert opt.state[b]["lambda"] < 1e-3  # a successful step lowers λ


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_lm_optimizer_fits_a_small_network_with_param_groups(dtype):
    gen = torch.Generator().manual_seed(4)
    net = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).to(dtype)
    with torch.no_grad():  # seeded init, no global RNG
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=F64))
    X = torch.linspace(-1, 1, 40, dtype=dtype).unsqueeze(1)
    y = torch.sin(3 * X).squeeze(1) + 0.01 * torch.randn(40, generator=gen).to(dtype)
    groups = [{"params": net[0].parameters()}, {"params": net[2].parameters()}]
    opt = ravine.optim.create("levenberg-marquardt", groups)
    closure = lambda: net(X).squeeze(1) - y  # noqa: E731
    start = float(opt.step(closure))
    for _ in range(40):
        opt.step(closure)
    with torch.no_grad():
        end = float(0.5 * closure().pow(2).sum())
    assert end < 0.01 * start
    assert all(p.dtype == dtype for p in net.parameters())


def test_optimizer_state_dict_round_trip_keeps_lambda():
    fn = exp_decay()
    b = torch.nn.Parameter(torch.tensor([1.0, 2.0, 0.1], dtype=F64))
    opt = LevenbergMarquardt([b])
    for _ in range(3):
        opt.step(lambda: fn(b))
    saved = opt.state_dict()
    b2 = torch.nn.Parameter(b.detach().clone())
    opt2 = LevenbergMarquardt([b2])
    opt2.load_state_dict(saved)
    assert opt2.state[b2]["lambda"] == opt.state[b]["lambda"]
    opt.step(lambda: fn(b))
    opt2.step(lambda: fn(b2))
    assert torch.equal(b.detach(), b2.detach())


def test_optimizer_failures_are_clear():
    b = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=F64))
    opt = LevenbergMarquardt([b])
    with pytest.raises(ClosureError, match="needs a closure"):
        opt.step()
    with pytest.raises(DivergenceError, match="not finite"):
        opt.step(lambda: b * float("nan"))
    opt = LevenbergMarquardt([b])
    opt.step(lambda: b - 1)
    with pytest.raises(ClosureError, match="keep its shape"):
        opt.step(lambda: torch.cat([b, b]))
