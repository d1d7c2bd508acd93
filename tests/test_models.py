"""Models: init distributions from their formulas, symmetry of constant init, every
activation / norm builds and trains one step, seeding, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ravine import models
from ravine.errors import ConfigError, UnknownNameError

N_IN, N_OUT = 600, 800  # a big layer: 480k weights, so the empirical std is within ~0.2%


def weight(init: str, seed: int = 0) -> torch.Tensor:
    return models.mlp([N_IN, N_OUT], init=init, seed=seed)[0].weight.detach().double()


@pytest.mark.parametrize(("init", "std"), [
    ("he", math.sqrt(2 / N_IN)),
    ("xavier-normal", math.sqrt(1 / N_IN)),
    ("small-normal", 0.01),
    ("xavier-uniform", math.sqrt(6 / (N_IN + N_OUT)) / math.sqrt(3)),  # U(−a, a) has std a/√3
])
def test_init_std_matches_formula(init: str, std: float) -> None:
    w = weight(init)
    assert abs(w.std().item() / std - 1) < 0.01
    assert abs(w.mean().item()) < 0.01 * std
    assert torch.equal(models.mlp([N_IN, N_OUT], init=init)[0].bias, torch.zeros(N_OUT))


def test_xavier_uniform_bounds_and_normal_shape() -> None:
    a = math.sqrt(6 / (N_IN + N_OUT))
    w = weight("xavier-uniform")
    assert w.abs().max().item() <= a and w.abs().max().item() > 0.99 * a
    # He is Gaussian: about 68.3% of the weights within one standard deviation
    h = weight("he")
    inside = (h.abs() < math.sqrt(2 / N_IN)).double().mean().item()
    assert abs(inside - 0.6827) < 0.005


def test_conv_fan_in_includes_the_kernel() -> None:
    net = models.cnn((1, 28, 28), 10, channels=(64, 128), init="he", seed=0)
    conv = [m for m in net if isinstance(m, nn.Conv2d)][1]
    assert abs(conv.weight.std().item() / math.sqrt(2 / (64 * 9)) - 1) < 0.02


def test_constant_init_keeps_hidden_units_symmetric() -> None:
    net = models.mlp([5, 4, 4, 3], activation="tanh", init="constant", seed=0)
    assert torch.all(net[0].weight == 1 / 5)
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(2))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        g = net[0].weight.grad
        assert torch.allclose(g, g[:1].expand_as(g))  # every hidden unit gets the same gradient
        opt.step()
    w = net[2].weight  # ... so after training they are still copies of one another
    assert torch.allclose(w, w[:1].expand_as(w))


@pytest.mark.parametrize("activation", sorted(models.ACTIVATIONS))
@pytest.mark.parametrize("norm", ["none", "batch", "layer", "group"])
def test_every_activation_and_norm_runs_forward_and_backward(activation: str, norm: str) -> None:
    net = models.mlp([6, 16, 16, 3], activation=activation, norm=norm, dropout=0.1, seed=0)
    out = net(torch.randn(8, 6, generator=torch.Generator().manual_seed(0)))
    out.square().mean().backward()
    assert out.shape == (8, 3)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("norm", list(models.NORMS))
def test_cnn_every_norm(norm: str) -> None:
    net = models.cnn((1, 8, 8), 10, activation="gelu", norm=norm, dropout=0.2, seed=0)
    x = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))
    net(x).logsumexp(dim=1).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    assert net(x.reshape(4, 1, 8, 8)).shape == (4, 10)


def test_norm_layers_are_the_right_torch_modules() -> None:
    kinds = {norm: type(models.norm_1d(norm, 12)) for norm in ("batch", "layer", "group")}
    assert kinds == {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, "group": nn.GroupNorm}
    assert models.norm_1d("group", 12).num_groups == 6  # the largest divisor of 12 that is <= 8
    assert isinstance(models.norm_2d("instance", 4), nn.InstanceNorm2d)
    assert models.norm_1d("none", 4) is None


def test_instance_norm_in_an_mlp_is_explained() -> None:
    with pytest.raises(ConfigError, match="instance norm normalizes each channel over its spatial positions"):
        models.mlp([4, 8, 2], norm="instance")


def test_activation_formulas() -> None:
    x = torch.tensor([-2.0, 0.5])
    torch.testing.assert_close(models.activation("leaky-relu")(x), torch.tensor([-0.02, 0.5]))
    torch.testing.assert_close(models.activation("prelu")(x), torch.tensor([-0.5, 0.5]))
    torch.testing.assert_close(models.activation("elu")(x), torch.tensor([math.exp(-2) - 1, 0.5]))
    torch.testing.assert_close(models.activation("sigmoid")(x), 1 / (1 + torch.exp(-x)))


def test_seeding_is_reproducible_and_leaves_the_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a = models.mlp([10, 20, 3], norm="batch", seed=5)
    b = models.mlp([10, 20, 3], norm="batch", seed=5)
    c = models.mlp([10, 20, 3], norm="batch", seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a[0].weight, c[0].weight)
    g = torch.Generator().manual_seed(5)
    assert torch.equal(models.mlp([10, 20, 3], norm="batch", generator=g)[0].weight, a[0].weight)
    assert torch.equal(a[1].running_var, torch.ones(20)) and a[1].num_batches_tracked.item() == 0


def test_dtype_and_layout() -> None:
    net = models.mlp([64, 128, 128, 10], dropout=0.5, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in net.parameters())
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [128, 128, 10]
    x = torch.ones(3, 64, dtype=torch.float64)
    net.eval()
    assert torch.equal(net(x), net(x))  # dropout is off in eval mode
    sig = models.mlp([1, 1], init="zeros", output_activation="sigmoid")
    assert sig(torch.ones(1, 1)).item() == 0.5


@pytest.mark.parametrize(("kwargs", "error", "pattern"), [
    ({"activation": "swish"}, UnknownNameError, r"Invalid activation: 'swish' \(allowed: elu, gelu"),
    ({"init": "orthogonal"}, UnknownNameError, r"Invalid init: 'orthogonal' \(allowed: constant"),
    ({"norm": "weight"}, UnknownNameError, r"Invalid norm: 'weight' \(allowed: batch, group"),
    ({"dropout": 1.0}, ConfigError, r"Invalid dropout: 1.0"),
])
def test_bad_names_and_values(kwargs: dict, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        models.mlp([4, 8, 2], **kwargs)


def test_cnn_rejects_images_too_small_for_its_pools() -> None:
    with pytest.raises(ConfigError, match="need images of at least 8×8"):
        models.cnn((1, 4, 4), 10, channels=(8, 8, 8))
    with pytest.raises(ConfigError, match="kernel_size"):
        models.cnn(kernel_size=4)
