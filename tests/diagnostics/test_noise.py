"""Gradient noise: per-sample gradients against a loop, tr(Σ) and B_simple written out, Var ∝ 1/S on digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ravine.diagnostics.noise import gradient_noise, loglog_slope, noise_finding, per_sample_grads


def _loop_grads(model: nn.Module, loss_fn, X: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    rows = []
    for i in range(len(X)):
        model.zero_grad()
        loss_fn(model(X[i:i + 1]), y[i:i + 1]).backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy().copy())
    return np.stack(rows)


def test_per_sample_gradients_match_one_backward_per_sample() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    X, y = torch.randn(20, 5), torch.randint(0, 3, (20,))
    got = per_sample_grads(net, nn.functional.cross_entropy, X, y, chunk=8).numpy()
    np.testing.assert_allclose(got, _loop_grads(net, nn.functional.cross_entropy, X, y), rtol=1e-5, atol=1e-6)


def test_trace_and_b_simple_follow_their_formulas() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 1))
    X = torch.randn(64, 4)
    y = 3.0 + X[:, :1] + 0.5 * torch.randn(64, 1)  # far from the initial outputs: the mean gradient dominates
    res = gradient_noise(net, nn.functional.mse_loss, X, y, batch_sizes=(2, 4, 8), pool=64, seed=0)
    g = _loop_grads(net, nn.functional.mse_loss, X, y).astype(np.float64)  # the pool is all 64 rows
    trace = np.var(g, axis=0, ddof=1).sum()
    norm_sq = np.sum(g.mean(0) ** 2) - trace / len(g)
    assert norm_sq > 0
    assert res["trace_sigma"] == pytest.approx(trace, rel=1e-4)
    assert res["grad_norm_sq"] == pytest.approx(norm_sq, rel=1e-4)
    assert res["b_simple"] == pytest.approx(trace / norm_sq, rel=1e-3)
    assert res["predicted"] == pytest.approx([trace / s * (64 - s) / 64 for s in (2, 4, 8)], rel=1e-4)


def test_loglog_slope_of_a_power_law() -> None:
    assert loglog_slope([1, 10, 100], [3.0, 0.3, 0.03]) == pytest.approx(-1.0)


def test_gradient_variance_falls_as_one_over_batch_size_on_digits() -> None:
    from ravine import problems

    inst = problems.get("digits-mlp").build(seed=0)
    res = gradient_noise(inst.model, inst.loss_fn, inst.data.X_train, inst.data.y_train,
                         batch_sizes=(2, 4, 8, 16, 32, 64), pool=512, seed=0)
    # the slope is measured from sampled minibatches, independently of the formula
    slope = float(np.polyfit(np.log(res["batch_sizes"]), np.log(res["variance"]), 1)[0])
    assert slope == pytest.approx(-1.0, abs=0.2)
    assert res["slope"] == pytest.approx(slope, abs=1e-9)
    # and each measured variance is within 15% of tr(Σ)/S·(N−S)/N
    for measured, predicted in zip(res["variance"], res["predicted"], strict=True):
        assert measured == pytest.approx(predicted, rel=0.15)


def test_batch_sizes_larger_than_half_the_pool_are_refused() -> None:
    from ravine.errors import ConfigError

    net = nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="Invalid batch_sizes"):
        gradient_noise(net, nn.functional.cross_entropy, torch.randn(16, 2), torch.randint(0, 2, (16,)),
                       batch_sizes=(2, 16), pool=16)


def test_noise_finding_suggests_at_most_the_training_set() -> None:
    note = noise_finding({"b_simple": 1e6, "slope": -1.0}, batch_size=32, n_train=1000)
    assert "1000" in note["suggestion"] and "whole training set" in note["suggestion"]
    note = noise_finding({"b_simple": 2.0, "slope": -1.0}, batch_size=256, n_train=1000)
    assert "smaller batch" in note["suggestion"]
