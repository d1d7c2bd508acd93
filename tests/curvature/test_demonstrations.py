"""The course's demonstrations: weight-space symmetries, the Taylor step, and GD past 2/λ_max."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from curv_oracle import classification_data, mlp, reference_hessian, reference_loss
from ravine import curvature
from ravine.errors import RavineError


def _relu_mlp():
    model = mlp([6, 12, 10, 4], act=nn.ReLU, seed=7)
    x, y = classification_data(40, 6, 4, seed=8)
    return model, nn.functional.cross_entropy, x, y


def test_hidden_unit_permutation_gives_the_same_function_and_loss():
    model, loss_fn, x, y = _relu_mlp()
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    twin = curvature.permute_hidden(model, 0, perm)
    assert not torch.equal(twin[0].weight, model[0].weight)  # different parameters ...
    torch.testing.assert_close(twin(x), model(x), rtol=0, atol=1e-14)  # ... same outputs
    assert reference_loss(twin, loss_fn, x, y) == pytest.approx(reference_loss(model, loss_fn, x, y), abs=1e-14)
    # and the same curvature: the Hessians are similar through a permutation matrix
    e_model = torch.linalg.eigvalsh(reference_hessian(model, loss_fn, x, y))
    e_twin = torch.linalg.eigvalsh(reference_hessian(twin, loss_fn, x, y))
    torch.testing.assert_close(e_twin, e_model, rtol=0, atol=1e-12)


def test_relu_rescaling_keeps_the_function_but_changes_the_spectrum():
    model, loss_fn, x, y = _relu_mlp()
    k = 4.0
    twin = curvature.rescale_hidden(model, 2, k)
    torch.testing.assert_close(twin(x), model(x), rtol=1e-12, atol=1e-12)
    assert reference_loss(twin, loss_fn, x, y) == pytest.approx(reference_loss(model, loss_fn, x, y), rel=1e-12)
    e_model = torch.linalg.eigvalsh(reference_hessian(model, loss_fn, x, y))
    e_twin = torch.linalg.eigvalsh(reference_hessian(twin, loss_fn, x, y))
    assert abs(float(e_twin[-1]) / float(e_model[-1]) - 1) > 0.5  # the "sharpness" is not a property of f
    # ravine's λ_max sees the same change
    got = curvature.eigenvalues(twin, loss_fn, (x, y), k=1, tol=1e-8).lambda_max
    assert got == pytest.approx(float(e_twin[-1]), rel=1e-8)


def test_rescaling_refuses_a_non_homogeneous_activation():
    model = mlp([3, 4, 2], act=nn.Tanh)
    with pytest.raises(RavineError, match="Tanh"):
        curvature.rescale_hidden(model, 0, 2.0)


def _quadratic(seed: int = 0):
    """J(w) = (1/N)‖Xw − y‖², exactly quadratic, with H = (2/N) XᵀX written out."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(30, 5, generator=gen, dtype=torch.float64) * torch.tensor([3.0, 1.0, 1.0, 0.5, 0.2],
                                                                              dtype=torch.float64)
    y = torch.randn(30, 1, generator=gen, dtype=torch.float64)
    model = nn.Linear(5, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 5, generator=gen, dtype=torch.float64))
    return model, nn.functional.mse_loss, X, y, 2 / 30 * X.T @ X


def test_taylor_prediction_is_exact_on_a_quadratic_and_eps_star_is_the_line_minimum():
    model, loss_fn, X, y, H = _quadratic()
    t = curvature.taylor_step(model, loss_fn, (X, y), tol=1e-10)
    for pred, act in zip(t.predicted, t.actual, strict=True):
        assert pred == pytest.approx(act, rel=1e-10, abs=1e-12)
    w = model.weight.detach().reshape(-1)
    g = 2 / 30 * X.T @ (X @ w - y.reshape(-1))  # ∇J written out
    assert t.eps_star == pytest.approx(float(g @ g / (g @ H @ g)), rel=1e-10)
    assert t.lr_max == pytest.approx(2 / float(torch.linalg.eigvalsh(H)[-1]), rel=1e-8)

    def J(eps: float) -> float:
        r = X @ (w - eps * g) - y.reshape(-1)
        return float((r ** 2).mean())

    # the exact line minimum of a parabola: J(ε* ± δ) > J(ε*), and J'(ε*) = 0 by central differences
    e = t.eps_star
    assert J(e) < J(e * 0.99) and J(e) < J(e * 1.01)
    assert abs(J(e + 1e-6) - J(e - 1e-6)) / 2e-6 < 1e-6 * abs(J(0.0))
    assert t.eps_increase == pytest.approx(2 * e)
    assert J(2 * e) == pytest.approx(J(0.0), rel=1e-10)  # back to the same height at 2ε*


def test_taylor_on_a_network_is_accurate_only_for_small_steps(small_problem):
    p = small_problem
    t = curvature.taylor_step(p["model"], p["loss_fn"], (p["x"], p["y"]), eps=[1e-4, 1e-3, 0.5])
    gaps = [abs(a - b) for a, b in zip(t.predicted, t.actual, strict=True)]
    assert gaps[0] < gaps[1] < gaps[2]
    assert gaps[0] < 1e-8 * t.loss  # third-order error: ε³ scale


@pytest.mark.parametrize("factor,diverges", [(1.05, True), (0.95, False)])
def test_gradient_descent_diverges_above_two_over_lambda_max(factor, diverges):
    model, loss_fn, X, y, H = _quadratic(seed=1)
    lam = curvature.lambda_max(model, loss_fn, (X, y), tol=1e-10)
    assert lam == pytest.approx(float(torch.linalg.eigvalsh(H)[-1]), rel=1e-9)
    opt = torch.optim.SGD(model.parameters(), lr=factor * 2 / lam)
    losses = []
    for _ in range(400):
        opt.zero_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    if diverges:
        assert losses[-1] > 1e3 * losses[0] and not math.isnan(losses[-1])
    else:
        assert losses[-1] < losses[0]
