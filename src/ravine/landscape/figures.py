"""Figures for landscapes: contours with optimizer paths, interpolation curves, plane contours and surfaces.

Every function returns a ``matplotlib.figure.Figure`` built without ``pyplot``
(no global state, no window), like ``ravine.report.figures``; save it with
``ravine.report.figures.to_png`` or ``fig.savefig``. :func:`animate_paths`
writes an animated GIF with Matplotlib's ``PillowWriter`` (Pillow is a
Matplotlib dependency).

Example:
    >>> from ravine.landscape import trajectories, get
    >>> fig = contour_paths(get("quadratic"), trajectories("quadratic", ["gd"], steps=5))
    >>> len(fig.axes) >= 1
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

from ravine.landscape.functions import TestFunction
from ravine.landscape.plane import Interpolation, Plane
from ravine.landscape.trajectories import Trajectory
from ravine.report.figures import colors

_CMAP = "viridis"


def _window(function: TestFunction, runs: Mapping[str, Trajectory]) -> tuple[tuple[float, float], ...]:
    """The function's window, grown to hold every start (paths that run away are clipped)."""
    (x_lo, x_hi), (y_lo, y_hi) = function.bounds
    for run in runs.values():
        x, y = run.path[0]
        x_lo, x_hi, y_lo, y_hi = min(x_lo, x - 0.1), max(x_hi, x + 0.1), min(y_lo, y - 0.1), max(y_hi, y + 0.1)
    return (x_lo, x_hi), (y_lo, y_hi)


def _draw_function(ax: Any, function: TestFunction, window: tuple[tuple[float, float], ...], n: int = 200,
                   fast: bool = False) -> None:
    (x_lo, x_hi), (y_lo, y_hi) = window
    xs = torch.linspace(x_lo, x_hi, n, dtype=torch.float64)
    ys = torch.linspace(y_lo, y_hi, n, dtype=torch.float64)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    zz = function.value(xx, yy).numpy()
    if function.log_levels:
        # f spans decades: contours of log(f − min f + 0.01) show the valley floor and the walls at once
        zz = np.log10(zz - zz.min() + 1e-2)
    if fast:  # an image redraws far faster than filled contours: every GIF frame redraws the background
        ax.imshow(zz, extent=(x_lo, x_hi, y_lo, y_hi), origin="lower", cmap=_CMAP, alpha=0.55, aspect="auto")
        ax.contour(xx.numpy(), yy.numpy(), zz, levels=15, colors="k", linewidths=0.3, alpha=0.5)
    else:
        ax.contourf(xx.numpy(), yy.numpy(), zz, levels=30, cmap=_CMAP, alpha=0.55)
        ax.contour(xx.numpy(), yy.numpy(), zz, levels=30, colors="k", linewidths=0.3, alpha=0.5)
    for points, marker, label in ((function.minima, "*", "minimum"), (function.saddles, "X", "saddle"),
                                  (function.maxima, "^", "maximum"), (function.degenerate, "D", "degenerate")):
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points], marker=marker, s=110, c="white",
                       edgecolors="k", zorder=5, label=label)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def contour_paths(function: TestFunction, runs: Mapping[str, Trajectory], title: str | None = None) -> Figure:
    """The function's contours with every optimizer's path from the common start.

    Left: contours of f (log-spaced levels where f spans decades), the known
    minima (★), saddles (X) and maxima (▲), and each path θ₀ → θ_T (a dot per
    iterate, × where it diverged). Right: the distance to the nearest known
    minimum per step on a log scale (or f per step when the function has none),
    so the speed of convergence can be read off: a straight descending line is
    linear convergence, a line that bends down ever faster is Newton's
    quadratic convergence.
    """
    fig = Figure(figsize=(12.5, 5.2))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    window = _window(function, runs)
    _draw_function(ax, function, window)
    palette = colors(list(runs))
    for name, run in runs.items():
        xs, ys = [p[0] for p in run.path], [p[1] for p in run.path]
        label = f"{name} (ε={run.lr:.3g})" + (" — diverged" if run.status == "diverged" else "")
        ax.plot(xs, ys, "-", color=palette[name], lw=1.6, label=label, zorder=6)
        ax.plot(xs, ys, ".", color=palette[name], ms=3, zorder=6)
        if run.status == "diverged":
            ax.plot([xs[-1]], [ys[-1]], "x", color=palette[name], ms=11, mew=2.5, zorder=7)
        if function.minima:
            dist = [max(function.nearest_minimum(p)[1], 1e-17) for p in run.path]
            ax2.semilogy(range(len(dist)), dist, color=palette[name], label=name)
        else:
            ax2.plot(range(len(run.values)), run.values, color=palette[name], label=name)
    x0, y0 = next(iter(runs.values())).path[0] if runs else function.start
    ax.scatter([x0], [y0], marker="o", s=70, c="red", edgecolors="k", zorder=8, label="start")
    ax.legend(loc="best", fontsize=7, framealpha=0.85)
    ax.set_title(title or f"{function.name}: {function.formula}", fontsize=9)
    ax2.set_xlabel("step")
    if function.minima:
        ax2.axhline(1e-6, color="grey", ls=":", lw=1)
        ax2.set_ylabel("distance to the nearest minimum")
    else:
        ax2.set_ylabel("f(θ)")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=7)
    ax2.set_title("convergence", fontsize=9)
    fig.tight_layout()
    return fig


