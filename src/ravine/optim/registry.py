"""The optimizer registry: names -> factories, formulas and defaults.

Each module listed in ``_MODULES`` exposes ``OPTIMIZERS: list[OptimizerInfo]``;
the registry collects them lazily, so adding an optimizer means adding one
entry to its module's list. The CLI, reports and the contract test suite all
iterate :func:`names`.

Closure kinds (``OptimizerInfo.closure``) tell callers such as the trainer what
``step`` needs:

- ``"none"``: call ``loss.backward()`` yourself, then ``step()`` (a closure is
  accepted but not required).
- ``"loss"``: ``step(closure)`` where ``closure()`` zeroes grads, computes the
  loss, calls ``backward()`` when ``torch.is_grad_enabled()`` and returns the
  loss (the ``torch.optim.LBFGS`` convention; line search evaluates its trial
  points under ``torch.no_grad()``).
- ``"graph"``: ``step(closure)`` where ``closure()`` returns the loss computed
  from the parameters *without* calling ``backward()``; the optimizer takes
  first and second derivatives itself (Newton).
- ``"residual"``: ``step(closure)`` where ``closure()`` returns the residual
  vector r(θ) (loss = ½‖r‖²) without calling ``backward()`` (Gauss–Newton,
  Levenberg, Levenberg–Marquardt).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from ravine.errors import HyperparameterError, unknown_name

ClosureKind = Literal["none", "loss", "graph", "residual"]

_MODULES = (
    "ravine.optim.first_order",
    "ravine.optim.line_search_gd",
    "ravine.optim.newton",
    "ravine.optim.quasi_newton",
    "ravine.optim.levenberg_marquardt",
)


@dataclass(frozen=True)
class OptimizerInfo:
    """One registry entry.

    Attributes:
        name: registry name (``"adam"``).
        factory: ``factory(params, **hyper) -> torch.optim.Optimizer``.
        formula: the update rule on one line, in the course's symbols.
        defaults: hyperparameter defaults (the keys ``create`` accepts).
        closure: what ``step`` needs (see the module docstring).
        aliases: other names that resolve to this entry (``"gd"`` for ``"sgd"``).
        train_lr: the default learning rate ``ravine compare`` uses for it.
        full_batch: True where the method is meant for full-batch training.
    """

    name: str
    factory: Callable[..., torch.optim.Optimizer]
    formula: str
    defaults: dict[str, Any]
    closure: ClosureKind = "none"
    aliases: tuple[str, ...] = ()
    train_lr: float | None = None
    full_batch: bool = False
    extra_keys: tuple[str, ...] = field(default=())


def _load() -> dict[str, OptimizerInfo]:
    table: dict[str, OptimizerInfo] = {}
    for mod_name in _MODULES:
        # A module that fails to import is a bug, not a family "not built yet": let it raise, so a
        # rename or a syntax error fails every command and test instead of hiding a family.
        mod = importlib.import_module(mod_name)
        for info in getattr(mod, "OPTIMIZERS", []):
            table[info.name] = info
    return table


_TABLE: dict[str, OptimizerInfo] | None = None


def _table() -> dict[str, OptimizerInfo]:
    global _TABLE
    if _TABLE is None:
        _TABLE = _load()
    return _TABLE


def _aliases() -> dict[str, str]:
    return {alias: info.name for info in _table().values() for alias in info.aliases}


def names(include_aliases: bool = False) -> list[str]:
    """The registered optimizer names, in registry order.

    Example:
        >>> "adam" in names()
        True
    """
    out = list(_table())
    if include_aliases:
        out += list(_aliases())
    return out


def info(name: str) -> OptimizerInfo:
    """The registry entry for ``name`` (an alias resolves to its entry).

    Raises:
        UnknownNameError: listing the known names.
    """
    table = _table()
    key = _aliases().get(name, name)
    if key not in table:
        raise unknown_name("optimizer", name, names(include_aliases=True))
    return table[key]


def create(name: str, params: Iterable[torch.Tensor] | Iterable[dict], **hyper: Any) -> torch.optim.Optimizer:
    """Create a registered optimizer by name.

    Hyperparameter names are the same everywhere: ``lr`` (ε), ``momentum`` (α),
    ``rho`` (ρ), ``betas`` (ρ1, ρ2), ``eps`` (δ), ``weight_decay`` (L2), ``l1``.

    Example:
        >>> model = torch.nn.Linear(4, 1)
        >>> opt = create("adam", model.parameters(), lr=1e-3)
        >>> type(opt).__name__
        'Adam'

    Raises:
        UnknownNameError: for an unknown optimizer name.
        HyperparameterError: for an unknown hyperparameter or a value out of range.
    """
    entry = info(name)
    allowed = set(entry.defaults) | set(entry.extra_keys)
    unknown = sorted(set(hyper) - allowed)
    if unknown:
        raise unknown_name(f"hyperparameter for optimizer {entry.name!r}", unknown[0], allowed,
                           error=HyperparameterError)
    return entry.factory(params, **hyper)
