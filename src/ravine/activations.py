"""The course's activation table, measured: range, zero-centring, saturation, dead units, cost.

For every activation of the models' registry (:data:`ravine.models.ACTIVATIONS`: sigmoid, tanh, relu,
leaky-relu, prelu, elu, gelu — the same ``torch.nn`` modules the networks use) this module measures,
with f′ taken by autograd (elementwise, so ∂Σf/∂x = f′(x)):

- ``range_min`` / ``range_max``: min and max of f on a grid of [−50, 50] (100 001 points);
- ``mean_normal``: E f(x) for x ~ N(0, 1) (zero-centred when ≈ 0), Monte Carlo, seeded;
- ``saturation_1``, ``saturation_5``: P(|f′(x)| < 0.01) for x ~ N(0, σ²), σ = 1 and 5 (vanishing gradients);
- ``max_derivative`` and ``argmax_derivative``: max f′ on the grid and where (sigmoid: ¼ at 0);
- ``dead_fraction``: P(f′(x) = 0 exactly) for x ~ N(shift, 1), shift = −2 by default (a unit pushed
  negative: ReLU's gradient is then exactly 0 — a dead unit —, leaky ReLU's never);
- ``time_ms`` and ``time_relative``: median wall time of forward + backward on a float32 vector of
  10⁶ entries, and its ratio to ReLU's (measured, machine-dependent; never asserted in tests).

Statistics are computed in float64; timing in float32, the training dtype.

Example:
    >>> row = measure("sigmoid", samples=10_000, repeats=1)
    >>> round(row.max_derivative, 6), row.argmax_derivative
    (0.25, 0.0)
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from matplotlib.figure import Figure

from ravine.errors import DataError, check_int, check_range
from ravine.models import ACTIVATIONS, activation

GRID = (-50.0, 50.0, 100_001)
SATURATION = 0.01


@dataclass
class ActivationStats:
    """One row of the activation table (see the module docstring for each field)."""

    name: str
    range_min: float
    range_max: float
    mean_normal: float
    saturation_1: float
    saturation_5: float
    max_derivative: float
    argmax_derivative: float
    dead_fraction: float
    time_ms: float
    time_relative: float | None = None


def _value_and_derivative(fn: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().requires_grad_(True)
    y = fn(x)
    (d,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), d


def timings(names: Sequence[str], *, repeats: int = 7, time_size: int = 1_000_000, seed: int = 0,
            device: str | torch.device = "cpu") -> dict[str, float]:
    """Median milliseconds of forward + backward per activation on a float32 vector of ``time_size``.

    The activations take turns within each repeat (round robin), so a machine that gets busier or
    quieter during the measurement shifts them all alike and the ratios stay fair; one warm-up
    round is dropped.
    """
    from ravine.utils import resolve_device

    dev = resolve_device(device)
    repeats = check_int("repeats", repeats, 1, error=DataError)
    time_size = check_int("time_size", time_size, 1, error=DataError)
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0, error=DataError))
    x = torch.randn(time_size, generator=gen).to(dev)
    fns = {n: activation(n).to(device=dev, dtype=torch.float32) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(repeats + 1):
        for name, fn in fns.items():
            xi = x.clone().requires_grad_(True)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            start = time.perf_counter()
            fn(xi).sum().backward()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            times[name].append(time.perf_counter() - start)
    return {n: 1000 * statistics.median(t[1:]) for n, t in times.items()}


def measure(name: str, *, samples: int = 200_000, shift: float = -2.0, repeats: int = 7, time_size: int = 1_000_000,
            seed: int = 0, device: str | torch.device = "cpu") -> ActivationStats:
    """Measure one activation's row of the table.

    Args:
        name: a name of :data:`ravine.models.ACTIVATIONS`.
        samples: Monte Carlo draws for the means and fractions.
        shift: the mean of the input for the dead fraction (negative: a unit pushed below 0).
        repeats: timing repeats (median taken; one extra warm-up run is dropped).
        time_size: length of the timed input vector; 0 skips the timing (``time_ms`` NaN).
        seed: seeds every draw.
        device: where to compute.

    Raises:
        UnknownNameError: unknown activation (listing the known ones).
    """
    from ravine.utils import resolve_device

    dev = resolve_device(device)
    samples = check_int("samples", samples, 100, error=DataError)
    shift = check_range("shift", shift, error=DataError)
    fn = activation(name).to(device=dev, dtype=torch.float64)
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0, error=DataError))
    # integers / 1000: 0 and ±50 are exact grid points (linspace gives −1e-15 for 0)
    grid = (torch.arange(-50_000, 50_001, dtype=torch.float64) / 1000).to(dev)
    y, d = _value_and_derivative(fn, grid)
    z = torch.randn(samples, generator=gen, dtype=torch.float64).to(dev)
    mean_normal = float(fn(z).detach().mean())
    sat = [float((_value_and_derivative(fn, sigma * z)[1].abs() < SATURATION).double().mean()) for sigma in (1.0, 5.0)]
    dead = float((_value_and_derivative(fn, z + shift)[1] == 0).double().mean())
    k = int(d.argmax())
    ms = timings([name], repeats=repeats, time_size=time_size, seed=seed, device=dev)[name] if time_size else math.nan
    return ActivationStats(name, float(y.min()), float(y.max()), mean_normal, sat[0], sat[1], float(d[k]),
                           float(grid[k]), dead, ms)


def table(names: Sequence[str] | None = None, **kwargs: Any) -> list[ActivationStats]:
    """Measure every activation in ``names`` (default: the whole registry); times relative to ReLU.

    ReLU is timed as the reference even when it is not listed; the timings are taken together
    (:func:`timings`). Keyword arguments go to :func:`measure` (``repeats``, ``time_size`` to the timing).

    Example:
        >>> rows = table(["tanh", "relu"], samples=2000, repeats=1, time_size=1000)
        >>> [r.name for r in rows]
        ['tanh', 'relu']
    """
    names = list(ACTIVATIONS) if names is None else list(names)
    if not names:
        raise DataError(f"Invalid activations: none given (allowed: {', '.join(ACTIVATIONS)})")
    timing = {k: kwargs.pop(k) for k in ("repeats", "time_size") if k in kwargs}
    rows = [measure(n, time_size=0, **kwargs) for n in names]
    ms = timings(list(dict.fromkeys([*names, "relu"])), seed=kwargs.get("seed", 0),
                 device=kwargs.get("device", "cpu"), **timing)
    for r in rows:
        r.time_ms = ms[r.name]
        r.time_relative = ms[r.name] / ms["relu"] if ms["relu"] > 0 else None
    return rows


def to_dict(rows: Sequence[ActivationStats]) -> dict[str, Any]:
    """The table as a plain dict ``{"grid", "saturation_threshold", "rows": [...]}`` for JSON."""
    return {"grid": {"low": GRID[0], "high": GRID[1], "points": GRID[2]}, "saturation_threshold": SATURATION,
            "rows": [asdict(r) for r in rows]}


def figure(names: Sequence[str] | None = None, low: float = -5.0, high: float = 5.0) -> Figure:
    """Each activation (solid) and its derivative (dashed) on [low, high], one panel each.

    Example:
        >>> len(figure(["relu", "tanh"]).axes)
        2
    """
    names = list(ACTIVATIONS) if names is None else list(names)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.7 * rows))
    x = torch.linspace(low, high, 1001, dtype=torch.float64)
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        y, d = _value_and_derivative(activation(name).to(torch.float64), x)
        ax.plot(x.numpy(), y.numpy(), color="#1f77b4", label="f(x)")
        ax.plot(x.numpy(), d.numpy(), color="#d62728", ls="--", label="f′(x)")
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
