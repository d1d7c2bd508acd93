"""Independent oracles for the curvature tests: the full Hessian by torch.autograd.functional.hessian
(not ravine's code), and small models and data made from a seed."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call


def mlp(sizes: list[int], act: type[nn.Module] = nn.Tanh, seed: int = 0,
        dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """A plain MLP with the given widths, initialized from ``seed``."""
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), act()]
    model = nn.Sequential(*layers[:-1]).to(dtype)
    torch.random.set_rng_state(gen_state)
    return model


def classification_data(n: int, d: int, classes: int, seed: int = 0,
                        dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen, dtype=dtype), torch.randint(0, classes, (n,), generator=gen)


def reference_hessian(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇²J of the mean loss on (x, y), by torch.autograd.functional.hessian on the flat parameters."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    numels = [p.numel() for p in model.parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def f(flat: torch.Tensor) -> torch.Tensor:
        params = {n: t.view(s) for n, t, s in zip(names, flat.split(numels), shapes, strict=True)}
        return loss_fn(functional_call(model, params, (x,)), y)

    H = torch.autograd.functional.hessian(f, theta, vectorize=True)
    return (H + H.T) / 2


def reference_loss(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(loss_fn(model(x), y))


def close(value: float, reference: float, tol: float) -> bool:
    """|value − reference| ≤ tol · |reference| (the relative tolerance the API promises)."""
    return abs(value - reference) <= tol * abs(reference)
