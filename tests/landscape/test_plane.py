"""Planes and lines in weight space: filter normalization, Gaussian directions, PCA, Hessian directions,
batched evaluation against one point at a time, interpolation against the formula."""

from __future__ import annotations

import copy

import pytest
import scipy.stats
import torch
from torch import nn

from ravine.errors import ConfigError, DataError
from ravine.landscape import (LossGrid, filter_normalize, interpolate, parameters_of, pca_directions, plane,
                              random_directions)
from ravine.landscape.plane import flatten


def _net() -> nn.Module:
    torch.manual_seed(0)  # init only; the functions under test take their own seeds
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 8), nn.LayerNorm(8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 3))


def _data(n: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def _trained_bn(model: nn.Module) -> nn.Module:
    # give BatchNorm non-trivial running statistics, so eval mode differs from train mode
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(_data(32)[0] * 2 + 1)
    return model


def test_filter_normalization_property() -> None:
    model = _net()
    weights = parameters_of(model)
    d1, d2 = random_directions(model, seed=3)
    for d in (d1, d2):
        for name, w in weights.items():
            if w.dim() <= 1:  # biases, BatchNorm and LayerNorm scales and shifts
                assert bool((d[name] == 0).all()), name
                continue
            for i in range(w.shape[0]):  # each filter / row
                assert float(d[name][i].norm()) == pytest.approx(float(w[i].norm()), rel=1e-5), (name, i)
    kept = random_directions(model, seed=3, ignore_1d=False)[0]
    for name, w in weights.items():
        if w.dim() <= 1:
            assert torch.equal(kept[name], w)


def test_filter_normalize_by_hand() -> None:
    w = {"weight": torch.tensor([[3.0, 4.0], [0.0, 2.0]]), "bias": torch.tensor([1.0, 1.0])}
    d = {"weight": torch.tensor([[1.0, -1.0], [2.0, 0.0]]), "bias": torch.tensor([5.0, 5.0])}
    out = filter_normalize(d, w)
    # row 0: (1, −1)·5/√2; row 1: (2, 0)·2/2
    torch.testing.assert_close(out["weight"], torch.tensor([[5 / 2**0.5, -5 / 2**0.5], [2.0, 0.0]]))
    assert out["bias"].tolist() == [0.0, 0.0]


def test_directions_are_gaussian_not_uniform_positive() -> None:
    model = nn.Linear(4000, 2)
    d, _ = random_directions(model, seed=0)
    row = d["weight"][0]
    z = (row / row.std()).double().numpy()
    assert 0.45 < float((row < 0).float().mean()) < 0.55  # signs of both kinds (torch.rand gives none)
    assert scipy.stats.kstest(z, "norm").pvalue > 1e-3  # a filter is a rescaled N(0, 1) sample
    u = (row - row.min()) / (row.max() - row.min())
    assert scipy.stats.kstest(u.double().numpy(), "uniform").pvalue < 1e-6
    # seeded: the same seed, the same directions; another seed, others
    assert torch.equal(random_directions(model, seed=0)[0]["weight"], d["weight"])
    assert not torch.equal(random_directions(model, seed=1)[0]["weight"], d["weight"])


def _reference_plane(model: nn.Module, center: dict, d1: dict, d2: dict, alphas: list, betas: list,
                     data: tuple) -> torch.Tensor:
    # the definition, one point at a time on a copy of the model, in eval mode
    ref = copy.deepcopy(model).eval()
    out = torch.empty(len(betas), len(alphas), dtype=torch.float64)
    with torch.no_grad():
        for j, b in enumerate(betas):
            for i, a in enumerate(alphas):
                for name, p in ref.named_parameters():
                    p.copy_(center[name] + a * d1[name] + b * d2[name])
                out[j, i] = nn.functional.cross_entropy(ref(data[0]), data[1])
    return out


@pytest.mark.parametrize(("batch_size", "affine_first"), [("auto", True), (4, True), (4, False)])
def test_batched_plane_equals_point_by_point(batch_size: int | str, affine_first: bool) -> None:
    model = _trained_bn(_net())
    model.train()
    data = _data()
    res = plane(model, None, "random", loss_fn=nn.functional.cross_entropy, data=data, resolution=5, seed=2,
                batch_size=batch_size, affine_first=affine_first)
    center = parameters_of(model)
    d1, d2 = random_directions(model, center, seed=2)
    expected = _reference_plane(model, center, d1, d2, res.alphas, res.betas, data)
    torch.testing.assert_close(torch.tensor(res.loss, dtype=torch.float64), expected, rtol=1e-5, atol=1e-6)
    pointwise = plane(model, None, "random", loss_fn=nn.functional.cross_entropy, data=data, resolution=5,
                      seed=2, batched=False)
    torch.testing.assert_close(torch.tensor(res.loss), torch.tensor(pointwise.loss), rtol=1e-5, atol=1e-6)
    assert model.training  # the mode is restored
    torch.testing.assert_close(parameters_of(model), center)  # and the weights untouched
    assert res.loss[2][2] == pytest.approx(res.center_loss, rel=1e-6)
    assert res.mode == "eval"


def test_batched_plane_of_an_mlp_with_biases_moving() -> None:
    # a Linear first layer (the shared-first-layer path) and directions that move the biases too
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    data = (torch.randn(40, 5), torch.randint(0, 3, (40,)))
    res = plane(model, None, "random", loss_fn=nn.functional.cross_entropy, data=data, resolution=4,
                ignore_1d=False, seed=5)
    center = parameters_of(model)
    d1, d2 = random_directions(model, center, seed=5, ignore_1d=False)
    expected = _reference_plane(model, center, d1, d2, res.alphas, res.betas, data)
    torch.testing.assert_close(torch.tensor(res.loss, dtype=torch.float64), expected, rtol=1e-5, atol=1e-6)


def test_pca_recovers_the_plane_of_a_planar_trajectory() -> None:
    model = nn.Linear(10, 3)
    n = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(n, 2, generator=g, dtype=torch.float64))
    center = torch.randn(n, generator=g, dtype=torch.float64)
    coeffs = torch.tensor([[3.0, 1.0], [2.0, -1.5], [1.2, 0.7], [0.5, -0.2], [0.0, 0.0]], dtype=torch.float64)
    trajectory = [(center + basis @ c).float() for c in coeffs]
    dirs, ratio, coords = pca_directions(model, trajectory)
    assert sum(ratio) == pytest.approx(1.0, abs=1e-5)
    for d in dirs:
        v = flatten(d).double()
        assert float(v.norm()) == pytest.approx(1.0, rel=1e-5)
        assert float((basis.T @ v).norm()) == pytest.approx(1.0, rel=1e-5)  # d lies in span(basis)
    # projections keep the distances between trajectory points (the plane holds them exactly)
    pts = torch.tensor(coords, dtype=torch.float64)
    torch.testing.assert_close(torch.cdist(pts, pts), torch.cdist(coeffs, coeffs), rtol=1e-4, atol=1e-4)
    assert coords[-1] == pytest.approx((0.0, 0.0), abs=1e-6)


