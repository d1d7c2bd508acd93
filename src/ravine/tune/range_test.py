"""The learning-rate range test: one short run whose lr grows exponentially, loss recorded against lr.

ε_t = ε_min · (ε_max / ε_min)^(t / (T − 1)), t = 0 … T − 1, one optimizer step
per t on the problem's minibatches. The minibatch loss ℓ_t is smoothed with a
debiased exponential moving average (as Adam debiases its moments):
``m_t = β m_{t−1} + (1 − β) ℓ_t``, ``m̂_t = m_t / (1 − β^{t+1})``. A run stops
when m̂_t exceeds ``stop_factor`` × its smallest value so far (or is not
finite): the loss has blown up, larger rates tell nothing more.

The test runs a few seeds (different initial weights, same minibatches) as one
batched computation (:class:`ravine.models.ensemble.Ensemble`); their
smoothed curves are combined by the median at each step, up to the step where
the first seed stopped.

**The suggestion rule ("valley / 10")**: ε* = ε(argmin_t median_t m̂_t) / 10 —
the rate at the bottom of the smoothed curve, one decade back. The bottom is
where the loss still falls fastest *per step* just before the rate is too
large; a rate ten times smaller is safely inside the stable region for a
whole training run. The steepest-slope rule (torch-lr-finder's
``argmin_t dm̂/d log ε``) is not used: a derivative of a noisy curve is far
noisier than the curve, its argmin jumps between the early flat part and the
edge of divergence from one seed to the next (its users ask how to get a
usable rate out of it), while the location of a minimum of a smoothed,
seed-median curve moves little. This is fastai's "minimum / 10" rule;
fastai's valley and slide rules were considered too and need a tuned
window.

**At the edge of the range**: when the minimum lies in the first or the last
``EDGE`` (5%) of the swept steps, the rule has nothing to stand on. At the low
end (``at_edge="low"``) the loss never fell below its start: ε_min is already
too large (or nothing was learned), and ε*, a decade below ε_min, lies outside
the sweep. At the high end (``at_edge="high"``, and no seed stopped) the loss
was still falling at ε_max: the sweep never reached the rates where it blows
up, so the true valley lies beyond it. Either way the result says so, and a
``RuntimeWarning`` asks to widen the range.

Example:
    >>> res = lr_range_test("digits-mlp", "sgd", iterations=60, seeds=2)  # doctest: +SKIP
    >>> 1e-4 < res.suggestion < 10  # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ravine.errors import ConfigError, check_int, check_range
from ravine.problems import ProblemInstance

RULE = ("valley/10: lr at the minimum of the seed-median debiased-EMA loss curve, divided by 10 "
        "(not the steepest slope: the derivative of a noisy curve is noisier still)")
#: the fraction of the swept steps, at either end, where a minimum makes the suggestion unreliable
EDGE = 0.05


@dataclass
class RangeTestResult:
    """What :func:`lr_range_test` returns (``to_json()`` is a plain dict).

    Attributes:
        lr: the learning rate of each step (shared by every seed).
        loss: per seed, the raw minibatch loss of each step it ran.
        smoothed: per seed, the debiased EMA m̂_t.
        median: the median over seeds of m̂_t, up to the first stop.
        suggestion: ε* (see the module docstring); NaN when no curve fell.
        lr_at_min: ε at the minimum of ``median``.
        stopped_at: per seed, the step where it stopped (None: ran to the end).
        at_edge: ``"low"`` / ``"high"`` when the minimum of ``median`` lies at the start / end of
            the swept range (the suggestion is then unreliable: widen the range), else None.
    """

    optimizer: str
    lr: list[float]
    loss: list[list[float]]
    smoothed: list[list[float]]
    median: list[float]
    suggestion: float
    lr_at_min: float
    stopped_at: list[int | None]
    seeds: list[int]
    at_edge: str | None = None
    rule: str = RULE
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain dict of lists and numbers."""
        return {k: getattr(self, k) for k in ("optimizer", "lr", "loss", "smoothed", "median", "suggestion",
                                              "lr_at_min", "stopped_at", "seeds", "at_edge", "rule",
                                              "settings")}


def debiased_ema(values: Sequence[float], beta: float = 0.98) -> list[float]:
    """m̂_t = m_t / (1 − β^{t+1}), m_t = β m_{t−1} + (1 − β) x_t, m_{−1} = 0.

    Example:
        >>> debiased_ema([2.0, 2.0, 2.0], 0.9)  # the debiasing makes a constant come out exact
        [2.0, 2.0, 2.0]
    """
    out, m = [], 0.0
    for t, x in enumerate(values):
        m = beta * m + (1.0 - beta) * x
        out.append(m / (1.0 - beta ** (t + 1)))
    return out


