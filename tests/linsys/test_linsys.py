"""ravine.linsys against independent oracles: torch.linalg.solve, SciPy's CG, closed-form rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.io
import scipy.sparse
import scipy.sparse.linalg
import torch

from ravine import linsys
from ravine.errors import DataError, UnknownNameError
from ravine.linsys import rates, study

F64 = torch.float64


def test_spd_has_the_requested_condition_number_and_is_spd() -> None:
    for spectrum in ("linear", "chebyshev"):
        s = linsys.spd(80, kappa=250.0, seed=3, spectrum=spectrum)
        lam = np.linalg.eigvalsh(s.A.numpy())  # independent: NumPy's LAPACK call
        assert lam.min() > 0
        assert lam.max() / lam.min() == pytest.approx(250.0, rel=1e-8)
        assert torch.allclose(s.A @ s.x_star, s.b)
    a, b = linsys.spd(20, 10.0, seed=1), linsys.spd(20, 10.0, seed=1)
    assert torch.equal(a.A, b.A)
    assert not torch.equal(a.A, linsys.spd(20, 10.0, seed=2).A)


def test_diagonally_dominant_and_least_squares_systems() -> None:
    s = linsys.diagonally_dominant(40, seed=0)
    off = s.A.abs().sum(1) - s.A.diagonal().abs()
    assert bool((s.A.diagonal().abs() > off).all()) and s.spd
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    X, y = load_diabetes(return_X_y=True)
    ref = LinearRegression().fit(X, y)
    w_ref = np.concatenate([[ref.intercept_], ref.coef_])
    for system in (linsys.least_squares_normal(), linsys.least_squares_qr()):
        x = linsys.lu(system.A, system.b).x.numpy()
        np.testing.assert_allclose(x, w_ref, rtol=1e-6, atol=1e-6)
    normal, via_qr = linsys.least_squares_normal(), linsys.least_squares_qr()
    assert normal.kappa == pytest.approx(via_qr.kappa**2, rel=1e-6)  # κ(XᵀX) = κ(R)²


@pytest.mark.parametrize("solver", [linsys.lu, linsys.qr, linsys.cholesky])
def test_direct_solvers_match_torch_solve(solver) -> None:
    s = linsys.spd(60, kappa=1e4, seed=0)
    res = solver(s.A, s.b)
    ref = torch.linalg.solve(s.A, s.b)
    assert torch.allclose(res.x, ref, rtol=1e-8, atol=1e-8)
    assert res.final_residual < 1e-12 and res.flops > 60**3 / 3 - 1


def test_cholesky_refuses_an_indefinite_matrix() -> None:
    A = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=F64)
    with pytest.raises(DataError, match="positive definite"):
        linsys.cholesky(A, torch.ones(2, dtype=F64))


ITERATIVE_SPD = [
    ("jacobi", lambda A, b: linsys.jacobi(A, b, tol=1e-10)),
    ("gauss-seidel", lambda A, b: linsys.gauss_seidel(A, b, tol=1e-10)),
    ("cg", lambda A, b: linsys.cg(A, b, tol=1e-10)),
    ("pcg-jacobi", lambda A, b: linsys.pcg(A, b, tol=1e-10)),
    ("pcg-ssor", lambda A, b: linsys.pcg(A, b, tol=1e-10, preconditioner="ssor")),
    ("gd", lambda A, b: linsys.gradient_descent(A, b, tol=1e-10)),
    ("gd-exact", lambda A, b: linsys.gradient_descent(A, b, tol=1e-10, line_search=True)),
    ("momentum", lambda A, b: linsys.heavy_ball(A, b, tol=1e-10)),
]


@pytest.mark.parametrize(("name", "solve"), ITERATIVE_SPD, ids=[n for n, _ in ITERATIVE_SPD])
def test_iterative_solvers_reach_torch_solve_on_a_dominant_spd_system(name, solve) -> None:
    s = linsys.diagonally_dominant(50, seed=1)
    res = solve(s.A, s.b)
    assert res.converged, (name, res.status)
    assert torch.allclose(res.x, torch.linalg.solve(s.A, s.b), rtol=1e-7, atol=1e-8)
    # the recorded history is the true residual at the end (not a drifting recurrence)
    true_rel = float(torch.linalg.vector_norm(s.b - s.A @ res.x) / torch.linalg.vector_norm(s.b))
    assert res.history()[-1] == pytest.approx(true_rel, rel=1e-3, abs=1e-12)
    assert res.history()[0] == pytest.approx(1.0) and len(res.history()) == res.iterations + 1


def test_cg_matches_scipy_cg() -> None:
    s = linsys.spd(120, kappa=500.0, seed=2)
    x_ref, info = scipy.sparse.linalg.cg(s.A.numpy(), s.b.numpy(), rtol=1e-11, maxiter=2000)
    assert info == 0
    res = linsys.cg(s.A, s.b, tol=1e-11)
    np.testing.assert_allclose(res.x.numpy(), x_ref, rtol=1e-7, atol=1e-8)
    # CG's bound on the A-norm error: ‖e_k‖_A ≤ 2 ρ^k ‖e_0‖_A with ρ = (√κ − 1)/(√κ + 1)
    rho = (math.sqrt(500) - 1) / (math.sqrt(500) + 1)
    for k in (5, 20, 40):
        rk = linsys.cg(s.A, s.b, tol=1e-300, max_iter=k)
        e = rk.x - s.x_star
        a_err = math.sqrt(float(e @ s.A @ e))
        a_err0 = math.sqrt(float(s.x_star @ s.A @ s.x_star))
        assert a_err <= 2 * rho**k * a_err0 * (1 + 1e-9)


def test_solvers_are_batch_agnostic() -> None:
    systems = [linsys.spd(30, kappa=k, seed=i) for i, k in enumerate((10.0, 100.0, 1000.0))]
    A = torch.stack([s.A for s in systems])
    b = torch.stack([s.b for s in systems])
    for solve in (linsys.cg, linsys.jacobi, linsys.gauss_seidel, linsys.heavy_ball, linsys.gradient_descent,
                  lambda A, b, **kw: linsys.pcg(A, b, preconditioner="ssor", **kw)):
        res = solve(A, b, tol=1e-10, max_iter=100_000)
        if res.status == "diverged":  # Jacobi need not converge on a non-dominant SPD matrix
            continue
        assert res.converged
        for i, s in enumerate(systems):  # every system of the batch meets the tolerance on its own
            rel = torch.linalg.vector_norm(s.b - s.A @ res.x[i]) / torch.linalg.vector_norm(s.b)
            assert float(rel) <= 2e-10
            assert torch.allclose(res.x[i], torch.linalg.solve(s.A, s.b), rtol=1e-5, atol=1e-5)
    assert linsys.cg(A, b).residuals.shape[1:] == (3,)


def test_ssor_preconditioner_is_the_inverse_of_its_matrix() -> None:
    s = linsys.diagonally_dominant(12, seed=0)
    A, omega = s.A, 1.3
    D = torch.diag(A.diagonal())
    L = torch.tril(A, -1)
    M = omega / (2 - omega) * (D / omega + L) @ torch.linalg.inv(D / omega) @ (D / omega + L.T)
    r = torch.randn(12, dtype=F64, generator=torch.Generator().manual_seed(0))
    apply = linsys.ssor_preconditioner(A, omega)
    assert torch.allclose(apply(r), torch.linalg.solve(M, r), rtol=1e-10)


def test_gd_rate_on_a_diagonal_system_is_closed_form() -> None:
    # A = diag(λ): with ε = 1/λ_max each error component is multiplied by exactly 1 − ελ_i, so the
    # residual ratio tends to 1 − 1/κ, the rate of the slowest component.
    kappa = 20.0
    lam = torch.linspace(1.0, kappa, 8, dtype=F64)
    A, b = torch.diag(lam), torch.ones(8, dtype=F64)
    res = linsys.gradient_descent(A, b, tol=1e-12)
    h = res.history()
    assert h[-1] / h[-2] == pytest.approx(rates.gd_fixed_rate(kappa), rel=1e-6)
    # best fixed step 2/(λ_min + λ_max): both extreme components shrink by exactly (κ − 1)/(κ + 1)
    res = linsys.gradient_descent(A, b, tol=1e-12, lr=2 / (1 + kappa))
    h = res.history()
    assert h[-1] / h[-2] == pytest.approx((kappa - 1) / (kappa + 1), rel=1e-6)


def test_jacobi_and_gauss_seidel_rates_on_poisson_are_the_textbook_ones() -> None:
    n = 20
    s = linsys.poisson1d(n)
    c = math.cos(math.pi / (n + 1))
    assert rates.jacobi_rate(s.A) == pytest.approx(c, rel=1e-10)
    assert rates.gauss_seidel_rate(s.A) == pytest.approx(c**2, rel=1e-8)
    for solve, rho in ((linsys.jacobi, c), (linsys.gauss_seidel, c**2)):
        h = solve(s.A, s.b, tol=1e-300, max_iter=700).history()
        measured = (h[-1] / h[-501]) ** (1 / 500)
        assert measured == pytest.approx(rho, rel=1e-3)


def test_newton_one_step_is_the_least_squares_solution() -> None:
    s = linsys.least_squares_qr()
    X, y = s.extra["X"], s.extra["y"]
    w_ref = torch.linalg.lstsq(X, y).solution
    for w0 in (None, torch.full((X.shape[1],), 7.0, dtype=F64)):
        res = linsys.newton_least_squares(X, y, w0)
        assert res.iterations == 1
        assert torch.allclose(res.x, w_ref, rtol=1e-8, atol=1e-6)
        assert res.history()[-1] < 1e-10


def test_momentum_uses_polyaks_constants() -> None:
    s = linsys.spd(40, kappa=100.0, seed=0)
    res = linsys.heavy_ball(s.A, s.b)
    assert res.info["lr"] == pytest.approx(4 / (1 + 10) ** 2)
    assert res.info["momentum"] == pytest.approx((9 / 11) ** 2)


def test_compare_marks_spd_only_methods_not_applicable() -> None:
    s = linsys.least_squares_qr()  # R is triangular, not symmetric
    out = study.compare(s, ["lu", "cg", "newton", "gauss-seidel"])
    assert out["methods"]["cg"]["status"] == "not applicable"
    assert out["methods"]["lu"]["final_residual"] < 1e-12
    assert out["methods"]["newton"]["iterations"] == 1
    with pytest.raises(UnknownNameError, match="cholesky"):
        study.parse_methods("lu,chol")


def test_kappa_sweep_slopes_order_gd_above_cg() -> None:
    sweep = study.kappa_sweep((10.0, 40.0, 160.0), n=150, methods=("gd", "cg"), tol=1e-8)
    # iterations ∝ κ^p: GD's exponent near 1 and CG's near ½ (loose bounds: 3 points, finite n)
    assert 0.75 < sweep["slopes"]["gd"] < 1.15
    assert 0.3 < sweep["slopes"]["cg"] < 0.65
    assert study.fit_slope([1, 10, 100], [3, 30, 300]) == pytest.approx(1.0)


def test_load_matrix_formats(tmp_path) -> None:
    s = linsys.diagonally_dominant(15, seed=0)
    A = s.A.numpy()
    np.save(tmp_path / "a.npy", A)
    np.savez(tmp_path / "ab.npz", A=A, b=s.b.numpy())
    scipy.sparse.save_npz(tmp_path / "sp.npz", scipy.sparse.csr_matrix(A))
    scipy.io.mmwrite(tmp_path / "a.mtx", scipy.sparse.coo_matrix(A))
    for name in ("a.npy", "ab.npz", "sp.npz", "a.mtx"):
        loaded = linsys.load_matrix(tmp_path / name)
        np.testing.assert_allclose(loaded.A.numpy(), A, rtol=1e-12)
        assert loaded.spd
    assert torch.allclose(linsys.load_matrix(tmp_path / "ab.npz").b, s.b)
    np.save(tmp_path / "rect.npy", np.ones((3, 4)))
    (tmp_path / "x.txt").write_text("1")
    for bad, msg in (("rect.npy", "square"), ("x.txt", "allowed"), ("missing.npy", "no such file")):
        with pytest.raises(DataError, match=msg):
            linsys.load_matrix(tmp_path / bad)
