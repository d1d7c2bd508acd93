"""ravine — train neural networks with the course's optimization methods, and see why.

Example:
    >>> import torch, ravine
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = ravine.optim.create("momentum", model.parameters(), lr=0.1, momentum=0.9)
"""

from typing import Any

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


def __getattr__(name: str) -> Any:
    """``ravine.optim`` and ``ravine.schedules`` load on first use (PEP 562).

    They import torch, which takes seconds; the command line must be able to catch a
    Ctrl-C before that (see ``ravine.cli.main``).
    """
    if name in ("optim", "schedules"):
        import importlib

        return importlib.import_module(f"ravine.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