def animate_paths(function: TestFunction, runs: Mapping[str, Trajectory], path: str | Path, fps: int = 12,
                  max_frames: int = 60, dpi: int = 72) -> Path:
    """Write an animated GIF of the paths growing step by step (Matplotlib's ``PillowWriter``).

    Long runs are subsampled to at most ``max_frames`` frames; every path is
    drawn up to the same step in each frame, so their speeds can be compared.
    """
    from matplotlib.animation import PillowWriter

    path = Path(path)
    fig = Figure(figsize=(6.4, 5.2))
    ax = fig.subplots()
    _draw_function(ax, function, _window(function, runs), n=120, fast=True)
    palette = colors(list(runs))
    lines = {name: ax.plot([], [], "-o", color=palette[name], lw=1.6, ms=2.5, label=name)[0] for name in runs}
    ax.legend(loc="best", fontsize=7, framealpha=0.85)
    title = ax.set_title("", fontsize=9)
    longest = max((len(r.path) for r in runs.values()), default=1)
    frames = sorted({round(v) for v in np.linspace(0, longest - 1, min(max_frames, longest))})
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, str(path), dpi):
        for k in frames:
            for name, run in runs.items():
                pts = run.path[: k + 1]
                lines[name].set_data([p[0] for p in pts], [p[1] for p in pts])
            title.set_text(f"{function.name}: step {k}")
            writer.grab_frame()
    return path


def interpolation_figure(result: Interpolation, title: str = "loss along θ_α = α θ_final + (1 − α) θ_init"
                         ) -> Figure:
    """The loss along the line from θ_init (α = 0) to θ_final (α = 1), per split, on a log scale.

    A curve that falls monotonically from α = 0 to 1 and rises after it says the
    straight path meets no barrier (Goodfellow et al. found this for many nets);
    the gap between the train and validation curves at α = 1 is the
    generalization gap.
    """
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    for name, values in result.loss.items():
        ys = [v if v is not None and math.isfinite(v) else float("nan") for v in values]
        ax.plot(result.alphas, ys, "-o", ms=3, label=name)
    for x, text in ((0.0, "θ_init"), (1.0, "θ_final")):
        ax.axvline(x, color="grey", ls=":", lw=1)
        ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=8)
    positive = [v for vs in result.loss.values() for v in vs if v is not None and v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_yscale("log")
    ax.set_xlabel("α")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9, pad=14)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def _axis_labels(result: Plane) -> tuple[str, str]:
    if result.directions == "pca" and result.explained_variance:
        ev = result.explained_variance
        return f"PC 1 ({100 * ev[0]:.1f}% of the variance)", f"PC 2 ({100 * ev[1]:.1f}%)"
    if result.directions == "hessian" and result.eigenvalues:
        return f"eigenvector 1 (λ = {result.eigenvalues[0]:.3g})", f"eigenvector 2 (λ = {result.eigenvalues[1]:.3g})"
    if result.directions == "random":
        return "random direction 1 (filter-normalized)", "random direction 2"
    return "a", "b"


