"""ravine — train neural networks with the course's optimization methods, and see why.

Example:
    >>> import torch, ravine
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = ravine.optim.create("momentum", model.parameters(), lr=0.1, momentum=0.9)
"""

from ravine import optim, schedules
from ravine.errors import (
    CheckpointError,
    ClosureError,
    ConfigError,
    DataError,
    DivergenceError,
    HyperparameterError,
    RavineError,
    UnknownNameError,
)

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ClosureError",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "HyperparameterError",
    "RavineError",
    "UnknownNameError",
    "optim",
    "schedules",
    "__version__",
]
