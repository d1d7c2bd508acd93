"""Least squares: convergence is reported (no stall warning), a genuine stall still warns; the fast paths.

Oracles: ``numpy.linalg.lstsq`` (the linear least-squares minimum), NIST's certified values,
the damped normal equations solved with ``torch.linalg.solve``, and SciPy's MINPACK
(``scipy.optimize.least_squares(method="lm")``) on the same problem.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import ravine.optim
import ravine.optim.levenberg_marquardt as lm
from ravine.bench import nist
from ravine.optim.result import STATUS_FAILED, STATUS_FTOL, STATUS_GTOL, STATUS_XTOL

pytestmark = pytest.mark.usefixtures("single_thread")
CONVERGED = (STATUS_GTOL, STATUS_FTOL, STATUS_XTOL)
F64 = torch.float64


def linear_problem(dtype: torch.dtype, consistent: bool, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(40, 5, generator=gen, dtype=F64)
    b = A @ torch.arange(1.0, 6.0, dtype=F64) if consistent else torch.randn(40, generator=gen, dtype=F64)
    x_star = np.linalg.lstsq(A.numpy(), b.numpy(), rcond=None)[0]
    return A.to(dtype), b.to(dtype), x_star


@pytest.mark.parametrize("name", ["levenberg-marquardt", "levenberg", "gauss-newton"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("consistent", [False, True], ids=["noisy", "exact-fit"])
def test_training_past_the_least_squares_minimum_reports_convergence_and_does_not_warn(name, dtype, consistent):
    A, b, x_star = linear_problem(dtype, consistent)
    w = torch.zeros(5, dtype=dtype, requires_grad=True)
    opt = ravine.optim.create(name, [w])
    for _ in range(3):  # a linear problem: solved by the first (Gauss–Newton-like) steps
        opt.step(lambda: A @ w - b)
    rtol = 1e-9 if dtype == F64 else 2e-4
    np.testing.assert_allclose(w.detach().double().numpy(), x_star, rtol=rtol, atol=rtol)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any stall warning fails the test
        for _ in range(20):
            opt.step(lambda: A @ w - b)
    state = opt.state[w]
    assert state["stalled"] is False
    assert state["status"] in CONVERGED and "converged" in state["message"]
    np.testing.assert_allclose(w.detach().double().numpy(), x_star, rtol=rtol, atol=rtol)
    if name != "gauss-newton":  # failed trials at the minimum do not push λ towards its cap
        assert state["lambda"] < 1.0


@pytest.mark.parametrize("name", ["levenberg-marquardt", "levenberg", "gauss-newton"])
def test_a_wrong_jacobian_is_a_stall_and_warns_once(name):
    A, b, _ = linear_problem(F64, consistent=False)
    w = torch.zeros(5, dtype=F64, requires_grad=True)
    opt = ravine.optim.create(name, [w])

    def wrong_derivative():
        r = A @ w - b
        return 2 * r.detach() - r  # the value of r, the Jacobian −A: every step points uphill

    with pytest.warns(RuntimeWarning, match="cannot decrease the loss.*gradient is not small"):
        opt.step(wrong_derivative)
    state = opt.state[w]
    assert state["stalled"] is True and state["status"] == STATUS_FAILED
    assert torch.equal(w.detach(), torch.zeros(5, dtype=F64))  # no trial was kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step(wrong_derivative)  # still stalled, no second warning
    assert opt.state[w]["stalled"] is True


def test_lm_optimizer_on_a_nist_problem_after_convergence_does_not_warn():
    prob = nist.load("Misra1a")
    fn = prob.residual_fn()
    w = torch.tensor(prob.starts[1], dtype=F64, requires_grad=True)
    opt = ravine.optim.create("levenberg-marquardt", [w])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(60):
            opt.step(lambda: fn(w))
    assert min(nist.lre(v, c) for v, c in zip(w.tolist(), prob.certified, strict=True)) >= 6
    assert opt.state[w]["stalled"] is False and opt.state[w]["status"] in CONVERGED


def test_converged_at_separates_a_minimum_from_a_point_with_a_gradient():
    A, b, x_star = linear_problem(F64, consistent=False)
    for x, expect in ((torch.from_numpy(x_star), True), (torch.zeros(5, dtype=F64), False)):
        r = A @ x - b
        verdict = lm.converged_at(A, r, A.T @ r, x, 0.5 * float(r @ r), torch.ones(5, dtype=F64))
        assert (verdict is not None) is expect


def test_spectral_trial_matches_the_damped_normal_equations():
    gen = torch.Generator().manual_seed(3)
    J = torch.randn(30, 6, generator=gen, dtype=F64) * torch.logspace(0, 4, 6, dtype=F64)
    r = torch.randn(30, generator=gen, dtype=F64)
    D2 = (J * J).sum(0)
    spectral = lm.Spectral.of(J, r, D2)
    for lam in (1e-12, 1e-3, 10.0):
        delta, pred, step_norm = spectral.step(lam)
        oracle = torch.linalg.solve(J.T @ J + lam * torch.diag(D2), J.T @ r)
        assert torch.allclose(delta, oracle, rtol=1e-8, atol=1e-12)
        assert pred == pytest.approx(float(delta @ (J.T @ r) - 0.5 * (J @ delta) @ (J @ delta)), rel=1e-8)
        assert step_norm == pytest.approx(float((D2.sqrt() * delta).norm()), rel=1e-10)


@pytest.mark.parametrize("name", ["Misra1a", "Thurber", "MGH10"])
def test_host_and_torch_paths_of_least_squares_agree_with_minpack(name, monkeypatch):
    from scipy.optimize import least_squares as scipy_least_squares

    prob = nist.load(name)
    fn = prob.residual_fn()
    x0 = torch.tensor(prob.starts[1], dtype=F64)
    host = lm.least_squares(fn, x0)
    monkeypatch.setattr(lm, "_HOST_MAX_N", 0)  # force the all-torch iteration
    device = lm.least_squares(fn, x0)
    ref = scipy_least_squares(lambda b: fn(torch.from_numpy(b)).numpy(), x0.numpy(), method="lm", xtol=1e-12,
                              ftol=1e-12, gtol=1e-12)
    for res in (host, device):
        assert res.success
        np.testing.assert_allclose(res.x.numpy(), ref.x, rtol=1e-6)
        assert min(nist.lre(v, c) for v, c in zip(res.x.tolist(), prob.certified, strict=True)) >= 6
    assert isinstance(host.jac, torch.Tensor) and host.jac.shape == (prob.n_obs, prob.n_params)
    assert isinstance(host.fun, torch.Tensor) and host.x.dtype == F64


def test_a_rejection_restarts_lambda_at_the_floor_tau_max_diag():
    # Oracle: the rule written out — λ·ν below the floor becomes the floor with ν = 2 (Nielsen's
    # start λ0 = τ·max diag(JᵀJ)); above the floor Nielsen's λ·ν, ν·2 is untouched.
    J = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=F64)
    damp = lm.Damping.start("levenberg", J, 1e-20, radius_cut=False)
    floor = 1e-3 * 9.0
    damp.lam_floor = floor
    damp.update(-1.0, None)
    assert (damp.lam, damp.nu) == (floor, 2.0)
    damp.update(-1.0, None)
    assert (damp.lam, damp.nu) == (2 * floor, 4.0)
    assert lm.Damping.start("lm", J, 1e-20).lam_floor == 0.0  # the functional solver keeps MINPACK's rule


@pytest.mark.parametrize("name", ["levenberg-marquardt", "levenberg"])
@pytest.mark.parametrize(("problem", "start"), [("Misra1a", 0), ("Chwirut2", 0), ("MGH09", 1)])
def test_optimizer_reaches_nist_certified_values_without_a_first_step_stall(name, problem, start):
    # With λ0 = 1e-20 and Nielsen's λ·ν alone, 10 trials reached only 1e-20·2⁵⁵ and these runs
    # stalled on step one; the λ floor reaches a useful damping within the step.
    prob = nist.load(problem)
    fn = prob.residual_fn()
    w = torch.tensor(prob.starts[start], dtype=F64, requires_grad=True)
    opt = ravine.optim.create(name, [w])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for _ in range(300):
            opt.step(lambda: fn(w))
            if opt.state[w]["status"] in CONVERGED:
                break
    assert opt.state[w]["status"] in CONVERGED and opt.state[w]["stalled"] is False
    assert min(nist.lre(v, c) for v, c in zip(w.tolist(), prob.certified, strict=True)) >= 6


def test_lm_optimizer_first_steps_on_a_small_mlp_do_not_warn_and_match_minpack():
    # Oracle: SciPy's MINPACK LM on the same residuals from the same initial weights (both reach
    # a near-interpolating fit of sin; the optimizer must get within the same order of accuracy).
    scipy_optimize = pytest.importorskip("scipy.optimize")
    torch.manual_seed(0)
    X = torch.linspace(-3, 3, 100, dtype=F64).unsqueeze(1)
    y = torch.sin(X)
    model = torch.nn.Sequential(torch.nn.Linear(1, 10), torch.nn.Tanh(), torch.nn.Linear(10, 1)).to(F64)
    init = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()

    def residuals(v: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.tensor(v, dtype=F64), model.parameters())
            return (model(X) - y).squeeze(1).numpy()

    ref = scipy_optimize.least_squares(residuals, init.numpy(), method="lm", max_nfev=2000)
    torch.nn.utils.vector_to_parameters(init, model.parameters())
    opt = ravine.optim.create("lm", model.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for _ in range(200):
            opt.step(lambda: (model(X) - y).squeeze(1))
    with torch.no_grad():
        mse = float(((model(X) - y) ** 2).mean())
    assert mse < 1e-8 and float((ref.fun ** 2).mean()) < 1e-8
