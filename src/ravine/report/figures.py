"""Figures of a ``ravine compare`` (or ``ravine train``) run, drawn with Matplotlib's object API.

Each function takes the ``runs`` of a :class:`ravine.train.results.CompareResult`
(``{optimizer_name: RunResult}``) and returns a ``matplotlib.figure.Figure``.
Figures are built as ``Figure()`` objects (Agg canvas), never through
``pyplot``, so no global backend state is touched and nothing opens a window.

Runs are told apart by colour *and* line style (and marker), so curves that
lie on top of each other, or a print in grey, stay distinguishable.

Example:
    >>> from ravine.train.results import History, RunResult
    >>> from ravine.train.spec import RunSpec
    >>> h = History("accuracy", True)
    >>> for s in (1, 2):
    ...     h.iterations.append(step=s, epoch=s / 2, loss=1.0 / s, loss_ema=1.0 / s, lr=0.1, momentum=None,
    ...                         grad_evals=s / 2, time=0.1 * s)
    >>> run = RunResult("sgd", RunSpec("toy", "sgd", 0.1, 8, 16, 1), h)
    >>> to_png(train_loss({"sgd": run}))[:4] == b"\\x89PNG"
    True
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from ravine.train.results import CompareResult, RunResult

Runs = Mapping[str, RunResult]

_WIDTH, _HEIGHT = 8.0, 4.2
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf"]
_LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1))]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]


def colors(names: Sequence[str]) -> dict[str, str]:
    """One stable colour per optimizer, in the order given (tab10 cycle)."""
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}


def styles(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Matplotlib keyword arguments per optimizer: colour, line style and marker all differ between runs.

    Example:
        >>> s = styles(["sgd", "adam"])
        >>> s["sgd"]["linestyle"] != s["adam"]["linestyle"]
        True
    """
    return {name: {"color": _PALETTE[i % len(_PALETTE)], "linestyle": _LINESTYLES[i % len(_LINESTYLES)],
                   "marker": _MARKERS[i % len(_MARKERS)]} for i, name in enumerate(names)}


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
            if x is not None and y is not None and math.isfinite(x) and math.isfinite(y) and (y > 0 or not positive)]
    return [x for x, _ in keep], [y for _, y in keep]


def _label(name: str, run: RunResult) -> str:
    status = run.history.status
    return f"{name} ({status})" if status != "ok" else name


def _mark_divergence(ax: Any, xs: list, ys: list, run: RunResult, color: str) -> None:
    if run.history.status == "diverged" and xs:
        ax.plot([xs[-1]], [ys[-1]], marker="x", color=color, markersize=10, mew=2.5, linestyle="none")


def _frame(title: str, xlabel: str, ylabel: str, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(_WIDTH * (1 if ncols == 1 else 1.25), _HEIGHT))
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(title)
    return fig, axes


