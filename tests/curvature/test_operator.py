"""Hessian-vector products, gradient and full Hessian against torch.autograd.functional.hessian."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from curv_oracle import classification_data, mlp, reference_hessian
from ravine import curvature
from ravine.errors import DataError, RavineError


@pytest.mark.parametrize("mode", ["graph", "recompute", "jvp"])
def test_hvp_matches_reference_hessian(small_problem, mode):
    p = small_problem
    v = torch.randn(p["H"].shape[0], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    hv = curvature.hvp(p["model"], p["loss_fn"], (p["x"], p["y"]), v, mode=mode)
    torch.testing.assert_close(hv, p["H"] @ v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["auto", "graph", "jvp"])
def test_unequal_batches_accumulate_to_the_full_batch_hessian(small_problem, mode):
    p = small_problem
    x, y = p["x"], p["y"]
    batches = [(x[:5], y[:5]), (x[5:30], y[5:30]), (x[30:], y[30:])]  # sizes 5, 25, 18
    op = curvature.HessianOperator(p["model"], p["loss_fn"], batches, mode=mode)
    V = torch.randn(op.size, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    torch.testing.assert_close(op @ V, p["H"] @ V, rtol=1e-10, atol=1e-12)


def test_dataloader_is_accepted_and_read_once(small_problem):
    p = small_problem
    loader = DataLoader(TensorDataset(p["x"], p["y"]), batch_size=20, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    op = curvature.HessianOperator(p["model"], p["loss_fn"], loader)
    assert op.mode == "recompute" and len(op.batches) == 3
    v = torch.ones(op.size, dtype=torch.float64)
    torch.testing.assert_close(op @ v, p["H"] @ v, rtol=1e-10, atol=1e-12)


def test_gradient_matches_autograd_and_leaves_model_grads_alone(small_problem):
    p = small_problem
    model = p["model"]
    loss = p["loss_fn"](model(p["x"]), p["y"])
    expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])
    g = curvature.gradient(model, p["loss_fn"], (p["x"], p["y"]))
    torch.testing.assert_close(g, expected)
    assert all(q.grad is None for q in model.parameters())


def test_hvp_matches_finite_differences_of_the_gradient():
    model = mlp([4, 6, 3], seed=1)
    x, y = classification_data(10, 4, 3, seed=2)
    op = curvature.HessianOperator(model, nn.functional.cross_entropy, (x, y))
    v = torch.randn(op.size, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    h = 1e-5

    def grad_at(theta: torch.Tensor) -> torch.Tensor:
        return curvature.HessianOperator(model, nn.functional.cross_entropy, (x, y), params=theta).gradient()

    fd = (grad_at(op.theta + h * v) - grad_at(op.theta - h * v)) / (2 * h)
    torch.testing.assert_close(op @ v, fd, rtol=1e-6, atol=1e-8)


def test_float32_products_agree_with_float64():
    model64 = mlp([6, 16, 4], seed=5)
    model32 = mlp([6, 16, 4], seed=5, dtype=torch.float32)
    x, y = classification_data(30, 6, 4, seed=6)
    v = torch.randn(sum(q.numel() for q in model64.parameters()), generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    hv64 = curvature.hvp(model64, nn.functional.cross_entropy, (x, y), v)
    hv32 = curvature.hvp(model32, nn.functional.cross_entropy, (x.float(), y), v.float())
    assert hv32.dtype == torch.float32
    torch.testing.assert_close(hv32.double(), hv64, rtol=1e-4, atol=1e-5)


def test_matrix_input_scipy_view_and_product_count(small_problem):
    p = small_problem
    op = curvature.HessianOperator(p["model"], p["loss_fn"], (p["x"], p["y"]))
    V = torch.randn(op.size, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(op @ V, p["H"] @ V, rtol=1e-10, atol=1e-12)
    assert op.n_products == 3
    lin = op.to_scipy()
    u = np.random.default_rng(0).standard_normal(op.size)
    np.testing.assert_allclose(lin.matvec(u), (p["H"] @ torch.from_numpy(u)).numpy(), rtol=1e-9, atol=1e-12)
    assert op.n_products == 4


def test_full_hessian_from_batches_with_retained_graphs(small_problem):
    p = small_problem
    x, y = p["x"], p["y"]
    H = curvature.hessian(p["model"], p["loss_fn"], [(x[:20], y[:20]), (x[20:], y[20:])], mode="graph")
    torch.testing.assert_close(H, p["H"], rtol=1e-10, atol=1e-12)


def test_full_hessian_of_linear_regression_is_two_over_n_xtx():
    # oracle written out: J = (1/N)‖Xw + b − y‖² ⇒ H = (2/N) [X 1]ᵀ[X 1]
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(20, 1, generator=gen, dtype=torch.float64)
    model = nn.Linear(3, 1).double()
    A = torch.cat([X, torch.ones(20, 1, dtype=torch.float64)], dim=1)
    H = curvature.hessian(model, nn.functional.mse_loss, (X, y))
    torch.testing.assert_close(H, 2 / 20 * A.T @ A)


def test_bad_inputs_raise_one_line_errors(small_problem):
    p = small_problem
    with pytest.raises(DataError, match="Invalid data"):
        curvature.HessianOperator(p["model"], p["loss_fn"], [])
    with pytest.raises(DataError, match="Invalid data"):
        curvature.HessianOperator(p["model"], p["loss_fn"], (p["x"], p["y"][:3]))
    with pytest.raises(DataError, match="Invalid data"):
        curvature.HessianOperator(p["model"], p["loss_fn"], [p["x"]])
    with pytest.raises(RavineError, match="Invalid mode"):
        curvature.HessianOperator(p["model"], p["loss_fn"], (p["x"], p["y"]), mode="fast")
    op = curvature.HessianOperator(p["model"], p["loss_fn"], (p["x"], p["y"]))
    with pytest.raises(RavineError, match="Invalid vector"):
        op @ torch.ones(3, dtype=torch.float64)
    with pytest.raises(RavineError, match="needs loss_fn and data"):
        curvature.eigenvalues(p["model"])


def test_batchnorm_running_statistics_are_left_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).double()
    x, y = classification_data(16, 4, 2, seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    op = curvature.HessianOperator(model, nn.functional.cross_entropy, (x, y))
    for _ in range(3):
        op @ torch.ones(op.size, dtype=torch.float64)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
