"""The flat-parameter base shared by newton, newton-cg, bfgs, lbfgs and the least-squares family:
param groups, deepcopy / pickle, dtypes, closures from frameworks, and ``state["stalled"]``."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

import ravine.optim
from ravine.errors import ClosureError, HyperparameterError
from ravine.optim._flat import FlatParamOptimizer

F64 = torch.float64
FLAT = ["newton", "newton-cg", "bfgs", "lbfgs", "gauss-newton", "levenberg", "levenberg-marquardt"]
A = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 3.0], [2.0, 1.0, 1.0]], dtype=F64)
B = torch.tensor([1.0, -1.0, 2.0, 0.5], dtype=F64)


def _closure(name, opt, params):
    """The closure kind the registry names, for r(θ) = A θ − b with θ = cat(params)."""
    kind = ravine.optim.info(name).closure

    def residual():
        return A @ torch.cat([p.reshape(-1) for p in params]) - B

    if kind == "residual":
        return residual
    if kind == "graph":
        return lambda: 0.5 * residual().pow(2).sum()

    def loss():
        opt.zero_grad()
        value = 0.5 * residual().pow(2).sum()
        value.backward()
        return value

    return loss


def _lstsq():
    return torch.linalg.lstsq(A, B.unsqueeze(1)).solution.squeeze(1)


@pytest.mark.parametrize("name", FLAT)
def test_is_one_base(name):
    opt = ravine.optim.create(name, [torch.zeros(3, dtype=F64, requires_grad=True)])
    assert isinstance(opt, FlatParamOptimizer)


@pytest.mark.parametrize("name", FLAT)
def test_add_param_group_is_honoured(name):
    a = torch.zeros(2, dtype=F64, requires_grad=True)
    b = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = ravine.optim.create(name, [a], max_iter=50) if ravine.optim.info(name).closure != "residual" else \
        ravine.optim.create(name, [a])
    opt.add_param_group({"params": [b]})
    closure = _closure(name, opt, [a, b])
    for _ in range(30):
        opt.step(closure)
    torch.testing.assert_close(torch.cat([a, b]).detach(), _lstsq(), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", ["newton", "bfgs"])
def test_groups_with_different_hyperparameters_are_refused_by_key(name):
    a = torch.zeros(2, dtype=F64, requires_grad=True)
    b = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = ravine.optim.create(name, [{"params": [a]}, {"params": [b], "c1": 1e-3}])
    with pytest.raises(HyperparameterError, match="'c1' differs"):
        opt.step(_closure(name, opt, [a, b]))


@pytest.mark.parametrize("name", FLAT)
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_keep_stepping_like_the_original(name, how):
    w = torch.zeros(3, dtype=F64, requires_grad=True)
    opt = ravine.optim.create(name, [w])
    opt.step(_closure(name, opt, [w]))
    clone = copy.deepcopy(opt) if how == "deepcopy" else pickle.loads(pickle.dumps(opt))
    w2 = clone.param_groups[0]["params"][0]
    assert w2 is not w and torch.equal(w2, w)
    opt.step(_closure(name, opt, [w]))
    clone.step(_closure(name, clone, [w2]))
    assert torch.equal(w2, w)


@pytest.mark.parametrize("name", FLAT)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.bfloat16, torch.float16])
def test_unusable_dtypes_are_refused_by_name(name, dtype):
    with pytest.raises(HyperparameterError, match=str(dtype).replace("torch.", "")):
        ravine.optim.create(name, [torch.zeros(3, dtype=dtype, requires_grad=True)])


@pytest.mark.parametrize("name", ["newton", "newton-cg"])
def test_graph_methods_explain_a_backward_closure(name):
    w = torch.zeros(3, dtype=F64, requires_grad=True)
    opt = ravine.optim.create(name, [w])

    def lightning_like():  # backward() inside, a detached loss out
        loss = 0.5 * (A @ w - B).pow(2).sum()
        loss.backward()
        return loss.detach()

    with pytest.raises(ClosureError, match="manual optimization"):
        opt.step(lightning_like)


@pytest.mark.parametrize("name", ["gauss-newton", "levenberg-marquardt"])
def test_least_squares_explains_a_backward_closure(name):
    w = torch.zeros(3, dtype=F64, requires_grad=True)
    opt = ravine.optim.create(name, [w])

    def skorch_like():
        loss = 0.5 * (A @ w - B).pow(2).sum()
        loss.backward()
        return loss

    with pytest.raises(ClosureError, match="residual closure"):
        opt.step(skorch_like)


def test_gauss_newton_that_cannot_decrease_says_stalled_once():
    # r(θ) = θ^(1/3): the GN step δ = r / r' = 3θ lands on −2θ, where |r| is 2^(1/3) times larger;
    # with one trial (no halving) GN cannot decrease the loss and must say so
    w = torch.tensor([1.0], dtype=F64, requires_grad=True)
    opt = ravine.optim.create("gauss-newton", [w], max_tries=1)

    def closure():
        return torch.sign(w) * w.abs().pow(1.0 / 3.0)

    with pytest.warns(RuntimeWarning, match="cannot decrease"):
        opt.step(closure)
    assert opt.state[w]["stalled"] is True and torch.equal(w.detach(), torch.ones(1, dtype=F64))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step(closure)  # no second warning
    assert opt.state[w]["stalled"] is True
    opt.param_groups[0]["max_tries"] = 2  # t = 1/2 lands on −θ/2, |r| = 0.79: a decrease
    opt.step(closure)
    assert opt.state[w]["stalled"] is False

