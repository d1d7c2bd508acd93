"""Optimizers: the course's update rules as ``torch.optim.Optimizer`` classes.

Example:
    >>> import torch, ravine
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = ravine.optim.create("nesterov", [w], lr=0.1, momentum=0.9)
"""

from typing import Any

from ravine.optim.registry import OptimizerInfo, create, info, names

__all__ = ["OptimizerInfo", "create", "info", "least_squares", "minimize", "names"]


def __getattr__(name: str) -> Any:
    # The functional solvers import SciPy-like machinery; load them on first use.
    if name == "least_squares":
        from ravine.optim.least_squares import least_squares

        return least_squares
    if name == "minimize":
        from ravine.optim.minimize import minimize

        return minimize
    raise AttributeError(f"module 'ravine.optim' has no attribute {name!r}")
