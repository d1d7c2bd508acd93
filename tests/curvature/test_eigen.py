"""Extreme eigenvalues: ravine's Lanczos against torch.linalg.eigvalsh of the full Hessian and SciPy eigsh."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import eigsh
from torch import nn

from curv_oracle import classification_data, close, mlp, reference_hessian
from ravine import curvature
from ravine.errors import RavineError


@pytest.mark.parametrize("tol", [1e-3, 1e-6])
@pytest.mark.parametrize("which", ["largest", "smallest", "both_ends"])
def test_lanczos_meets_the_requested_tolerance(small_problem, which, tol):
    p = small_problem
    eig = p["eig"]  # ascending
    res = curvature.eigenvalues(p["model"], p["loss_fn"], (p["x"], p["y"]), k=3, which=which, tol=tol)
    top, bottom = eig[-3:].flip(0), eig[:3].flip(0)
    expected = {"largest": top, "smallest": bottom, "both_ends": torch.cat([top, bottom])}[which]
    assert res.converged and res.method == "lanczos"
    assert res.values.shape == expected.shape
    for got, ref in zip(res.values.tolist(), expected.tolist(), strict=True):
        assert close(got, ref, tol), (got, ref)
    assert res.n_products < eig.numel() // 4  # far fewer products than the dense Hessian's P


def test_vectors_are_eigenvectors(small_problem):
    p = small_problem
    res = curvature.eigenvalues(p["model"], p["loss_fn"], (p["x"], p["y"]), k=2, which="both_ends", tol=1e-8,
                                return_vectors=True)
    V = res.vectors
    assert V.shape == (p["H"].shape[0], 4)
    torch.testing.assert_close(V.T @ V, torch.eye(4, dtype=V.dtype), atol=1e-8, rtol=0)
    residual = (p["H"] @ V - V * res.values).norm(dim=0)
    assert (residual <= 1e-4 * res.values.abs().max()).all()


def test_agrees_with_scipy_eigsh_on_the_scipy_view(small_problem):
    p = small_problem
    op = curvature.HessianOperator(p["model"], p["loss_fn"], (p["x"], p["y"]))
    ref_top = eigsh(op.to_scipy(), k=2, which="LA", tol=0, v0=np.ones(op.size))[0][::-1]
    ref_bottom = eigsh(op.to_scipy(), k=2, which="SA", tol=0, v0=np.ones(op.size))[0][::-1]
    res = curvature.eigenvalues(op, k=2, which="both_ends", tol=1e-7)
    np.testing.assert_allclose(res.values.numpy(), np.concatenate([ref_top, ref_bottom]), rtol=1e-7)
    via_eigsh = curvature.eigenvalues(op, k=2, which="both_ends", tol=1e-7, method="eigsh")
    np.testing.assert_allclose(via_eigsh.values.numpy(), res.values.numpy(), rtol=1e-7)


def test_restarts_keep_the_tolerance_on_a_clustered_spectrum():
    # 300 eigenvalues: a dense cluster in [0, 1] and a close pair at the top — a small basis must restart
    gen = torch.Generator().manual_seed(0)
    lam = torch.cat([torch.rand(297, generator=gen, dtype=torch.float64), torch.tensor([1.5, 1.52, -0.3],
                                                                                        dtype=torch.float64)])
    Q, _ = torch.linalg.qr(torch.randn(300, 300, generator=gen, dtype=torch.float64))
    A = Q @ torch.diag(lam) @ Q.T
    res = curvature.lanczos(curvature.MatrixOperator(A), k=2, which="both_ends", tol=1e-8, max_basis=12)
    ref = torch.sort(lam, descending=True).values
    expected = torch.cat([ref[:2], ref[-2:]])
    assert res.converged
    torch.testing.assert_close(res.values, expected, rtol=1e-8, atol=0)


def test_float32_model_meets_a_float32_tolerance():
    model = mlp([10, 40, 6], seed=2, dtype=torch.float32)
    x, y = classification_data(64, 10, 6, seed=3, dtype=torch.float32)
    ref = torch.linalg.eigvalsh(reference_hessian(model.double(), nn.functional.cross_entropy, x.double(), y))
    model = model.float()
    res = curvature.eigenvalues(model, nn.functional.cross_entropy, (x, y), k=1, which="largest", tol=1e-4)
    assert res.values.dtype == torch.float32
    assert close(res.lambda_max, float(ref[-1]), 1e-4)


def test_dense_method_and_small_operators_are_exact():
    A = torch.diag(torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64))
    res = curvature.eigenvalues(A, k=2, which="both_ends")  # 2k ≥ P: the dense path
    assert res.values.tolist() == [3.0, 2.0, -1.0]
    assert curvature.eigenvalues(A, k=1, which="smallest", method="dense").values.tolist() == [-1.0]


def test_bad_arguments():
    A = torch.eye(3, dtype=torch.float64)
    with pytest.raises(RavineError, match="Invalid which"):
        curvature.eigenvalues(A, which="top")
    with pytest.raises(RavineError, match="Invalid k"):
        curvature.eigenvalues(A, k=0)
    with pytest.raises(RavineError, match="Invalid tol"):
        curvature.eigenvalues(A, tol=0.0)
    with pytest.raises(RavineError, match="Invalid method"):
        curvature.eigenvalues(A, method="power")


@pytest.mark.slow
def test_top_bottom_and_trace_agree_with_eigvalsh_on_a_5k_parameter_model():
    # the size: ~5k parameters, float64, small data; the dense eigvalsh is the slow part
    model = mlp([10, 64, 64, 5], seed=0)
    x, y = classification_data(32, 10, 5, seed=1)
    loss_fn = nn.functional.cross_entropy
    H = reference_hessian(model, loss_fn, x, y)
    assert H.shape[0] == 5189
    eig = torch.linalg.eigvalsh(H)
    tol = 1e-5
    res = curvature.eigenvalues(model, loss_fn, (x, y), k=2, which="both_ends", tol=tol)
    expected = [float(eig[-1]), float(eig[-2]), float(eig[1]), float(eig[0])]
    for got, ref in zip(res.values.tolist(), expected, strict=True):
        assert close(got, ref, tol), (got, ref)
    est = curvature.trace(model, loss_fn, (x, y), n_products=300)
    exact = float(torch.diagonal(H).sum())
    # an indefinite Hessian with a small trace: the promise is the error bar, not a relative error
    assert abs(est.value - exact) <= 4 * est.stderr
