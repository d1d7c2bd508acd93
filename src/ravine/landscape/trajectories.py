"""Optimizers on 2-D test functions: their paths from one start, and a critical-point search.

:func:`trajectories` runs any registry optimizer (``ravine.optim.names()``) on a
:class:`~ravine.landscape.functions.TestFunction`, driving ``step`` the way the
optimizer's closure kind asks (``none``, ``loss``, ``graph``, ``residual``), and
records every iterate. :func:`critical_points` finds stationary points by
Newton's method on ∇f = 0 from a grid of starts and classifies each one from the
Hessian's eigenvalues with ``ravine.curvature.classify_critical_point``.

Example:
    >>> runs = trajectories("quadratic", ["sgd", "newton"], steps=20)
    >>> runs["newton"].distance < 1e-6
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ravine.errors import ConfigError, check_int, check_range
from ravine.landscape.functions import Point, TestFunction, get

_BLOWUP = 1e6  # |coordinate| beyond this counts as diverged: the picture is meaningless past it
_STILL = 3  # steps without any change of the iterate that end a run (status "converged")
WITHIN = 1e-6  # "steps to within": distance to the nearest known minimum


@dataclass
class Trajectory:
    """One optimizer's path on a test function.

    Attributes:
        optimizer: registry name.
        lr: the learning rate ε used.
        path: the iterates θ₀ (the start), θ₁, …, as (x, y) pairs.
        values: f at each iterate.
        final: the last iterate.
        nearest_minimum: the known minimizer nearest to ``final`` (None when the function has none).
        distance: ‖final − nearest_minimum‖ (nan when none is known).
        steps_to_within: the first step whose iterate is within ``WITHIN`` (1e-6) of a known minimum, else None.
        status: ``"ok"`` (ran every step), ``"converged"`` (stopped early: three steps left the iterate
            exactly unchanged) or ``"diverged"`` (non-finite, or a coordinate beyond 1e6).
        evaluations: how many times the optimizer called its closure (line searches call it often).
    """

    optimizer: str
    lr: float
    path: list[Point]
    values: list[float]
    final: Point
    nearest_minimum: Point | None
    distance: float
    steps_to_within: int | None
    status: str = "ok"
    evaluations: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of lists and numbers (nan → None) for JSON."""
        def num(v: float) -> float | None:
            return v if math.isfinite(v) else None
        return {"optimizer": self.optimizer, "lr": self.lr, "path": [list(p) for p in self.path],
                "values": [num(v) for v in self.values], "final": list(self.final),
                "final_value": num(self.values[-1]),
                "nearest_minimum": list(self.nearest_minimum) if self.nearest_minimum else None,
                "distance_to_nearest_minimum": num(self.distance), "steps_to_within_1e-6": self.steps_to_within,
                "status": self.status, "closure_evaluations": self.evaluations}


def _learning_rate(function: TestFunction, name: str, lr: float | Mapping[str, float] | None) -> float | None:
    """ε for ``name``: the caller's (one number or per name), else the function's table, else the registry's."""
    from ravine import optim

    entry = optim.info(name)
    if isinstance(lr, Mapping):
        for key in (name, entry.name, "*"):
            if key in lr:
                return check_range(f"lr for {name}", lr[key], 0.0, low_inclusive=False, error=ConfigError)
    elif lr is not None:
        return check_range("lr", lr, 0.0, low_inclusive=False, error=ConfigError)
    if entry.closure in ("graph", "residual") or entry.name in ("bfgs", "lbfgs"):
        return None  # second-order and quasi-Newton methods take their full step (ε = 1) by default
    return function.lr.get(entry.name, function.lr.get(name))


def _stepper(function: TestFunction, kind: str, point: torch.nn.Parameter,
             opt: torch.optim.Optimizer, counter: list[int]) -> Callable[[], None]:
    """One optimizer step on ``function`` at ``point``, with the closure ``kind`` asks for."""
    if kind == "residual" and function.residuals is None:
        function.residual_vector(point)  # raises the clear "not a sum of squares" error

    def closure() -> torch.Tensor:
        counter[0] += 1
        if kind == "graph":
            return function(point)
        if kind == "residual":
            return function.residual_vector(point)
        grad = torch.is_grad_enabled()  # line searches evaluate trial points under no_grad
        if grad:
            opt.zero_grad(set_to_none=True)
        loss = function(point)
        if grad:
            loss.backward()
        return loss.detach()

    if kind == "none":
        def step() -> None:
            counter[0] += 1
            opt.zero_grad(set_to_none=True)
            function(point).backward()
            opt.step()
        return step
    return lambda: opt.step(closure)