def suggest(lrs: Sequence[float], curve: Sequence[float], divide: float = 10.0) -> tuple[float, float]:
    """(suggestion, lr at the minimum) of a smoothed loss curve: the valley/10 rule.

    Example:
        >>> suggest([0.01, 0.1, 1.0, 10.0], [2.0, 1.0, 0.5, 9.0])
        (0.1, 1.0)
    """
    finite = [(v, i) for i, v in enumerate(curve) if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    i = min(finite)[1]
    return lrs[i] / divide, lrs[i]


def range_edge(curve: Sequence[float], steps: int, edge: float = EDGE) -> str | None:
    """Whether the minimum of a smoothed range-test curve lies at an end of the sweep.

    Args:
        curve: the smoothed loss per step; shorter than ``steps`` when the run stopped early.
        steps: T, the number of steps swept.
        edge: the fraction of the T steps at either end that counts as the edge.

    Returns:
        ``"low"`` when the minimum is in the first ``edge`` of the steps; ``"high"`` when the
        curve covers all T steps (nothing blew up) and its minimum is in the last ``edge``;
        None otherwise, and for a curve with no finite value.

    Example:
        >>> range_edge([3.0, 2.0, 1.0, 0.5], 4)  # still falling at the last rate
        'high'
        >>> range_edge([1.0, 2.0, 1.5, 9.0], 4)
        'low'
    """
    finite = [(v, i) for i, v in enumerate(curve) if math.isfinite(v)]
    if not finite:
        return None
    i = min(finite)[1]  # the same minimum as suggest(): the first of equal values
    k = max(1, math.ceil(edge * steps))
    if i < k:
        return "low"
    if len(curve) >= steps and i >= steps - k:
        return "high"
    return None


def edge_message(at_edge: str, lr_min: float, lr_max: float, suggestion: float) -> str:
    """One line on a suggestion taken at an end of the sweep, and how to widen the range."""
    pct = f"{100 * EDGE:.0f}%"
    if at_edge == "low":
        return (f"LR range test: the smoothed loss is lowest in the first {pct} of the sweep (lr_min = {lr_min:.3g}), "
                f"so the suggested lr {suggestion:.3g} is unreliable; widen the range: lower lr_min")
    return (f"LR range test: the smoothed loss was still falling at the end of the sweep (lr_max = {lr_max:.3g}, "
            f"nothing blew up), so the suggested lr {suggestion:.3g} is unreliable; widen the range: raise lr_max")


def lr_range_test(problem: ProblemInstance | str, optimizer: str = "sgd", *, lr_min: float = 1e-5,
                  lr_max: float = 10.0, iterations: int = 300, seeds: int | Sequence[int] = 3, beta: float = 0.98,
                  stop_factor: float = 4.0, hyper: Mapping[str, Any] | None = None,
                  batch_size: int | str | None = "auto", seed: int = 0,
                  problem_options: Mapping[str, Any] | None = None, device: str | None = None,
                  dtype: torch.dtype | None = None) -> RangeTestResult:
    """Run the LR range test (formula, smoothing and suggestion rule in the module docstring).

    Args:
        problem: a problem name or instance (its training split only is used).
        optimizer: a first-order optimizer name.
        lr_min, lr_max: the rates of the first and last step.
        iterations: T, the number of steps (the data are cycled through, reshuffled each pass).
        seeds: how many seeds (or which) for the initial weights; 1 disables the batch.
        beta: EMA smoothing β.
        stop_factor: a seed stops when m̂_t > stop_factor · min_{s≤t} m̂_s.
        hyper: the optimizer's other hyperparameters.
        batch_size: minibatch size ("auto": the problem's).
        seed: the minibatch order (and the build of a named problem).
        problem_options: options of a named problem.
        device, dtype: where and how to train.

    Returns:
        A :class:`RangeTestResult`. When its minimum lies at an end of the range
        (``at_edge``), a one-line ``RuntimeWarning`` says so and how to widen the range.
    """
    from ravine import optim
    from ravine.models.ensemble import Ensemble, ensemble_kind
    from ravine.train.batched import RunConfig, _initial_model, _resolve_problem, batchable, batched_loss

    lr_min = check_range("lr_min", lr_min, 0.0, low_inclusive=False, error=ConfigError)
    lr_max = check_range("lr_max", lr_max, lr_min, low_inclusive=False, error=ConfigError)
    iterations = check_int("iterations", iterations, 2, 100_000, error=ConfigError)
    beta = check_range("beta", beta, 0.0, 1.0, high_inclusive=False, error=ConfigError)
    stop_factor = check_range("stop_factor", stop_factor, 1.0, low_inclusive=False, error=ConfigError)
    seed_list = list(range(seed, seed + check_int("seeds", seeds, 1, 64, error=ConfigError))) \
        if isinstance(seeds, int) else [check_int("seeds", s, 0, error=ConfigError) for s in seeds]
    if not seed_list:
        raise ConfigError("Invalid seeds: empty (allowed: a count ≥ 1 or a list of seeds)")
    name = optim.info(optimizer).name
    if not batchable(name):
        raise ConfigError(f"Invalid optimizer: {name!r} for the range test (allowed: first-order optimizers "
                          "whose step needs only the gradient of a minibatch)")
    options = dict(problem_options or {})
    inst, recipe = _resolve_problem(problem, seed, device, dtype, options)
    X, y = inst.data.X_train, inst.data.y_train
    n = len(X)
    if batch_size == "auto":
        batch_size = recipe.batch_size if recipe is not None else min(64, n)
    size = n if batch_size in (None, "full") else check_int("batch_size", batch_size, 1, n, error=ConfigError)
    # Seed s gets the problem's model built with seed s (its init rule), on the shared data.
    models = [_initial_model(inst, recipe, RunConfig(name, init=s if recipe is not None and s != seed else None),
                             seed, device, dtype, options) for s in seed_list]
    kind = ensemble_kind(inst.model)[0]
    lrs = [lr_min * (lr_max / lr_min) ** (t / (iterations - 1)) for t in range(iterations)]
    losses: list[list[float]] = [[] for _ in seed_list]
    smooth: list[list[float]] = [[] for _ in seed_list]
    stopped: list[int | None] = [None] * len(seed_list)
    with torch.random.fork_rng():
        torch.random.default_generator.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        if kind == "sequential":  # BatchNorm: each seed alone, same minibatch stream
            groups = [[i] for i in range(len(models))]
        else:
            groups = [list(range(len(models)))]
        for group in groups:
            gen.manual_seed(seed)
            _run_group(Ensemble([models[i] for i in group], kind if kind != "sequential" else "vmap")
                       if kind != "sequential" else None, [models[i] for i in group], group, name, dict(hyper or {}),
                       lrs, X, y, size, gen, batched_loss(inst.loss_fn), inst.loss_fn, beta, stop_factor,
                       losses, smooth, stopped)
    end = min(len(s) for s in smooth)
    median = [float(torch.tensor([s[t] for s in smooth]).median()) for t in range(end)]
    suggestion, at_min = suggest(lrs[:end], median)
    at_edge = range_edge(median, iterations)
    if at_edge is not None:
        warnings.warn(edge_message(at_edge, lr_min, lr_max, suggestion), RuntimeWarning, stacklevel=2)
    settings = {"lr_min": lr_min, "lr_max": lr_max, "iterations": iterations, "beta": beta,
                "stop_factor": stop_factor, "batch_size": size, "hyper": dict(hyper or {}), "seed": seed,
                "mode": kind if kind != "sequential" else "sequential"}
    return RangeTestResult(name, lrs, losses, smooth, median, suggestion, at_min, stopped, seed_list,
                           at_edge=at_edge, settings=settings)


def _run_group(ens: Any, models: list[Any], indices: list[int], name: str, hyper: dict[str, Any], lrs: list[float],
               X: torch.Tensor, y: torch.Tensor, size: int, gen: torch.Generator, loss_b: Any, loss_1: Any,
               beta: float, stop_factor: float, losses: list[list[float]], smooth: list[list[float]],
               stopped: list[int | None]) -> None:
    from ravine import optim

    n = len(X)
    if ens is not None:
        params = [ens.member_params(k) for k in range(len(indices))]
    else:
        params = [list(m.parameters()) for m in models]
    opts = [optim.create(name, ps, **{**hyper, "lr": lrs[0]}) for ps in params]
    m = [0.0] * len(indices)
    best = [math.inf] * len(indices)
    alive = set(range(len(indices)))
    order: torch.Tensor | None = None
    pos = n
    for t, lr in enumerate(lrs):
        if not alive:
            break
        if pos >= n:
            order, pos = torch.randperm(n, generator=gen).to(X.device), 0
        idx = order[pos:pos + size]  # type: ignore[index]
        pos += size
        xb, yb = X[idx], y[idx]
        if ens is not None:
            for p in ens.stacked:
                p.grad = None
            values_t = loss_b(ens(xb), yb)
            values_t.sum().backward()
            values = values_t.detach().tolist()
        else:
            values = []
            for model, opt in zip(models, opts, strict=True):
                opt.zero_grad(set_to_none=True)
                loss = loss_1(model(xb), yb)
                loss.backward()
                values.append(float(loss.detach()))
        for k in sorted(alive):
            i = indices[k]
            value = values[k]
            m[k] = beta * m[k] + (1.0 - beta) * value
            s = m[k] / (1.0 - beta ** (t + 1))
            losses[i].append(value)
            smooth[i].append(s)
            best[k] = min(best[k], s)
            if not math.isfinite(s) or s > stop_factor * best[k]:
                stopped[i] = t
                alive.discard(k)
                continue
            if ens is not None:
                for p, g in zip(params[k], ens.member_grads(k), strict=True):
                    p.grad = g
            for group in opts[k].param_groups:
                group["lr"] = lr
            opts[k].step()
