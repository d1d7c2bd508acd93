"""Optimizers: the course's update rules as ``torch.optim.Optimizer`` classes.

Also the functional solvers :func:`minimize` (Newton, Newton-CG, BFGS, L-BFGS)
and :func:`least_squares` (Gauss–Newton, Levenberg, Levenberg–Marquardt), which
take a function of a flat tensor like ``scipy.optimize``.

Example:
    >>> import torch, ravine
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = ravine.optim.create("nesterov", [w], lr=0.1, momentum=0.9)
"""

# The functions are imported eagerly on purpose: their modules share their names,
# and a lazy import would leave the *module* bound to ``ravine.optim.minimize``.
from ravine.optim.least_squares import least_squares
from ravine.optim.minimize import minimize
from ravine.optim.registry import OptimizerInfo, create, info, names
from ravine.optim.result import OptimizeResult

__all__ = ["OptimizeResult", "OptimizerInfo", "create", "info", "least_squares", "minimize", "names"]