def run_optimizer(function: str | TestFunction, optimizer: str, start: Point | None = None, steps: int = 200,
                  lr: float | Mapping[str, float] | None = None, hyper: Mapping[str, Any] | None = None,
                  dtype: torch.dtype = torch.float64) -> Trajectory:
    """Run one registry optimizer for ``steps`` steps on a 2-D test function.

    The point θ = (x, y) is one ``torch.nn.Parameter``; each step is one call of
    ``optimizer.step`` (one Newton / LM / L-BFGS iteration for the methods that
    iterate inside ``step``). The run stops early when θ becomes non-finite or
    leaves |θᵢ| < 1e6 (status ``"diverged"``).

    Args:
        function: a test-function name (``ravine.landscape.functions.names()``) or object.
        optimizer: a registry name (``ravine.optim.names()``; aliases such as ``gd``, ``lm`` work).
        start: θ₀ (default: the function's ``start``).
        steps: optimizer steps.
        lr: ε: one number, a mapping name → ε (``"*"`` for all), or None for the function's table
            (first-order methods) or the registry default (second-order: ε = 1).
        hyper: other hyperparameters for ``ravine.optim.create``.
        dtype: float64 by default, so that "within 1e-6" is not limited by rounding.

    Raises:
        UnknownNameError: an unknown optimizer.
        ConfigError: a least-squares optimizer on a function that is not a sum of squares, a bad start or lr.

    Example:
        >>> run = run_optimizer("rosenbrock", "lm", steps=50)
        >>> run.steps_to_within is not None
        True
    """
    from ravine import optim

    function = get(function)
    steps = check_int("steps", steps, 1, error=ConfigError)
    entry = optim.info(optimizer)
    start = _check_start(start if start is not None else function.start)
    point = torch.nn.Parameter(torch.tensor(start, dtype=dtype))
    eps = _learning_rate(function, optimizer, lr)
    kwargs = {**(hyper or {}), **({"lr": eps} if eps is not None else {})}
    opt = optim.create(entry.name, [point], **kwargs)
    counter = [0]
    step = _stepper(function, entry.closure, point, opt, counter)
    path, values, status, still = [start], [float(function(point.detach()))], "ok", 0
    for _ in range(steps):
        step()
        xy = point.detach()
        if not bool(torch.isfinite(xy).all()) or float(xy.abs().max()) > _BLOWUP:
            status = "diverged"
            break
        here = (float(xy[0]), float(xy[1]))
        # A point that no step moves any more is a fixed point of the method: the rest of the run would only
        # repeat it (and LM would spend ten rejected tries per step there).
        still = still + 1 if here == path[-1] else 0
        if still >= _STILL:
            status = "converged"
            break
        path.append(here)
        values.append(float(function(xy)))
    nearest, distance = function.nearest_minimum(path[-1])
    within = None
    if function.minima:
        within = next((i for i, p in enumerate(path) if function.nearest_minimum(p)[1] <= WITHIN), None)
    return Trajectory(optimizer, float(opt.param_groups[0]["lr"]), path, values, path[-1], nearest, distance, within,
                      status, counter[0])


