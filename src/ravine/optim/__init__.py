"""Optimizers: the course's update rules as ``torch.optim.Optimizer`` classes.

Classes (also reachable by name through :func:`create`): :class:`SGD`, :class:`Momentum`,
:class:`Nesterov`, :class:`AdaGrad`, :class:`RMSProp`, :class:`RMSPropEpsOutside`, :class:`Adam`
(first order, ``first_order``); :class:`LineSearchGD` (``line_search_gd``); :class:`Newton`,
:class:`NewtonCG` (``newton``); :class:`BFGS`, :class:`LBFGS` (``quasi_newton``);
:class:`GaussNewton`, :class:`Levenberg`, :class:`LevenbergMarquardt` (``levenberg_marquardt``).

Also the functional solvers :func:`minimize` (Newton, Newton-CG, BFGS, L-BFGS; module
``minimization``) and :func:`least_squares` (Gauss–Newton, Levenberg, Levenberg–Marquardt; module
``levenberg_marquardt``), which take a function of a flat tensor like ``scipy.optimize``. No module
shares its name with a function, so ``ravine.optim.least_squares`` is always the function.

Example:
    >>> import torch, ravine
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = ravine.optim.create("nesterov", [w], lr=0.1, momentum=0.9)
    >>> isinstance(opt, ravine.optim.Nesterov)
    True
"""

from ravine.optim.first_order import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSProp, RMSPropEpsOutside
from ravine.optim.levenberg_marquardt import (GaussNewton, Levenberg, LevenbergMarquardt, SampleResiduals,
                                              least_squares)
from ravine.optim.line_search_gd import LineSearchGD
from ravine.optim.minimization import minimize
from ravine.optim.newton import Newton, NewtonCG
from ravine.optim.quasi_newton import BFGS, LBFGS
from ravine.optim.registry import OptimizerInfo, create, info, names
from ravine.optim.result import OptimizeResult

__all__ = ["BFGS", "LBFGS", "SGD", "AdaGrad", "Adam", "GaussNewton", "Levenberg", "LevenbergMarquardt",
           "LineSearchGD", "Momentum", "Nesterov", "Newton", "NewtonCG", "OptimizeResult", "OptimizerInfo",
           "RMSProp", "RMSPropEpsOutside", "SampleResiduals", "create", "info", "least_squares", "minimize",
           "names"]
