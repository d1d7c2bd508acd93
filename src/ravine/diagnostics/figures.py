"""Figures of ``ravine diagnose``, as Matplotlib ``Figure`` objects (no pyplot global state).

Each function takes the plain dict that :func:`ravine.diagnostics.run.diagnose`
returns (or a part of it) and returns a ``matplotlib.figure.Figure``.

Example:
    >>> fig = variance_vs_batch({"start": {"batch_sizes": [2, 4], "variance": [2.0, 1.0],
    ...                                   "predicted": [2.0, 1.0], "b_simple": 3.0, "slope": -1.0}})
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf"]
_STYLES = ["-", "--", "-.", ":"]


def _color(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _positive(xs: Sequence[Any], ys: Sequence[Any]) -> tuple[list, list]:
    keep = [(x, y) for x, y in zip(xs, ys, strict=False) if y is not None and math.isfinite(y) and y > 0]
    return [x for x, _ in keep], [y for _, y in keep]


def activation_histograms(instruments: Mapping[str, Any]) -> Figure:
    """Glorot & Bengio's figure: the distribution of each activation layer's outputs, start vs end.

    The probe batch's histogram per layer, normalized to a density; dashed at
    initialization, solid after training.
    """
    probes = [("start", instruments.get("probe_start") or [], "--"), ("end", instruments.get("probe_end") or [], "-")]
    n = max(len(probes[0][1]), len(probes[1][1]), 1)
    fig = Figure(figsize=(3.2 * min(n, 4), 3.0 * math.ceil(n / 4)))
    for i in range(n):
        ax = fig.add_subplot(math.ceil(n / 4), min(n, 4), i + 1)
        for label, stats, style in probes:
            if i >= len(stats):
                continue
            s = stats[i]
            lo, hi = s["range"]
            bins = len(s["hist"])
            width = (hi - lo) / bins
            total = sum(s["hist"]) * width or 1.0
            centers = [lo + (k + 0.5) * width for k in range(bins)]
            ax.plot(centers, [h / total for h in s["hist"]], style, drawstyle="steps-mid", color=_color(i),
                    label=f"{label}: std {s['std']:.3g}")
            ax.set_title(f"layer {i + 1} ({s['kind']})", fontsize=9)
        ax.set_xlabel("activation value", fontsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle("Activation histograms by layer (dashed: initialization, solid: after training)", fontsize=10)
    fig.tight_layout()
    return fig


def gradient_norms(instruments: Mapping[str, Any]) -> Figure:
    """Per-layer gradient norm ‖∇W‖ and update-to-weight ratio ‖ΔW‖/‖W‖ over iterations (log scale)."""
    fig = Figure(figsize=(10.0, 3.8))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    steps = instruments["steps"]
    for i, p in enumerate(instruments["params"]):
        style = _STYLES[(i // len(_PALETTE)) % len(_STYLES)]
        xs, ys = _positive(steps, p["grad_norm"])
        ax1.plot(xs, ys, style, color=_color(i), label=f"layer {p['layer']}")
        xs, ys = _positive(steps, p["update_ratio"])
        ax2.plot(xs, ys, style, color=_color(i), label=f"layer {p['layer']}")
    for ax, title in ((ax1, "gradient norm ‖∇W‖"), (ax2, "update / weight ‖ΔW‖/‖W‖")):
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def unit_health(instruments: Mapping[str, Any]) -> Figure:
    """Dead (ReLU family) and saturated (sigmoid / tanh) fractions per layer over iterations."""
    fig = Figure(figsize=(8.0, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    steps = instruments["steps"]
    drawn = False
    for i, layer in enumerate(instruments["layers"]):
        if layer["dead"]:
            ax.plot(steps[:len(layer["dead"])], layer["dead"], "-", color=_color(i),
                    label=f"dead · layer {i + 1} ({layer['kind']})")
            drawn = True
        if layer["kind"] in ("sigmoid", "tanh") and layer["saturated"]:
            ax.plot(steps[:len(layer["saturated"])], layer["saturated"], "--", color=_color(i),
                    label=f"saturated · layer {i + 1} ({layer['kind']})")
            drawn = True
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("iteration")
    ax.set_ylabel("fraction of units")
    ax.set_title("Dead units (solid) and saturated outputs (dashed)", fontsize=10)
    if drawn:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no ReLU, sigmoid or tanh layers", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def variance_vs_batch(noise: Mapping[str, Any]) -> Figure:
    """Measured variance of the minibatch gradient E‖g_S − G‖² against S (log-log), with tr(Σ)/S."""
    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    for i, (label, res) in enumerate((k, v) for k, v in noise.items() if v):
        xs, ys = _positive(res["batch_sizes"], res["variance"])
        ax.plot(xs, ys, "o", color=_color(i), label=f"{label}: measured (slope {res['slope']:.2f})")
        xs, ys = _positive(res["batch_sizes"], res["predicted"])
        ax.plot(xs, ys, "-", color=_color(i), alpha=0.6,
                label=f"{label}: tr(Σ)/S·(N−S)/N, B_simple ≈ {res['b_simple']:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    sizes = sorted({s for res in noise.values() if res for s in res["batch_sizes"]})
    if sizes:
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.xaxis.set_minor_formatter("")
    ax.set_xlabel("batch size S")
    ax.set_ylabel("E‖g_S − G‖²")
    ax.set_title("Gradient noise: Var ∝ 1/S", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def inits_std_by_depth(compare: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Activation std by depth for each initialization, at initialization and after training."""
    fig = Figure(figsize=(10.0, 3.8))
    axes = [fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)]
    for i, (name, run) in enumerate(compare.items()):
        for ax, key in zip(axes, ("std_start", "std_end"), strict=True):
            xs, ys = _positive(list(range(1, len(run[key]) + 1)), run[key])
            ax.plot(xs, ys, "o" + _STYLES[i % len(_STYLES)], color=_color(i), label=name)
    for ax, title in zip(axes, ("at initialization", "after training"), strict=True):
        ax.set_yscale("log")
        ax.set_xlabel("activation layer (depth)")
        ax.set_ylabel("activation std")
        ax.set_title(f"Activation std by depth, {title}", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def learning_curves(history: Mapping[str, Any]) -> Figure:
    """Train and validation loss per epoch on one axis (log scale), so the gap is visible."""
    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    ep = history["epoch"]
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        xs, ys = _positive(ep["epoch"], ep[key])
        ax.plot(xs, ys, style, marker=".", label=key.replace("_", " "))
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Learning curves", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
