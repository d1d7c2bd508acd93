"""ravine's curvature against curvlinops, the best-kept peer (extra ``curvature-peers``; marker ``curvlinops``).

curvlinops' ``HessianLinearOperator`` is an independent implementation of the same
full-data mean-loss Hessian (its own batching and normalization), so agreement checks
ravine's batch weighting as well as its products and eigen-solver.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import eigsh
from torch import nn

from curv_oracle import classification_data, close, mlp, reference_hessian
from ravine import curvature

pytestmark = pytest.mark.curvlinops


@pytest.fixture(scope="module")
def setting():
    import curvlinops

    model = mlp([12, 24, 16, 6], seed=11)
    x, y = classification_data(90, 12, 6, seed=12)
    batches = [(x[:40], y[:40]), (x[40:70], y[40:70]), (x[70:], y[70:])]  # unequal sizes
    loss_fn = nn.functional.cross_entropy
    peer = curvlinops.HessianLinearOperator(model, nn.CrossEntropyLoss(), list(model.parameters()), batches,
                                            check_deterministic=False)
    return {"model": model, "batches": batches, "loss_fn": loss_fn, "peer": peer, "x": x, "y": y}


def test_products_agree_with_curvlinops(setting):
    op = curvature.HessianOperator(setting["model"], setting["loss_fn"], setting["batches"])
    V = torch.randn(op.size, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    peer = setting["peer"]
    torch.testing.assert_close(op @ V, peer @ V, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("which,scipy_which", [("largest", "LA"), ("smallest", "SA")])
def test_extreme_eigenvalues_agree_with_curvlinops_eigsh(setting, which, scipy_which):
    lin = setting["peer"].to_scipy()
    ref = np.sort(eigsh(lin, k=2, which=scipy_which, tol=0, v0=np.ones(lin.shape[0]))[0])[::-1]
    tol = 1e-6
    res = curvature.eigenvalues(setting["model"], setting["loss_fn"], setting["batches"], k=2, which=which, tol=tol)
    for got, want in zip(res.values.tolist(), ref.tolist(), strict=True):
        assert close(got, want, tol), (got, want)


def test_trace_error_bar_covers_curvlinops_exact_trace(setting):
    import curvlinops

    peer = setting["peer"]
    exact = float(torch.diagonal(reference_hessian(setting["model"], setting["loss_fn"], setting["x"],
                                                   setting["y"])).sum())
    est = curvature.trace(setting["model"], setting["loss_fn"], setting["batches"], n_products=150, seed=1)
    assert abs(est.value - exact) <= 4 * est.stderr
    torch.manual_seed(1)
    peer_est = float(curvlinops.hutchpp_trace(peer, num_matvecs=150))
    # same budget, same algorithm family: ravine is no worse than 3× the peer's error (one draw each)
    assert abs(est.value - exact) <= 3 * abs(peer_est - exact) + 4 * est.stderr
