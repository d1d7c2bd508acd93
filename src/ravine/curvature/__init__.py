"""Curvature of a model's loss: Hessian-vector products, extreme eigenvalues, trace, spectral density,
conditioning, critical points and the course's Taylor step analysis.

Every function takes ``(model, loss_fn, data)`` — ``data`` one batch ``(inputs, targets)``
or an iterable of batches, accumulated exactly into the Hessian of the full-data mean
loss — or an operator (a :class:`HessianOperator`, or a symmetric matrix as a tensor).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from ravine import curvature
    >>> m = nn.Linear(2, 1, bias=False).double()
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    >>> y = torch.zeros(2, 1, dtype=torch.float64)
    >>> res = curvature.eigenvalues(m, nn.functional.mse_loss, (x, y), k=1, which="both_ends")
    >>> res.values.tolist()
    [4.0, 1.0]
    >>> curvature.classify_critical_point(eigenvalues=res.values, grad_norm=0.0).kind
    'minimum'
"""

from ravine.curvature.analysis import (
    Convexity,
    TaylorStep,
    condition_number,
    gradient_curvature,
    is_convex,
    lambda_max,
    taylor_step,
)
from ravine.curvature.critical import CriticalPoint, classify_critical_point, condition_number_of
from ravine.curvature.lanczos import Eigen, eigenvalues, lanczos
from ravine.curvature.operator import (
    HessianOperator,
    MatrixOperator,
    as_batches,
    as_operator,
    flat_params,
    gradient,
    hessian,
    hvp,
)
from ravine.curvature.symmetry import permute_hidden, rescale_hidden
from ravine.curvature.trace import Density, TraceEstimate, density, lanczos_tridiagonal, trace

__all__ = [
    "Convexity",
    "CriticalPoint",
    "Density",
    "Eigen",
    "HessianOperator",
    "MatrixOperator",
    "TaylorStep",
    "TraceEstimate",
    "as_batches",
    "as_operator",
    "classify_critical_point",
    "condition_number",
    "condition_number_of",
    "density",
    "eigenvalues",
    "flat_params",
    "gradient",
    "gradient_curvature",
    "hessian",
    "hvp",
    "is_convex",
    "lambda_max",
    "lanczos",
    "lanczos_tridiagonal",
    "permute_hidden",
    "rescale_hidden",
    "taylor_step",
    "trace",
]