def _grid(result: Plane) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray(result.alphas)
    b = np.asarray(result.betas)
    z = np.array([[np.nan if v is None else v for v in row] for row in result.loss], dtype=float)
    return a, b, z


def plane_contour(result: Plane, paths: Mapping[str, Sequence[tuple[float, float]]] | None = None,
                  title: str | None = None, labels: tuple[str, str] | None = None,
                  show_center: bool = True) -> Figure:
    """Contours of the loss on the plane, the centre marked, and the projected trajectory / paths.

    Levels are log-spaced (the loss spans decades between the basin and the
    walls). ``paths`` (name → points) defaults to the plane's own projected
    trajectory.
    """
    fig = Figure(figsize=(7.2, 5.8))
    ax = fig.subplots()
    a, b, z = _grid(result)
    finite = z[np.isfinite(z)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if lo > 0 and hi / lo > 20:
        levels = np.geomspace(lo, hi, 30)
        cs = ax.contourf(a, b, z, levels=levels, cmap=_CMAP, norm=mcolors.LogNorm(lo, hi))
    else:
        cs = ax.contourf(a, b, z, levels=30, cmap=_CMAP)
    ax.contour(a, b, z, levels=cs.levels, colors="k", linewidths=0.3, alpha=0.4)
    ticks = np.geomspace(lo, hi, 6) if lo > 0 and hi / lo > 20 else np.linspace(lo, hi, 6)
    fig.colorbar(cs, ax=ax, label="loss", ticks=ticks, format="%.3g")
    if show_center:
        ax.plot([0], [0], "*", color="white", mec="k", ms=15, label="centre θ_c")
    if paths is None and result.trajectory:
        paths = {"trajectory": result.trajectory}
    palette = colors(list(paths or {}))
    for name, pts in (paths or {}).items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", color=palette[name] if len(palette) > 1 else "red",
                ms=3, lw=1.5, label=name)
        ax.plot([pts[0][0]], [pts[0][1]], "s", color="white", mec="k", ms=7)
    xl, yl = labels or _axis_labels(result)
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    ax.set_xlim(a[0], a[-1])
    ax.set_ylim(b[0], b[-1])
    ax.legend(loc="best", fontsize=8, framealpha=0.85)
    ax.set_title(title or f"loss on a 2-D slice ({result.directions} directions; model in eval mode)", fontsize=9)
    fig.tight_layout()
    return fig


def plane_surface(result: Plane, title: str | None = None, labels: tuple[str, str] | None = None) -> Figure:
    """The loss on the plane as a 3-D surface (log₁₀ of the loss when it spans decades)."""
    fig = Figure(figsize=(7.5, 6.0))
    ax = fig.add_subplot(projection="3d")
    a, b, z = _grid(result)
    aa, bb = np.meshgrid(a, b)
    finite = z[np.isfinite(z)]
    use_log = finite.size and finite.min() > 0 and finite.max() / finite.min() > 20
    zz = np.log10(z) if use_log else z
    ax.plot_surface(aa, bb, zz, cmap=_CMAP, linewidth=0, antialiased=True, alpha=0.95)
    xl, yl = labels or _axis_labels(result)
    ax.set_xlabel(xl, fontsize=8)
    ax.set_ylabel(yl, fontsize=8)
    ax.set_zlabel("log₁₀ loss" if use_log else "loss", fontsize=8)
    ax.set_title(title or f"loss surface ({result.directions} directions)", fontsize=9)
    return fig
