"""Inputs users hand optimizers in practice: frozen parameters, strings, floats for counts, typos."""

from __future__ import annotations

import pytest
import torch

import ravine.optim as ro
from ravine.errors import DataError, HyperparameterError

X = torch.linspace(-1, 1, 20, dtype=torch.float64).unsqueeze(1)
Y = 3 * X.squeeze(1) + 0.5


@pytest.mark.parametrize("name", ["gauss-newton", "levenberg", "levenberg-marquardt"])
def test_least_squares_leave_frozen_parameters_alone(name: str) -> None:
    model = torch.nn.Linear(1, 1).double()
    model.bias.requires_grad_(False)
    bias = model.bias.detach().clone()
    opt = ro.create(name, model.parameters())
    opt.step(lambda: model(X).squeeze(1) - Y)
    assert torch.equal(model.bias, bias)
    # the free weight solves the reduced problem min_w ‖w x + b − y‖ exactly (linear least squares)
    w = float(((Y - bias) * X.squeeze(1)).sum() / (X.squeeze(1) ** 2).sum())
    assert abs(model.weight.item() - w) < 1e-8


@pytest.mark.parametrize("name", ["newton", "newton-cg", "bfgs", "lbfgs"])
def test_second_order_leave_frozen_parameters_alone(name: str) -> None:
    model = torch.nn.Linear(1, 1).double()
    model.bias.requires_grad_(False)
    bias = model.bias.detach().clone()
    opt = ro.create(name, model.parameters())

    def closure():
        if ro.info(name).closure == "loss":
            opt.zero_grad()
            loss = (model(X).squeeze(1) - Y).pow(2).mean()
            if torch.is_grad_enabled():
                loss.backward()
            return loss
        return (model(X).squeeze(1) - Y).pow(2).mean()

    opt.step(closure)
    assert torch.equal(model.bias, bias)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_a_numeric_string_is_rejected_naming_the_field(name: str) -> None:
    with pytest.raises(HyperparameterError, match="lr"):
        ro.create(name, [torch.nn.Parameter(torch.ones(2))], lr="0.001")


def test_a_float_count_is_rejected_naming_the_field() -> None:
    with pytest.raises(HyperparameterError, match="max_iter"):
        ro.create("bfgs", [torch.nn.Parameter(torch.ones(2))], max_iter=2.0)


def test_a_param_group_typo_is_rejected() -> None:
    with pytest.raises(HyperparameterError, match="momentun"):
        ro.create("momentum", [{"params": [torch.nn.Parameter(torch.ones(2))], "momentun": 0.5}])


def test_sparse_gradients_get_a_clear_error() -> None:
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = ro.create("adam", emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(DataError, match="sparse"):
        opt.step()
