"""Activations, weight initializations and normalization layers, by name.

Everything is ``torch.nn`` / ``torch.nn.init``; ravine only names them the way
the course does and seeds the initialization with a ``torch.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ravine.errors import ConfigError, unknown_name

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky-relu": lambda: nn.LeakyReLU(0.01),
    "prelu": lambda: nn.PReLU(num_parameters=1, init=0.25),
    "elu": nn.ELU,
    "gelu": nn.GELU,
}

#: init name -> one-line formula (weights; biases are always 0)
INITS: dict[str, str] = {
    "constant": "W = 1/n_in everywhere (every hidden unit identical: the symmetry-breaking failure)",
    "zeros": "W = 0 (fine only for convex models such as linear / logistic regression)",
    "small-normal": "W ~ N(0, 0.01²)",
    "xavier-uniform": "W ~ U(−a, a), a = √(6 / (n_in + n_out))",
    "xavier-normal": "W = N(0, 1) · √(1 / n_in)",
    "he": "W = N(0, 1) · √(2 / n_in)",
    "he-normal": "W = N(0, 1) · √(2 / n_in) (the same as he)",
}

#: the course's five initializations, by the names ``ravine diagnose --compare-inits`` uses
COURSE_INITS = ("constant", "small-normal", "xavier-uniform", "xavier-normal", "he-normal")


def _constant_value(name: str) -> float | None:
    """The value of ``constant:<v>`` (e.g. ``constant:0.1``), else None."""
    head, sep, tail = name.partition(":")
    if head != "constant" or not sep:
        return None
    try:
        value = float(tail)
    except ValueError:
        return None
    return value if math.isfinite(value) else None

NORMS = ("none", "batch", "layer", "group", "instance")


def activation(name: str) -> nn.Module:
    """A fresh activation module by name.

    Example:
        >>> activation("leaky-relu")
        LeakyReLU(negative_slope=0.01)

    Raises:
        UnknownNameError: listing the known activations.
    """
    if name not in ACTIVATIONS:
        raise unknown_name("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


def check_init(name: str) -> str:
    """Return ``name`` if it is a known init (or ``constant:<value>``), else raise ``UnknownNameError``."""
    if name not in INITS and (not isinstance(name, str) or _constant_value(name) is None):
        raise unknown_name("init", name, [*INITS, "constant:<value>"])
    return name


def check_norm(name: str) -> str:
    """Return ``name`` if it is a known norm, else raise ``UnknownNameError`` listing them."""
    if name not in NORMS:
        raise unknown_name("norm", name, NORMS)
    return name


def _fan_in(weight: torch.Tensor) -> int:
    # Linear (out, in) or Conv (out, in, k, k): fan_in = in · receptive field
    return int(weight.shape[1] * math.prod(weight.shape[2:]))


def init_weight_(weight: torch.Tensor, name: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill a Linear / Conv weight in place with the named initialization.

    See :data:`INITS` for the formulas; n_in is the fan-in (in-features ×
    kernel area), n_out the fan-out.

    Example:
        >>> w = torch.empty(256, 512)
        >>> _ = init_weight_(w, "he", torch.Generator().manual_seed(0))
        >>> abs(w.std().item() - (2 / 512) ** 0.5) < 2e-3
        True
    """
    check_init(name)
    with torch.no_grad():
        if name == "constant":
            return weight.fill_(1.0 / _fan_in(weight))
        if _constant_value(name) is not None:  # constant:<v>, every weight v
            return weight.fill_(_constant_value(name))
        if name == "zeros":
            return weight.zero_()
        if name == "small-normal":
            return nn.init.normal_(weight, 0.0, 0.01, generator=generator)
        if name == "xavier-uniform":
            return nn.init.xavier_uniform_(weight, gain=1.0, generator=generator)
        # The course's "Xavier normal" is N(0, 1/n_in) (LeCun normal), not torch's 2/(n_in + n_out).
        gain = math.sqrt(2.0) if name in ("he", "he-normal") else 1.0
        return nn.init.normal_(weight, 0.0, gain / math.sqrt(_fan_in(weight)), generator=generator)


def init_module_(module: nn.Module, name: str, generator: torch.Generator | None = None) -> nn.Module:
    """Initialize every Linear / Conv weight of ``module`` (biases 0); reset the other layers.

    Norm layers get weight 1, bias 0 and fresh running statistics; PReLU gets
    slope 0.25. None of these use a random number generator.
    """
    check_init(name)
    for sub in module.modules():
        if isinstance(sub, nn.Linear | nn.Conv1d | nn.Conv2d):
            init_weight_(sub.weight, name, generator)
            if sub.bias is not None:
                with torch.no_grad():
                    sub.bias.zero_()
        elif sub is not module and hasattr(sub, "reset_parameters"):
            sub.reset_parameters()
    return module


def _groups(width: int, groups: int) -> int:
    # the largest divisor of width that is <= groups (GroupNorm needs width % groups == 0)
    return max(g for g in range(1, min(groups, width) + 1) if width % g == 0)


def norm_1d(name: str, width: int, groups: int = 8) -> nn.Module | None:
    """A normalization layer for a hidden vector of ``width`` features (MLPs), or None.

    batch: ``BatchNorm1d`` (over the batch, per feature); layer: ``LayerNorm``
    (over the features of one example); group: ``GroupNorm`` (over groups of
    features of one example).

    Raises:
        UnknownNameError: unknown name.
        ConfigError: ``instance`` — instance norm normalizes each channel over
            its spatial positions; a hidden vector has one value per channel,
            so every output would be 0. Use ``layer`` (or ``group``) for an
            MLP, or ``instance`` in a CNN.
    """
    check_norm(name)
    if name == "none":
        return None
    if name == "batch":
        return nn.BatchNorm1d(width)
    if name == "layer":
        return nn.LayerNorm(width)
    if name == "group":
        return nn.GroupNorm(_groups(width, groups), width)
    raise ConfigError("Invalid norm: 'instance' for an MLP (instance norm normalizes each channel over its "
                      "spatial positions; a hidden vector has one value per channel, so every output would be 0); "
                      "allowed for MLPs: none, batch, layer, group — instance works in a CNN")


def norm_2d(name: str, channels: int, groups: int = 8) -> nn.Module | None:
    """A normalization layer for ``channels`` feature maps (CNNs), or None.

    batch: ``BatchNorm2d``; layer: ``GroupNorm(1, C)`` (over C, H, W of one
    example — ``nn.LayerNorm`` would need H, W fixed in advance); group:
    ``GroupNorm``; instance: ``InstanceNorm2d(affine=True)`` (per example and channel).
    """
    check_norm(name)
    if name == "none":
        return None
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "layer":
        return nn.GroupNorm(1, channels)
    if name == "group":
        return nn.GroupNorm(_groups(channels, groups), channels)
    return nn.InstanceNorm2d(channels, affine=True)