def trajectories(function: str | TestFunction, optimizers: Sequence[str], start: Point | None = None,
                 steps: int = 200, lr: float | Mapping[str, float] | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> dict[str, Trajectory]:
    """Run several optimizers on one 2-D test function from the same start.

    Args:
        function: a name or a ``TestFunction``.
        optimizers: registry names, first and second order (``gd``, ``momentum``, ``adam``,
            ``newton``, ``bfgs``, ``lm``, ...). Least-squares methods (closure ``residual``)
            need a function with residuals (rosenbrock, beale, himmelblau, quadratic).
        start: the common θ₀ (default: the function's).
        steps: optimizer steps for each.
        lr: ε for all (a number) or per name (a mapping; ``"*"`` for the rest); default: the function's table.
        progress: ``progress(optimizer, done, total)`` after each optimizer.

    Returns:
        ``{name: Trajectory}`` in the order given.

    Example:
        >>> runs = trajectories("himmelblau", ["gd", "adam"], start=(0.0, 0.0), steps=300)
        >>> sorted(runs)
        ['adam', 'gd']
    """
    if not optimizers:
        raise ConfigError("Invalid optimizers: [] (allowed: one or more names from `ravine optimizers`)")
    if len(set(optimizers)) != len(optimizers):
        raise ConfigError(f"Invalid optimizers: {list(optimizers)} (allowed: each name once)")
    out: dict[str, Trajectory] = {}
    for i, name in enumerate(optimizers):
        out[name] = run_optimizer(function, name, start, steps, lr)
        if progress is not None:
            progress(name, i + 1, len(optimizers))
    return out


def _check_start(start: Any) -> Point:
    try:
        x, y = (float(v) for v in start)
    except (TypeError, ValueError):
        raise ConfigError(f"Invalid start: {start!r} (allowed: two numbers x,y)") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ConfigError(f"Invalid start: {start!r} (allowed: two finite numbers x,y)")
    return (x, y)


# --- critical points ---------------------------------------------------------------------------


@dataclass
class StationaryPoint:
    """A stationary point ∇f = 0 of a 2-D function, found by :func:`critical_points`.

    (``ravine.curvature.CriticalPoint`` is the classification alone; this adds where the point is.)

    Attributes:
        point: (x, y).
        value: f there.
        eigenvalues: of the Hessian, ascending.
        grad_norm: ‖∇f‖ there.
        kind: ``"minimum"``, ``"maximum"``, ``"saddle"`` or ``"degenerate"`` (``classify_critical_point``).
        starts: how many grid starts converged to it.
    """

    point: Point
    value: float
    eigenvalues: tuple[float, float]
    grad_norm: float
    kind: str
    starts: int = 1


def critical_points(function: str | TestFunction, grid: int = 15, bounds: tuple[Point, Point] | None = None,
                    tol: float = 1e-10, max_iter: int = 100, merge: float = 1e-6) -> list[StationaryPoint]:
    """Find the critical points of a 2-D function by Newton's method on ∇f = 0 from a grid of starts.

    From each of ``grid × grid`` starts in ``bounds``, iterate θ ← θ − (∇²f)⁻¹ ∇f
    (a root finder for the gradient, so it converges to minima, saddles and
    maxima alike) until ‖∇f‖ < ``tol``; points closer than ``merge`` are one.
    Each is classified from the Hessian's eigenvalues by
    ``ravine.curvature.classify_critical_point``: all positive → minimum, all
    negative → maximum, both signs → saddle, some ≈ 0 → degenerate.

    Example:
        >>> kinds = sorted(c.kind for c in critical_points("himmelblau", grid=9))
        >>> kinds.count("minimum"), kinds.count("saddle"), kinds.count("maximum")
        (4, 4, 1)
    """
    from ravine.curvature import classify_critical_point

    function = get(function)
    grid = check_int("grid", grid, 1, error=ConfigError)
    (x_lo, x_hi), (y_lo, y_hi) = bounds or function.bounds
    xs, ys = torch.linspace(x_lo, x_hi, grid, dtype=torch.float64), torch.linspace(y_lo, y_hi, grid,
                                                                                  dtype=torch.float64)
    theta = torch.cartesian_prod(xs, ys)  # all starts at once: Newton is elementwise over the batch
    for _ in range(max_iter):
        gx, gy = function.gradient(theta[:, 0], theta[:, 1])
        g = torch.stack([gx, gy], -1)
        h = function.hessian(theta[:, 0], theta[:, 1])
        # lstsq, not solve: a singular Hessian (the monkey saddle's origin) must not stop the other starts
        delta = torch.linalg.lstsq(h, g.unsqueeze(-1)).solution.squeeze(-1)
        delta = torch.where(torch.isfinite(delta), delta, torch.zeros_like(delta))
        theta = theta - delta
    gx, gy = function.gradient(theta[:, 0], theta[:, 1])
    gnorm = torch.stack([gx, gy], -1).norm(dim=-1)
    found: list[StationaryPoint] = []
    for row, gn in zip(theta, gnorm, strict=True):
        if not (torch.isfinite(row).all() and float(gn) < tol):
            continue
        point = (float(row[0]), float(row[1]))
        twin = next((c for c in found if math.dist(c.point, point) < merge), None)
        if twin is not None:
            twin.starts += 1
            continue
        eig = torch.linalg.eigvalsh(function.hessian(row[0], row[1]))
        verdict = classify_critical_point(eigenvalues=eig, grad_norm=float(gn), tol=1e-8)
        found.append(StationaryPoint(point, float(function(row)), (float(eig[0]), float(eig[1])), float(gn),
                                   _kind(verdict)))
    return sorted(found, key=lambda c: (c.kind, c.point))


def _kind(verdict: Any) -> str:
    """The kind string out of whatever ``classify_critical_point`` returns (a str, a mapping or an object)."""
    if isinstance(verdict, str):
        return verdict
    if isinstance(verdict, Mapping):
        return str(verdict["kind"])
    return str(verdict.kind)
