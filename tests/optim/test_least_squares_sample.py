"""Per-sample Jacobians (``SampleResiduals``), the blocked m x m Gram matrix and the cheap finiteness test.

Oracles: ``torch.autograd.functional.jacobian`` of the batch residuals with respect to the
parameters, and J D⁻² Jᵀ written from the formula.
"""

from __future__ import annotations

import pytest
import torch

from ravine.errors import ClosureError
from ravine.optim.levenberg_marquardt import LevenbergMarquardt, SampleResiduals, _finite, scaled_gram

pytestmark = pytest.mark.usefixtures("single_thread")
F64 = torch.float64


def small_net(seed: int, outputs: int = 1) -> torch.nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.Tanh(), torch.nn.Linear(5, outputs)).to(F64)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=F64))
    return net


def jacobian_oracle(net, params, X, Y, residual_fn):
    """J of the whole batch's residuals w.r.t. ``params`` by torch.autograd.functional.jacobian."""
    by_id = {id(p): n for n, p in net.named_parameters()}
    keys = [by_id[id(p)] for p in params]

    def batch_residuals(*values):
        state = {**dict(net.named_parameters()), **dict(zip(keys, values, strict=True))}
        return residual_fn(torch.func.functional_call(net, state, (X,)), Y).reshape(-1)

    parts = torch.autograd.functional.jacobian(batch_residuals, tuple(p.detach() for p in params))
    return torch.cat([j.reshape(j.shape[0], -1) for j in parts], 1)


@pytest.mark.parametrize("outputs", [1, 3])
def test_sample_jacobian_matches_autograd_for_any_parameter_order(outputs):
    net = small_net(0, outputs)
    gen = torch.Generator().manual_seed(1)
    X, Y = torch.randn(7, 2, generator=gen, dtype=F64), torch.randn(7, outputs, generator=gen, dtype=F64)
    residual_fn = lambda out, y: 2.0 * (out - y)  # noqa: E731
    params = list(net.parameters())[::-1][:3]  # reversed order and a subset: the others stay fixed
    closure = SampleResiduals(net, X, Y, residual_fn)
    r, J = closure.jacobian(params)
    assert torch.allclose(r, residual_fn(net(X), Y).reshape(-1).detach())
    assert torch.allclose(J, jacobian_oracle(net, params, X, Y, residual_fn), atol=1e-12)
    assert torch.allclose(closure(), r)


def test_an_optimizer_step_is_the_same_with_a_plain_closure():
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(9, 2, generator=gen, dtype=F64)
    Y = torch.sin(X.sum(1, keepdim=True))
    nets = [small_net(3), small_net(3)]
    opts = [LevenbergMarquardt(net.parameters()) for net in nets]
    for _ in range(3):
        opts[0].step(SampleResiduals(nets[0], X, Y))
        opts[1].step(lambda: (nets[1](X) - Y).reshape(-1))
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-10)


def test_a_parameter_outside_the_model_is_refused():
    net = small_net(0)
    stray = torch.nn.Parameter(torch.zeros(2, dtype=F64))
    opt = LevenbergMarquardt([*net.parameters(), stray])
    X = torch.zeros(4, 2, dtype=F64)
    with pytest.raises(ClosureError, match="not a parameter of the model"):
        opt.step(SampleResiduals(net, X, torch.zeros(4, 1, dtype=F64)))


@pytest.mark.parametrize("m", [40, 700])
def test_scaled_gram_is_j_d_inverse_squared_j_transpose(m):
    gen = torch.Generator().manual_seed(m)
    J = torch.randn(m, 30, generator=gen, dtype=F64)
    D2 = torch.rand(30, generator=gen, dtype=F64) + 0.5
    assert torch.allclose(scaled_gram(J, D2, block=256), J @ torch.diag(1 / D2) @ J.T, rtol=1e-12, atol=1e-10)


def test_finiteness_test_is_exact_even_when_the_sum_overflows():
    big = torch.full((4,), 3e38, dtype=torch.float32)  # finite entries whose sum overflows to inf
    assert _finite(big)
    assert not _finite(torch.tensor([1.0, float("nan")]))
    assert not _finite(torch.tensor([float("inf"), float("-inf")]))
