"""Figures of a ``ravine compare`` run, drawn with Matplotlib's object API.

Each function takes the ``runs`` mapping of a compare result
(``{optimizer_name: {"history": ..., "summary": ..., ...}}``) and returns a
``matplotlib.figure.Figure``. Figures are built as ``Figure()`` objects (Agg
canvas), never through ``pyplot``, so no global backend state is touched and
nothing opens a window.

Example:
    >>> history = {"iteration": {"step": [1, 2], "loss": [1.0, 0.5], "loss_ema": [1.0, 0.8]},
    ...            "epoch": {"epoch": [0, 1], "val_metric": [0.1, 0.6], "lr": [0.1, 0.1]}}
    >>> fig = train_loss({"sgd": {"history": history}})
    >>> png = to_png(fig)
    >>> png[:4] == b"\\x89PNG"
    True
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

Runs = Mapping[str, Mapping[str, Any]]

_WIDTH, _HEIGHT = 8.0, 4.2


def colors(names: Sequence[str]) -> dict[str, str]:
    """One stable colour per optimizer, in the order given (tab10 cycle)."""
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render ``fig`` to PNG bytes.

    A log axis with nothing positive to show (a run that never moved, a loss of
    exactly 0) cannot be drawn; such axes fall back to a linear scale.
    """
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    except ValueError:
        for ax in fig.axes:
            ax.set_xscale("linear")
            ax.set_yscale("linear")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _finite_pairs(xs: Sequence[Any], ys: Sequence[Any], positive: bool = False) -> tuple[list, list]:
    keep = [(x, y) for x, y in zip(xs, ys, strict=False)
            if y is not None and math.isfinite(y) and (y > 0 or not positive)]
    return [x for x, _ in keep], [y for _, y in keep]


def _ema(values: Sequence[float], smoothing: float = 0.9) -> list[float]:
    # Debiased exponential moving average, used only when the history has no loss_ema.
    out, avg = [], 0.0
    for t, v in enumerate(values, start=1):
        avg = smoothing * avg + (1 - smoothing) * v
        out.append(avg / (1 - smoothing ** t))
    return out


def _label(name: str, run: Mapping[str, Any]) -> str:
    diverged = run.get("history", {}).get("status") == "diverged"
    return f"{name} (diverged)" if diverged else name


def _mark_divergence(ax: Any, xs: list, ys: list, run: Mapping[str, Any], color: str) -> None:
    if run.get("history", {}).get("status") == "diverged" and xs:
        ax.plot([xs[-1]], [ys[-1]], marker="x", color=color, markersize=10, mew=2.5)


def _frame(title: str, xlabel: str, ylabel: str, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(_WIDTH * (1 if ncols == 1 else 1.25), _HEIGHT))
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(title)
    return fig, axes


def train_loss(runs: Runs) -> Figure:
    """Training loss per iteration: raw (faint) and EMA-smoothed (solid), log scale.

    A diverged run ends with an ✕ at its last finite loss.
    """
    fig, (ax,) = _frame("Training loss per iteration (faint: raw minibatch loss; solid: smoothed)",
                        "iteration", "training loss (log scale)")
    palette = colors(list(runs))
    for name, run in runs.items():
        it = run.get("history", {}).get("iteration", {})
        steps, loss = it.get("step", []), it.get("loss", [])
        ema = it.get("loss_ema") or _ema([v if v is not None else math.nan for v in loss])
        xs, ys = _finite_pairs(steps, loss, positive=True)
        ax.plot(xs, ys, color=palette[name], alpha=0.18, linewidth=0.8)
        xs, ys = _finite_pairs(steps, ema, positive=True)
        ax.plot(xs, ys, color=palette[name], linewidth=1.8, label=_label(name, run))
        _mark_divergence(ax, xs, ys, run, palette[name])
    ax.set_yscale("log")
    ax.legend(loc="best", fontsize=9)
    return fig


def validation(runs: Runs) -> Figure:
    """Validation loss (left, log scale) and validation metric (right) per epoch."""
    first = next(iter(runs.values()), {}).get("history", {})
    metric = first.get("metric_name", "metric")
    fig, (ax_loss, ax_metric) = _frame("Validation curves per epoch (epoch 0: before training)",
                                       "epoch", "validation loss (log scale)", ncols=2)
    ax_metric.set_ylabel(f"validation {metric}")
    palette = colors(list(runs))
    for name, run in runs.items():
        ep = run.get("history", {}).get("epoch", {})
        xs, ys = _finite_pairs(ep.get("epoch", []), ep.get("val_loss", []), positive=True)
        ax_loss.plot(xs, ys, color=palette[name], marker="o", markersize=3, label=_label(name, run))
        _mark_divergence(ax_loss, xs, ys, run, palette[name])
        xs, ys = _finite_pairs(ep.get("epoch", []), ep.get("val_metric", []))
        ax_metric.plot(xs, ys, color=palette[name], marker="o", markersize=3, label=_label(name, run))
    ax_loss.set_yscale("log")
    ax_metric.legend(loc="best", fontsize=9)
    return fig


