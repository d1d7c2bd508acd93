"""Instruments on the course's failure cases: dead ReLUs, saturated sigmoids, symmetry, depth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ravine import models
from ravine.diagnostics.instruments import Instruments, instrument_findings, probe_activations, symmetry
from ravine.train import fit, make_instance


def _digits(n: int = 400):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / (X.std(0) + 1e-8), dtype=torch.float32)[:n]
    y = torch.tensor(y)[:n]
    return X, y


def _train(model: nn.Module, epochs: int = 2, lr: float = 0.1, every: int = 5) -> Instruments:
    X, y = _digits()
    inst = make_instance(model, (X, y, X[:100], y[:100], X[:100], y[:100]), nn.functional.cross_entropy)
    instruments = Instruments(every=every, probe=X[:200])
    fit(inst, torch.optim.SGD(model.parameters(), lr=lr), epochs=epochs, batch_size=32, seed=0,
        callbacks=[instruments], tensorboard=False)
    return instruments


def test_relus_forced_dead_by_a_large_negative_bias_report_all_dead() -> None:
    net = models.mlp([64, 32, 32, 10], "relu", "he", seed=0)
    with torch.no_grad():
        net[0].bias.fill_(-100.0)
    X, _ = _digits()
    assert (net[1](net[0](X)) == 0).all()  # the oracle: every unit of layer 1 outputs 0 on every sample
    res = _train(net).result()
    dead = res["layers"][0]["dead"]
    assert len(dead) >= 5 and min(dead) >= 0.99
    alerts = [a for a in instrument_findings(res) if a["kind"] == "dead units"]
    assert alerts and alerts[0]["layer"] == res["layers"][0]["layer"]
    assert alerts[0]["evidence"]["dead_fraction"] >= 0.99


def test_healthy_relu_net_reports_few_dead_units() -> None:
    res = _train(models.mlp([64, 32, 32, 10], "relu", "he", seed=0)).result()
    assert max(max(layer["dead"]) for layer in res["layers"]) < 0.25
    assert not [a for a in instrument_findings(res) if a["kind"] == "dead units"]


def _saturated_oracle(net: nn.Sequential, X: torch.Tensor) -> float:
    with torch.no_grad():
        h = torch.sigmoid(net[0](X))
    return float(((h < 0.01) | (h > 0.99)).float().mean())


def test_sigmoid_net_with_large_initial_weights_reports_saturation() -> None:
    net = models.mlp([64, 64, 64, 10], "sigmoid", "xavier-normal", seed=0)
    with torch.no_grad():
        for layer in (net[0], net[2]):
            layer.weight.mul_(10.0)
    X, _ = _digits()
    assert _saturated_oracle(net, X) > 0.5
    res = _train(net, epochs=1).result()
    assert min(res["layers"][0]["saturated"]) > 0.5
    assert res["probe_start"][0]["saturated"] == pytest.approx(_saturated_oracle_probe(X[:200]), abs=1e-6)
    assert any(a["kind"] == "saturated units" for a in instrument_findings(res))


def _saturated_oracle_probe(X: torch.Tensor) -> float:
    net = models.mlp([64, 64, 64, 10], "sigmoid", "xavier-normal", seed=0)
    with torch.no_grad():
        net[0].weight.mul_(10.0)
    return _saturated_oracle(net, X)


def test_sigmoid_net_with_xavier_init_is_not_saturated() -> None:
    res = _train(models.mlp([64, 64, 64, 10], "sigmoid", "xavier-normal", seed=0), epochs=1).result()
    assert max(res["layers"][0]["saturated"]) < 0.05
    assert not any(a["kind"] == "saturated units" for a in instrument_findings(res))


def test_constant_initialization_reports_symmetry_that_persists_after_training() -> None:
    net = models.mlp([64, 16, 16, 10], "tanh", "constant", seed=0)
    ins = _train(net, epochs=3, lr=0.5)
    res = ins.result()
    # the oracle: every row of each hidden weight matrix still equals the first one, although they moved
    for layer in (net[0], net[2]):
        w = layer.weight.detach()
        assert torch.allclose(w, w[:1].expand_as(w), rtol=1e-5, atol=1e-7)
    assert not torch.allclose(net[0].weight, torch.full_like(net[0].weight, 1 / 64))
    hidden_start, hidden_end = res["symmetry_start"][:2], res["symmetry_end"][:2]
    assert all(s["twin_fraction"] == 1.0 and s["distinct_units"] == 1 for s in hidden_start + hidden_end)
    assert {a["layer"] for a in instrument_findings(res) if a["kind"] == "symmetry"} == {"0", "2"}


def test_random_initialization_has_no_symmetry() -> None:
    net = models.mlp([64, 16, 16, 10], "tanh", "xavier-uniform", seed=0)
    assert all(s["twin_fraction"] == 0.0 and s["distinct_units"] == s["units"] for s in symmetry(net))


def _std_by_depth_oracle(net: nn.Sequential, X: torch.Tensor) -> list[float]:
    stds, h = [], X
    with torch.no_grad():
        for layer in net:
            h = layer(h)
            if isinstance(layer, nn.Tanh):
                stds.append(float(h.std()))
    return stds


def test_tanh_activation_std_shrinks_with_depth_under_small_normal_but_not_under_xavier() -> None:
    X, _ = _digits()
    sizes = [64] + [128] * 6 + [10]
    small = models.mlp(sizes, "tanh", "small-normal", seed=0)
    xavier = models.mlp(sizes, "tanh", "xavier-normal", seed=0)
    s_small = [s["std"] for s in probe_activations(small, X)]
    s_xavier = [s["std"] for s in probe_activations(xavier, X)]
    assert s_small == pytest.approx(_std_by_depth_oracle(small, X), rel=1e-4)
    assert s_xavier == pytest.approx(_std_by_depth_oracle(xavier, X), rel=1e-4)
    # N(0, 0.01²): each layer multiplies the spread by about 0.01·√128 ≈ 0.11
    assert all(b < 0.3 * a for a, b in zip(s_small, s_small[1:], strict=False))
    assert s_small[-1] / s_small[0] < 1e-3
    # Xavier, Var(W) = 1/n: tanh compresses only its tails, so each layer keeps most of the spread
    # (≈ 0.87× per layer here against ≈ 0.11× under N(0, 0.01²))
    assert all(b > 0.75 * a for a, b in zip(s_xavier, s_xavier[1:], strict=False))
    assert s_xavier[-1] / s_xavier[0] > 0.4


def test_update_ratio_of_plain_sgd_is_lr_times_gradient_over_weight() -> None:
    net = models.mlp([64, 32, 10], "relu", "he", seed=0)
    res = _train(net, epochs=1, lr=0.05, every=3).result()
    for p in res["params"]:
        for ratio, g, w in zip(p["update_ratio"], p["grad_norm"], p["weight_norm"], strict=True):
            # ΔW = −ε∇W, so ‖ΔW‖ = ε‖∇W‖; ‖W‖ after the step differs from before by at most ‖ΔW‖
            assert ratio * w == pytest.approx(0.05 * g, rel=1e-4)
    assert res["steps"] == list(range(3, 3 * len(res["steps"]) + 1, 3))


def test_gradient_rms_at_the_activations_matches_autograd() -> None:
    net = models.mlp([64, 32, 10], "tanh", "xavier-normal", seed=0)
    X, y = _digits(32)
    ins = Instruments(every=1)
    inst = make_instance(net, (X, y, X, y, X, y), nn.functional.cross_entropy)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)  # nothing moves: the oracle sees the same weights
    fit(inst, opt, epochs=1, batch_size=None, callbacks=[ins], tensorboard=False)
    h = torch.tanh(net[0](X))
    h.retain_grad()
    nn.functional.cross_entropy(net[2](h), y).backward()
    expected = float(h.grad.norm() / math.sqrt(h.numel()))
    assert ins.result()["layers"][0]["grad_rms"][0] == pytest.approx(expected, rel=1e-5)


def _every_training_output(module: nn.Module) -> tuple[list[torch.Tensor], object]:
    """The oracle's own record: a copy of ``module``'s output on every training forward."""
    outs: list[torch.Tensor] = []

    def keep(m: nn.Module, _inp: object, out: torch.Tensor) -> None:
        if m.training:
            outs.append(out.detach().clone())
    return outs, module.register_forward_hook(keep)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_report_statistics_match_every_training_forward_recorded_independently(activation: str) -> None:
    net = models.mlp([64, 32, 32, 10], activation, "he" if activation == "relu" else "xavier-normal", seed=0)
    if activation == "relu":
        with torch.no_grad():
            net[0].bias[:16] = -4.5  # z ~ N(−4.5, ≈2): these units fire on a rare sample, so some intervals see none
    outs, handle = _every_training_output(net[1])
    every = 4
    res = _train(net, epochs=1, every=every).result()
    handle.remove()
    layer = res["layers"][0]
    assert res["steps"] == list(range(every, len(outs) + 1, every))
    for k, step in enumerate(res["steps"]):
        out = outs[step - 1].double()  # one forward per SGD step: forward `step` is the report step's batch
        assert layer["mean"][k] == pytest.approx(float(out.mean()), rel=1e-5, abs=1e-7)
        assert layer["std"][k] == pytest.approx(float(out.std()), rel=1e-5)
        lo, hi = layer["range"]
        counts, _ = np.histogram(out.numpy(), bins=30, range=(lo, hi))
        assert sum(abs(a - b) for a, b in zip(layer["hist"][k], counts, strict=True)) <= 1  # a value on an edge
        if activation == "relu":
            # dead: never positive on any sample of any training forward since the previous report
            since = torch.cat(outs[step - every:step])
            assert layer["dead"][k] == pytest.approx(float((since <= 0).all(dim=0).double().mean()), abs=1e-7)
        else:
            assert layer["saturated"][k] == pytest.approx(float((out.abs() > 0.98).double().mean()), abs=1e-7)
    if activation == "relu":
        assert 0 < max(layer["dead"]) < 1
