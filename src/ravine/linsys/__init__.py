"""Solvers for A x = b side by side: direct (torch.linalg), iterative (torch), and GD as the anti-example.

Example:
    >>> from ravine import linsys
    >>> s = linsys.spd(50, kappa=100.0, seed=0)
    >>> linsys.cg(s.A, s.b).converged
    True
"""

from ravine.linsys.direct import cholesky, lu, qr
from ravine.linsys.iterative import (
    cg,
    gauss_seidel,
    gradient_descent,
    heavy_ball,
    jacobi,
    jacobi_preconditioner,
    newton_least_squares,
    pcg,
    ssor_preconditioner,
)
from ravine.linsys.result import SolveResult
from ravine.linsys.study import DEFAULT_METHODS, METHODS, compare, kappa_sweep
from ravine.linsys.systems import (
    System,
    diagonally_dominant,
    least_squares_normal,
    least_squares_qr,
    load_matrix,
    poisson1d,
    spd,
)

__all__ = ["DEFAULT_METHODS", "METHODS", "SolveResult", "System", "cg", "cholesky", "compare",
           "diagonally_dominant", "gauss_seidel", "gradient_descent", "heavy_ball", "jacobi",
           "jacobi_preconditioner", "kappa_sweep", "least_squares_normal", "least_squares_qr", "load_matrix",
           "lu", "newton_least_squares", "pcg", "poisson1d", "qr", "spd", "ssor_preconditioner"]
