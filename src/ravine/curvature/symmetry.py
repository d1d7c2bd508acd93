"""Weight-space symmetries of an MLP: the same function at different parameters.

The course's non-identifiability: permuting the hidden units of a layer (rows of its
weight and bias, columns of the next layer's weight) gives *exactly* the same network
function, so every minimum has (n!)-fold copies. With a positively homogeneous
activation (ReLU: relu(k·z) = k·relu(z) for k > 0), scaling a layer's weights and bias by
k and the next layer's weights by 1/k also leaves the function unchanged — but not the
Hessian: its spectrum (and so the "sharpness" λ_max) changes, which is why sharpness alone
does not measure how good a minimum is (Dinh et al. 2017).

Both functions return a *new* model (a deep copy); the original is not modified.

Example:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> x = torch.randn(5, 3)
    >>> twin = permute_hidden(net, 0, torch.tensor([3, 1, 0, 2]))
    >>> torch.allclose(net(x), twin(x))
    True
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ravine.errors import RavineError, check_range


def _pair(model: nn.Module, layer: int) -> tuple[nn.Sequential, nn.Linear, nn.Linear]:
    if not isinstance(model, nn.Sequential):
        raise RavineError(f"Invalid model: {type(model).__name__} (allowed: nn.Sequential of Linear and "
                          "activation layers)")
    linears = [i for i, m in enumerate(model) if isinstance(m, nn.Linear)]
    if layer not in linears or linears.index(layer) == len(linears) - 1:
        raise RavineError(f"Invalid layer: {layer} (allowed: the index of a hidden Linear layer: "
                          f"{', '.join(map(str, linears[:-1])) or 'none'})")
    nxt = linears[linears.index(layer) + 1]
    between = [m for m in list(model)[layer + 1:nxt]]
    if any(isinstance(m, nn.Module) and any(True for _ in m.parameters()) for m in between):
        raise RavineError(f"Invalid layer: {layer} (allowed: only parameter-free activations between it and "
                          "the next Linear)")
    twin = copy.deepcopy(model)
    return twin, twin[layer], twin[nxt]


def permute_hidden(model: nn.Sequential, layer: int, perm: torch.Tensor) -> nn.Sequential:
    """A copy of ``model`` with the output units of Linear ``model[layer]`` permuted by ``perm``.

    W₁ ← P W₁, b₁ ← P b₁, W₂ ← W₂ Pᵀ: the same function for any element-wise activation.
    """
    twin, first, second = _pair(model, layer)
    perm = torch.as_tensor(perm, dtype=torch.long)
    if sorted(perm.tolist()) != list(range(first.out_features)):
        raise RavineError(f"Invalid perm: {perm.tolist()[:8]} (allowed: a permutation of 0..{first.out_features - 1})")
    with torch.no_grad():
        first.weight.copy_(first.weight[perm])
        if first.bias is not None:
            first.bias.copy_(first.bias[perm])
        second.weight.copy_(second.weight[:, perm])
    return twin


def rescale_hidden(model: nn.Sequential, layer: int, k: float) -> nn.Sequential:
    """A copy of ``model`` with Linear ``model[layer]`` scaled by k > 0 and the next Linear's weight by 1/k.

    The same function when the activation in between is positively homogeneous (ReLU,
    LeakyReLU, identity); checked here.
    """
    k = check_range("k", k, 0.0, low_inclusive=False)
    twin, first, second = _pair(model, layer)
    acts = list(twin)[layer + 1:list(twin).index(second)]
    if not all(isinstance(m, nn.ReLU | nn.LeakyReLU | nn.Identity) for m in acts):
        names = ", ".join(type(m).__name__ for m in acts)
        raise RavineError(f"Invalid layer: {layer} is followed by {names} (allowed: ReLU, LeakyReLU or Identity, "
                          "positively homogeneous)")
    with torch.no_grad():
        first.weight.mul_(k)
        if first.bias is not None:
            first.bias.mul_(k)
        second.weight.div_(k)
    return twin
