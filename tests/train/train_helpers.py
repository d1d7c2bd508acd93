"""Small problems built from seeded random tensors, shared by the trainer tests."""

from __future__ import annotations

import torch
from torch import nn

from ravine.problems import ProblemInstance
from ravine.train import make_instance


def accuracy(out: torch.Tensor, y: torch.Tensor) -> float:
    return float((out.argmax(1) == y).float().mean())


def classification(seed: int = 0, n: int = 96, dropout: float = 0.0, hidden: int = 16) -> ProblemInstance:
    """A 2-class problem on 5 features (label = sign of the first feature) and a small MLP."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(3 * n, 5, generator=g)
    y = (X[:, 0] > 0).long()
    layers: list[nn.Module] = [nn.Linear(5, hidden), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, 2))
    model = nn.Sequential(*layers)
    with torch.no_grad():  # initialise from the generator too: no global RNG in tests
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    data = (X[:n], y[:n], X[n:2 * n], y[n:2 * n], X[2 * n:], y[2 * n:])
    return make_instance(model, data, nn.functional.cross_entropy, metric_fn=accuracy, metric_name="accuracy",
                         higher_is_better=True)


def regression(seed: int = 0, n: int = 60, features: int = 3) -> ProblemInstance:
    """A linear model on a noisy linear target, with the least-squares residual."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(3 * n, features, generator=g)
    w = torch.randn(features, 1, generator=g)
    y = X @ w + 0.1 * torch.randn(3 * n, 1, generator=g)
    model = nn.Linear(features, 1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()

    def residual(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # 0.5 ‖r‖² == mse: r = (out − y) / √n
        return (out - target).flatten() / len(target) ** 0.5

    data = (X[:n], y[:n], X[n:2 * n], y[n:2 * n], X[2 * n:], y[2 * n:])
    def half_mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((out - target) ** 2).sum() / (2 * len(target))

    return make_instance(model, data, half_mse, residual_fn=residual, metric_name="half-mse")
