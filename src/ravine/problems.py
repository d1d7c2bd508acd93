"""Named problems: data + model + loss + metric + default batch size, epochs and lr.

The interface below is fixed (the trainer and ``ravine compare`` rely on it);
the registry of concrete problems is filled in below it.

Example:
    >>> from ravine import problems
    >>> prob = problems.get("digits-mlp")
    >>> inst = prob.build(seed=0)
    >>> inst.model(inst.data.X_train[:2]).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn


@dataclass
class Splits:
    """Train / validation / test tensors, already preprocessed (fitted on train only)."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    feature_names: list[str] | None = None


@dataclass
class ProblemInstance:
    """A built problem, ready to train.

    Attributes:
        data: the splits, on ``device`` in ``dtype``.
        model: the network (initialized with the problem's seed).
        loss_fn: ``loss_fn(outputs, y) -> scalar`` (mean over the batch).
        residual_fn: ``residual_fn(outputs, y) -> vector`` with
            ``0.5 * ‖r‖² == loss_fn(outputs, y)``, or None where the loss is not
            a sum of squares (least-squares optimizers need it).
        metric_fn: ``metric_fn(outputs, y) -> float``.
        metric_name: e.g. ``"accuracy"`` or ``"rmse"``.
        higher_is_better: direction of the metric.
        error_fn: ``error_fn(outputs, y) -> float``, an error rate in the
            metric's units where lower is better (1 − accuracy, or the rmse),
            used by the bias/variance diagnosis.
        reference_error: the error a good model reaches (the "human level" /
            Bayes proxy of the course's diagnosis), in ``error_fn`` units.
        target: the validation metric whose first crossing is "time to target".
    """

    data: Splits
    model: nn.Module
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    residual_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None
    metric_fn: Callable[[torch.Tensor, torch.Tensor], float]
    metric_name: str
    higher_is_better: bool
    error_fn: Callable[[torch.Tensor, torch.Tensor], float]
    reference_error: float
    target: float


@dataclass
class Problem:
    """A named problem's recipe.

    Attributes:
        name: registry name.
        description: one line.
        data: the dataset's name (for listings).
        model: the model's description (for listings).
        loss: ``"cross-entropy"``, ``"mse"`` or ``"bce"``.
        metric: the metric's name.
        batch_size: default minibatch size (``None``: full batch).
        epochs: default epochs.
        lr: default learning rate per optimizer name (falls back to the
            registry's ``train_lr``).
        builder: ``builder(seed, device, dtype, **options) -> ProblemInstance``.
        options: the options ``build`` accepts, with defaults (e.g.
            ``{"standardize": True}`` or ``{"data": None, "target": None}``).
    """

    name: str
    description: str
    data: str
    model: str
    loss: Literal["cross-entropy", "mse", "bce"]
    metric: str
    batch_size: int | None
    epochs: int
    builder: Callable[..., ProblemInstance]
    lr: dict[str, float] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def build(self, seed: int = 0, device: str | torch.device = "cpu",
              dtype: torch.dtype = torch.float32, **options: Any) -> ProblemInstance:
        """Build data and model for ``seed``; unknown options raise ``ConfigError``."""
        raise NotImplementedError  # filled in with the registry

    def default_lr(self, optimizer: str) -> float:
        """The learning rate ``ravine compare`` uses for ``optimizer`` on this problem."""
        raise NotImplementedError  # filled in with the registry
