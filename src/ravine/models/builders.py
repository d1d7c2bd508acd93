"""MLP and small-CNN builders (torch.nn layers; activation, init, norm, dropout by name)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ravine.errors import ConfigError, check_int, check_range
from ravine.models.layers import activation as make_activation
from ravine.models.layers import check_init, check_norm, init_module_, norm_1d, norm_2d


class AsImage(nn.Module):
    """Reshape flat rows ``(N, C·H·W)`` to images ``(N, C, H, W)``; images pass through.

    Problems keep every split as a 2-D matrix (so one standardization code path
    serves all); the CNN restores the image shape here.
    """

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def _check_common(activation: str, init: str, norm: str, dropout: float) -> float:
    make_activation(activation)  # validates the name
    check_init(init)
    check_norm(norm)
    return check_range("dropout", dropout, 0.0, 1.0, high_inclusive=False, error=ConfigError)


def _materialize(build: Callable[[], nn.Module], init: str, seed: int, generator: torch.Generator | None,
                 device: str | torch.device, dtype: torch.dtype) -> nn.Module:
    # Build on the meta device so that torch's default initializers never touch the global RNG,
    # allocate on the CPU, initialize from our own generator (same seed -> same weights on any
    # device), then move to the target device.
    with torch.device("meta"):
        model = build()
    model = model.to(dtype=dtype).to_empty(device="cpu")
    if generator is None:
        generator = torch.Generator().manual_seed(check_int("seed", seed, 0, error=ConfigError))
    init_module_(model, init, generator)
    return model.to(device=device)


def memory_budget() -> int:
    """Bytes a model may plan to use: half of this machine's physical memory (RAVINE_MAX_MODEL_BYTES overrides)."""
    override = os.environ.get("RAVINE_MAX_MODEL_BYTES")
    if override:
        return int(float(override))
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def check_memory(n_params: int, dtype: torch.dtype, what: str) -> None:
    """Refuse a model whose training would not fit in memory, before allocating it.

    Estimate: ``4 · n_params · bytes per value`` — weights, gradients and two optimizer
    buffers (Adam's moments); activations are small next to that at ravine's batch sizes.

    Example:
        >>> check_memory(10**6, torch.float32, "sizes [1000, 1000]")
    """
    need = 4 * n_params * dtype.itemsize
    budget = memory_budget()
    if need > budget:
        raise ConfigError(f"Invalid {what}: {n_params:,} parameters need about {need / 2**30:.1f} GiB to train "
                          f"(weights, gradients, optimizer state) (allowed: up to {budget / 2**30:.1f} GiB, half "
                          "this machine's memory)")


def mlp(sizes: Sequence[int], activation: str = "relu", init: str = "he", norm: str = "none",
        dropout: float = 0.0, *, output_activation: str | None = None, seed: int = 0,
        generator: torch.Generator | None = None, device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """A multilayer perceptron: ``Linear → [norm] → activation → [dropout]`` per hidden layer.

    Args:
        sizes: layer widths including input and output, e.g. ``[64, 128, 128, 10]``;
            ``[d, 1]`` is a linear model.
        activation: sigmoid, tanh, relu, leaky-relu (slope 0.01), prelu, elu, gelu.
        init: constant, zeros, small-normal, xavier-uniform, xavier-normal, he
            (formulas in ``ravine.models.INITS``); biases start at 0.
        norm: none, batch (BatchNorm1d), layer (LayerNorm), group (GroupNorm);
            instance is refused with the reason.
        dropout: drop probability p after each hidden activation (inverted dropout).
        output_activation: an activation after the last layer (e.g. ``"sigmoid"``), or None.
        seed: seeds the initialization (ignored when ``generator`` is given).
        generator: a CPU ``torch.Generator`` to draw the initial weights from.
        device: where the model goes.
        dtype: parameter dtype.

    L2 and L1 regularization are optimizer hyperparameters (``weight_decay``, ``l1``).

    Example:
        >>> net = mlp([64, 128, 128, 10], activation="relu", init="he", seed=0)
        >>> net(torch.zeros(2, 64)).shape
        torch.Size([2, 10])
    """
    sizes = [check_int(f"sizes[{i}]", s, 1, error=ConfigError) for i, s in enumerate(sizes)]
    if len(sizes) < 2:
        raise ConfigError(f"Invalid sizes: {sizes!r} (allowed: at least input and output width)")
    check_memory(sum(a * b + b for a, b in itertools.pairwise(sizes)), dtype, f"sizes {sizes}")
    p = _check_common(activation, init, norm, dropout)
    if norm != "none" and len(sizes) > 2:
        norm_1d(norm, sizes[1])  # refuses "instance" with its reason before anything is built
    if output_activation is not None:
        make_activation(output_activation)

    def build() -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(n_in, n_out))
            if i == len(sizes) - 2:
                break
            norm_layer = norm_1d(norm, n_out)
            layers += [norm_layer] if norm_layer is not None else []
            layers.append(make_activation(activation))
            layers += [nn.Dropout(p)] if p > 0 else []
        if output_activation is not None:
            layers.append(make_activation(output_activation))
        return nn.Sequential(*layers)

    return _materialize(build, init, seed, generator, device, dtype)  # type: ignore[return-value]


