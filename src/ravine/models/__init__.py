"""Models by name: MLPs and a small CNN, with activation, init, norm and dropout by name.

Example:
    >>> import torch
    >>> from ravine import models
    >>> net = models.mlp([64, 128, 128, 10], activation="relu", init="he", seed=0)
    >>> len([m for m in net if isinstance(m, torch.nn.Linear)])
    3
"""

from ravine.models.builders import AsImage, cnn, mlp
from ravine.models.layers import (
    ACTIVATIONS,
    COURSE_INITS,
    INITS,
    NORMS,
    activation,
    init_module_,
    init_weight_,
    norm_1d,
    norm_2d,
)

__all__ = ["ACTIVATIONS", "COURSE_INITS", "INITS", "NORMS", "AsImage", "activation", "cnn", "init_module_", "init_weight_",
           "mlp", "norm_1d", "norm_2d"]