def learning_rate(runs: Runs) -> Figure:
    """The learning rate ε per epoch (the schedule), log scale."""
    fig, (ax,) = _frame("Learning rate ε per epoch", "epoch", "learning rate (log scale)")
    palette = colors(list(runs))
    for name, run in runs.items():
        ep = run.get("history", {}).get("epoch", {})
        xs, ys = _finite_pairs(ep.get("epoch", []), ep.get("lr", []), positive=True)
        ax.plot(xs, ys, color=palette[name], marker="o", markersize=3, label=_label(name, run))
    ax.set_yscale("log")
    ax.legend(loc="best", fontsize=9)
    return fig


def effective_step(runs: Runs) -> Figure:
    """The effective learning rate, median over coordinates of |Δθ_i| / |g_i|, per iteration.

    For plain SGD it equals ε; for AdaGrad it is the median of ε / (δ + √r_i),
    which only falls as the accumulated squared gradients r grow; RMSProp's
    ε / √(δ + r_i) forgets old gradients and rises again as they shrink. Both
    axes are logarithmic so the early decay is visible. Runs are read from
    ``run["effective_step"] = {"step": [...], "value": [...], "epoch_end_step": [...],
    "epoch_mean": [...]}``.
    """
    fig, (ax,) = _frame("Effective learning rate: median |Δθᵢ| / |gᵢ| (faint: per iteration; dots: epoch mean)",
                        "iteration (log scale)", "effective learning rate (log scale)")
    palette = colors(list(runs))
    for name, run in runs.items():
        eff = run.get("effective_step") or {}
        xs, ys = _finite_pairs(eff.get("step", []), eff.get("value", []), positive=True)
        ax.plot(xs, ys, color=palette[name], alpha=0.35, linewidth=0.8)
        xs, ys = _finite_pairs(eff.get("epoch_end_step", []), eff.get("epoch_mean", []), positive=True)
        ax.plot(xs, ys, color=palette[name], marker="o", markersize=3, linewidth=1.8, label=_label(name, run))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(loc="best", fontsize=9)
    return fig


def time_to_target(runs: Runs, target: float | None = None, metric_name: str = "metric") -> Figure:
    """Bars: seconds (left) and epochs (right) to reach the target validation metric.

    Runs that never reached it get a hatched bar at the full budget, labelled "not reached".
    """
    title = f"Time to reach validation {metric_name} {target:g}" if target is not None else "Time to target"
    fig, (ax_time, ax_epochs) = _frame(title, "optimizer", "seconds", ncols=2)
    ax_epochs.set_ylabel("epochs")
    palette = colors(list(runs))
    names = list(runs)
    for ax, key, budget_key in ((ax_time, "time_to_target", "wall_time"),
                                (ax_epochs, "epochs_to_target", "epochs_run")):
        for i, name in enumerate(names):
            summary = runs[name].get("summary", {})
            value = summary.get(key)
            reached = value is not None
            height = value if reached else (summary.get(budget_key) or 0.0)
            ax.bar(i, height, color=palette[name], alpha=1.0 if reached else 0.25,
                   hatch=None if reached else "//", edgecolor=palette[name])
            diverged = runs[name].get("history", {}).get("status") == "diverged"
            text = f"{value:.3g}" if reached else ("diverged" if diverged else "not reached")
            ax.annotate(text, (i, height), ha="center", va="bottom", fontsize=8,
                        xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right")
        ax.set_xlabel("")
    return fig


def all_figures(results: Mapping[str, Any]) -> dict[str, Figure]:
    """Every figure of a compare result, by file stem (``train_loss``, ``validation``, ...)."""
    runs = results.get("runs", {})
    figs = {
        "train_loss": train_loss(runs),
        "validation": validation(runs),
        "learning_rate": learning_rate(runs),
        "time_to_target": time_to_target(runs, results.get("target"), results.get("metric_name", "metric")),
    }
    if any((run.get("effective_step") or {}).get("value") for run in runs.values()):
        figs["effective_step"] = effective_step(runs)
    return figs