def test_pca_plane_projects_the_trajectory() -> None:
    model = nn.Linear(3, 1)
    X, y = torch.randn(16, 3), torch.randn(16, 1)
    trajectory = [torch.randn(4) for _ in range(5)]
    res = plane(model, None, "pca", loss_fn=nn.functional.mse_loss, data=(X, y), trajectory=trajectory,
                resolution=3)
    assert len(res.trajectory) == 5 and len(res.explained_variance) == 2
    a = [p[0] for p in res.trajectory]
    assert res.alphas[0] < min(a) and max(a) < res.alphas[-1]  # the window holds the path


def test_hessian_directions_are_the_top_eigenvectors() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    X, y = torch.randn(30, 3, dtype=torch.float64), torch.randn(30, 1, dtype=torch.float64)
    res = plane(model, None, "hessian", loss_fn=nn.functional.mse_loss, data=(X, y), resolution=3)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = flatten(parameters_of(model))

    def loss(v: torch.Tensor) -> torch.Tensor:
        parts = torch.split(v, [int(torch.tensor(s).prod()) for s in shapes])
        params = {n: p.reshape(s) for n, p, s in zip(names, parts, shapes, strict=True)}
        return nn.functional.mse_loss(torch.func.functional_call(model, params, (X,)), y)

    eig = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss, flat))
    assert res.eigenvalues == pytest.approx([float(eig[-1]), float(eig[-2])], rel=1e-3)
    assert res.direction_norms["d1"] == pytest.approx(1.0, rel=1e-6)
    assert abs(res.direction_norms["cosine"]) < 1e-4


def test_interpolation_is_the_loss_on_the_segment() -> None:
    g = torch.Generator().manual_seed(0)
    model = nn.Linear(2, 1)
    X, y = torch.randn(25, 2, generator=g), torch.randn(25, 1, generator=g)
    Xv, yv = torch.randn(10, 2, generator=g), torch.randn(10, 1, generator=g)
    t_init, t_final = torch.randn(3, generator=g), torch.randn(3, generator=g)
    res = interpolate(model, t_init, t_final, nn.functional.mse_loss, {"train": (X, y), "val": (Xv, yv)})
    assert res.alphas[0] == -0.5 and res.alphas[-1] == 1.5 and len(res.alphas) == 41
    for split, (A, b) in (("train", (X, y)), ("val", (Xv, yv))):
        for k, alpha in enumerate(res.alphas):
            theta = alpha * t_final + (1 - alpha) * t_init  # θ_α = α θ_f + (1 − α) θ_i
            pred = A @ theta[:2].reshape(2, 1) + theta[2]
            assert res.loss[split][k] == pytest.approx(float(((pred - b) ** 2).mean()), rel=1e-5)


def test_bad_inputs() -> None:
    model = nn.Linear(2, 1)
    X, y = torch.randn(4, 2), torch.randn(4, 1)
    with pytest.raises(ConfigError, match="directions"):
        plane(model, None, "uniform", loss_fn=nn.functional.mse_loss, data=(X, y))
    with pytest.raises(ConfigError, match="trajectory"):
        plane(model, None, "pca", loss_fn=nn.functional.mse_loss, data=(X, y))
    with pytest.raises(DataError):
        plane(model, None, "random", loss_fn=nn.functional.mse_loss, data=(X, y[:2]))
    with pytest.raises(ConfigError, match="theta"):
        interpolate(model, torch.zeros(5), torch.zeros(3), nn.functional.mse_loss, (X, y))
    with pytest.raises(ConfigError, match="span"):
        plane(model, None, "random", loss_fn=nn.functional.mse_loss, data=(X, y), span=-1.0)
    with pytest.raises(DataError, match="line"):
        pca_directions(model, [torch.zeros(3), torch.ones(3), 2 * torch.ones(3)])


def test_auto_chunk_respects_the_memory_budget() -> None:
    model = nn.Linear(100, 10)
    X, y = torch.randn(50, 100), torch.randn(50, 10)
    small = LossGrid(model, nn.functional.mse_loss, (X, y), memory_budget=200_000).batch_size
    large = LossGrid(model, nn.functional.mse_loss, (X, y), memory_budget=200_000_000).batch_size
    assert 1 <= small < large