def cnn(in_shape: Sequence[int] = (1, 8, 8), n_classes: int = 10, channels: Sequence[int] = (16, 32),
        hidden: int = 64, kernel_size: int = 3, activation: str = "relu", init: str = "he", norm: str = "none",
        dropout: float = 0.0, *, seed: int = 0, generator: torch.Generator | None = None,
        device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """A small CNN: per channel count ``Conv(k, same padding) → [norm] → activation → MaxPool(2)``,
    then ``Linear(hidden) → activation → [dropout] → Linear(n_classes)``.

    Accepts flat rows ``(N, C·H·W)`` or images ``(N, C, H, W)``. With the
    defaults an 8×8 digit becomes 16×4×4, then 32×2×2 = 128 features; a 28×28
    image 32×7×7 = 1568.

    Args:
        in_shape: ``(channels, height, width)`` of one image.
        n_classes: outputs.
        channels: output channels of each conv block (each halves H and W).
        hidden: width of the hidden fully connected layer.
        kernel_size: odd kernel size.
        activation, init, norm, dropout, seed, generator, device, dtype: as in :func:`mlp`;
            norm: none, batch (BatchNorm2d), layer (GroupNorm(1, C)), group, instance (InstanceNorm2d).

    Example:
        >>> net = cnn((1, 8, 8), 10, seed=0)
        >>> net(torch.zeros(2, 64)).shape
        torch.Size([2, 10])
    """
    shape = [check_int(f"in_shape[{i}]", s, 1, error=ConfigError) for i, s in enumerate(in_shape)]
    if len(shape) != 3:
        raise ConfigError(f"Invalid in_shape: {tuple(in_shape)!r} (allowed: (channels, height, width))")
    chans = [check_int(f"channels[{i}]", c, 1, error=ConfigError) for i, c in enumerate(channels)]
    n_classes = check_int("n_classes", n_classes, 1, error=ConfigError)
    hidden = check_int("hidden", hidden, 1, error=ConfigError)
    kernel_size = check_int("kernel_size", kernel_size, 1, error=ConfigError)
    if kernel_size % 2 == 0:
        raise ConfigError(f"Invalid kernel_size: {kernel_size} (allowed: odd, for same padding)")
    if min(shape[1:]) < 2 ** len(chans):
        raise ConfigError(f"Invalid channels: {len(chans)} pooling blocks need images of at least "
                          f"{2 ** len(chans)}×{2 ** len(chans)}, got {shape[1]}×{shape[2]}")
    p = _check_common(activation, init, norm, dropout)

    def build() -> nn.Sequential:
        layers: list[nn.Module] = [AsImage(shape)]
        c_in, height, width = shape
        for c_out in chans:
            layers.append(nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2))
            norm_layer = norm_2d(norm, c_out)
            layers += [norm_layer] if norm_layer is not None else []
            layers += [make_activation(activation), nn.MaxPool2d(2)]
            c_in, height, width = c_out, height // 2, width // 2
        layers += [nn.Flatten(), nn.Linear(c_in * height * width, hidden), make_activation(activation)]
        layers += [nn.Dropout(p)] if p > 0 else []
        layers.append(nn.Linear(hidden, n_classes))
        return nn.Sequential(*layers)

    return _materialize(build, init, seed, generator, device, dtype)  # type: ignore[return-value]