def zoom(ax: Any, values: Sequence[float], bounds: tuple[float, float] | None = None, pad: float = 0.08) -> None:
    """Fit the y axis to ``values`` (finite ones), padded, clipped to ``bounds`` (e.g. (0, 1) for accuracy).

    An accuracy that lives between 0.93 and 0.98 is drawn on that range, not on 0 … 1.

    Example:
        >>> fig = Figure(); ax = fig.add_subplot()
        >>> zoom(ax, [0.93, 0.98], (0.0, 1.0)); [round(float(v), 3) for v in ax.get_ylim()]
        [0.926, 0.984]
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return
    lo, hi = min(finite), max(finite)
    margin = max((hi - lo) * pad, 1e-3 * max(abs(hi), 1e-12))
    lo, hi = lo - margin, hi + margin
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    if hi > lo:
        ax.set_ylim(lo, hi)


def _metric_bounds(metric: str) -> tuple[float, float] | None:
    return (0.0, 1.0) if metric == "accuracy" else None


def _trained(xs: Sequence[Any], ys: Sequence[Any]) -> list[float]:
    """The values after epoch 0 (the untrained model would stretch a zoomed axis); all of them if only one."""
    vals = [y for x, y in zip(xs, ys, strict=False) if x]
    return vals or list(ys)


def train_loss(runs: Runs) -> Figure:
    """Training loss by iteration (left) and by gradient evaluations (right), raw (faint) and smoothed, log scale.

    The right panel's x axis is the cumulative number of gradient evaluations in
    units of the whole training set (``iterations.grad_evals``), so a full-batch
    step (one whole-set gradient) is not drawn next to a minibatch step as if
    they cost the same. A diverged run ends with an ✕ at its last finite loss.
    """
    fig, (ax_it, ax_ge) = _frame("Training loss (faint: raw minibatch loss; lines: smoothed)",
                                 "iteration", "training loss (log scale)", ncols=2)
    ax_ge.set_xlabel("gradient evaluations (whole training sets)")
    look = styles(list(runs))
    for name, run in runs.items():
        it = run.history.iterations
        st = {k: v for k, v in look[name].items() if k != "marker"}
        for ax, xs_all in ((ax_it, it.step), (ax_ge, it.grad_evals)):
            xs, ys = _finite_pairs(xs_all, it.loss, positive=True)
            ax.plot(xs, ys, color=st["color"], alpha=0.15, linewidth=0.8)
            xs, ys = _finite_pairs(xs_all, it.loss_ema, positive=True)
            ax.plot(xs, ys, linewidth=1.8, label=_label(name, run), **st)
            _mark_divergence(ax, xs, ys, run, st["color"])
    for ax in (ax_it, ax_ge):
        ax.set_yscale("log")
    ax_ge.legend(loc="best", fontsize=8)
    return fig


def validation(runs: Runs) -> Figure:
    """Validation loss (left, log scale) and validation metric (right, zoomed to the data) per epoch."""
    first = next(iter(runs.values()), None)
    metric = first.history.metric_name if first is not None else "metric"
    fig, (ax_loss, ax_metric) = _frame("Validation curves per epoch (epoch 0: before training)",
                                       "epoch", "validation loss (log scale)", ncols=2)
    ax_metric.set_ylabel(f"validation {metric} (axis zoomed to the trained epochs)")
    look = styles(list(runs))
    shown: list[float] = []
    for name, run in runs.items():
        ep = run.history.epochs
        xs, ys = _finite_pairs(ep.epoch, ep.val_loss, positive=True)
        ax_loss.plot(xs, ys, markersize=3, label=_label(name, run), **look[name])
        _mark_divergence(ax_loss, xs, ys, run, look[name]["color"])
        xs, ys = _finite_pairs(ep.epoch, ep.val_metric)
        ax_metric.plot(xs, ys, markersize=3, label=_label(name, run), **look[name])
        shown += _trained(xs, ys)
    zoom(ax_metric, shown, _metric_bounds(metric))
    ax_loss.set_yscale("log")
    ax_metric.legend(loc="best", fontsize=8)
    return fig


def learning_curves(runs: Runs) -> Figure:
    """One column per run: training (solid) and validation (dashed) loss on top, metric below.

    Train and validation on the same axes make the generalization gap visible
    (the course's variance = validation error − training error); the metric
    axis is zoomed to the trained epochs.
    """
    names = list(runs) or ["—"]
    n = len(names)
    fig = Figure(figsize=(max(_WIDTH, 2.9 * n), 5.6))
    first = next(iter(runs.values()), None)
    metric = first.history.metric_name if first is not None else "metric"
    look = styles(names)
    for i, name in enumerate(names):
        ax_loss = fig.add_subplot(2, n, i + 1)
        ax_metric = fig.add_subplot(2, n, n + i + 1, sharex=ax_loss)
        ax_loss.set_title(name if name not in runs else _label(name, runs[name]), fontsize=10)
        ax_metric.set_xlabel("epoch")
        if i == 0:
            ax_loss.set_ylabel("loss (log scale)")
            ax_metric.set_ylabel(metric)
        for ax in (ax_loss, ax_metric):
            ax.grid(True, alpha=0.3)
        if name not in runs:
            continue
        ep, color = runs[name].history.epochs, look[name]["color"]
        for ys, style, label in ((ep.train_loss, "-", "train"), (ep.val_loss, "--", "validation")):
            xs, vals = _finite_pairs(ep.epoch, ys, positive=True)
            ax_loss.plot(xs, vals, color=color, linestyle=style, label=label)
        shown: list[float] = []
        for ys, style, label in ((ep.train_metric, "-", "train"), (ep.val_metric, "--", "validation")):
            xs, vals = _finite_pairs(ep.epoch, ys)
            ax_metric.plot(xs, vals, color=color, linestyle=style, label=label)
            shown += _trained(xs, vals)
        zoom(ax_metric, shown, _metric_bounds(metric))
        if any(v > 0 for v in ep.train_loss + ep.val_loss if v is not None and math.isfinite(v)):
            ax_loss.set_yscale("log")
        if i == 0:
            ax_loss.legend(loc="best", fontsize=8)
    fig.suptitle("Training (solid) and validation (dashed) per run: the gap between them is the generalization gap")
    return fig


def learning_rate(runs: Runs) -> Figure:
    """The learning rate ε per epoch (the schedule), log scale."""
    fig, (ax,) = _frame("Learning rate ε per epoch", "epoch", "learning rate (log scale)")
    look = styles(list(runs))
    for name, run in runs.items():
        ep = run.history.epochs
        xs, ys = _finite_pairs(ep.epoch, ep.lr, positive=True)
        ax.plot(xs, ys, markersize=3, label=_label(name, run), **look[name])
    ax.set_yscale("log")
    ax.legend(loc="best", fontsize=8)
    return fig


def effective_step(runs: Runs) -> Figure:
    """The effective learning rate, median over coordinates of |Δθ_i| / |g_i|, per iteration.

    For plain SGD it equals ε; for AdaGrad it is the median of ε / (δ + √r_i),
    which only falls as the accumulated squared gradients r grow; RMSProp's
    ε / √(δ + r_i) forgets old gradients and rises again as they shrink. Both
    axes are logarithmic so the early decay is visible. Runs are read from
    ``run.extras["effective_step"] = {"step", "value", "epoch_end_step", "epoch_mean"}``.
    """
    fig, (ax,) = _frame("Effective learning rate: median |Δθᵢ| / |gᵢ| (faint: per iteration; marks: epoch mean)",
                        "iteration (log scale)", "effective learning rate (log scale)")
    look = styles(list(runs))
    for name, run in runs.items():
        eff = run.effective_step
        xs, ys = _finite_pairs(eff.get("step", []), eff.get("value", []), positive=True)
        ax.plot(xs, ys, color=look[name]["color"], alpha=0.35, linewidth=0.8)
        xs, ys = _finite_pairs(eff.get("epoch_end_step", []), eff.get("epoch_mean", []), positive=True)
        ax.plot(xs, ys, markersize=3, linewidth=1.8, label=_label(name, run), **look[name])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(loc="best", fontsize=8)
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
            summary = runs[name].summary
            value = getattr(summary, key)
            reached = value is not None
            budget = getattr(summary, budget_key)
            height = value if reached else (budget if budget is not None and math.isfinite(budget) else 0.0)
            ax.bar(i, height, color=palette[name], alpha=1.0 if reached else 0.25,
                   hatch=None if reached else "//", edgecolor=palette[name])
            status = runs[name].history.status
            text = f"{value:.3g}" if reached else (status if status != "ok" else "not reached")
            ax.annotate(text, (i, height), ha="center", va="bottom", fontsize=8,
                        xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right")
        ax.set_xlabel("")
    return fig


def all_figures(results: CompareResult) -> dict[str, Figure]:
    """Every figure of a compare result, by file stem (``train_loss``, ``learning_curves``, ...)."""
    runs = results.runs
    figs = {
        "train_loss": train_loss(runs),
        "learning_curves": learning_curves(runs),
        "validation": validation(runs),
        "learning_rate": learning_rate(runs),
        "time_to_target": time_to_target(runs, results.target, results.metric_name),
    }
    if any(run.effective_step.get("value") for run in runs.values()):
        figs["effective_step"] = effective_step(runs)
    return figs
