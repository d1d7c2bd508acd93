"""Figures and the self-contained HTML report of ``ravine tune`` (Matplotlib ``Figure`` objects, no pyplot).

- **loss vs lr**: the range test's debiased-EMA loss per seed (thin) and their
  median (thick) against the learning rate on a log axis, the suggestion
  marked; for a search, each trial's smoothed training loss against the lr it
  ran with.
- **lr sensitivity**: the final validation metric against the learning rate
  (one point per trial and fold, the fold mean joined), as DeepOBS draws it.
- **parallel coordinates**: one vertical axis per searched parameter (log
  scaled where the values span more than a decade) and the score; one line per
  trial, coloured by score.

Example:
    >>> fig = sensitivity({"trials": [{"config": {"lr": 0.1}, "score": 0.9, "folds": [{"val_metric": 0.9}]}],
    ...                    "metric_name": "accuracy"})
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import cm
from matplotlib.figure import Figure

from ravine.report.figures import to_png
from ravine.utils import atomic_write_bytes


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def loss_vs_lr(result: Mapping[str, Any]) -> Figure | None:
    """The range test's curves (or the trials' loss curves) with the suggestion marked."""
    fig = Figure(figsize=(8.0, 4.2))
    ax = fig.add_subplot()
    rt = result.get("range_test")
    if rt:
        lrs = rt["lr"]
        for seed, curve in zip(rt["seeds"], rt["smoothed"], strict=True):
            ax.plot(lrs[:len(curve)], curve, lw=0.8, alpha=0.5, label=f"seed {seed}")
        ax.plot(lrs[:len(rt["median"])], rt["median"], lw=2.2, color="black", label="median over seeds")
        if _finite(rt["suggestion"]):
            ax.axvline(rt["suggestion"], color="tab:red", ls="--", label=f"suggestion {rt['suggestion']:.3g}")
        if _finite(rt["lr_at_min"]):
            ax.axvline(rt["lr_at_min"], color="tab:gray", ls=":", label=f"minimum at {rt['lr_at_min']:.3g}")
        finite = [v for v in rt["median"] if _finite(v)]
        if finite:
            ax.set_ylim(min(finite) * 0.9, min(max(finite), 4 * min(finite)) * 1.1)
        ax.set_title("LR range test: smoothed loss vs learning rate")
    else:
        drew = False
        for t in result.get("trials", []):
            for fold in t.get("folds", [])[:1]:
                curve = fold.get("loss_curve") or {}
                ys = [y for y in curve.get("loss_ema", []) if _finite(y)]
                if ys:
                    ax.scatter([t["config"].get("lr", math.nan)], [ys[-1]], s=14, color="tab:blue")
                    drew = True
        if not drew:
            return None
        ax.set_title("final smoothed training loss vs learning rate (first fold)")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate ε")
    ax.set_ylabel("training loss")
    if rt:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def sensitivity(result: Mapping[str, Any]) -> Figure | None:
    """Final validation metric vs learning rate: one dot per trial and fold, the fold means joined."""
    pts = [(t["config"]["lr"], t) for t in result.get("trials", []) if _finite(t.get("config", {}).get("lr"))]
    if not pts:
        return None
    fig = Figure(figsize=(8.0, 4.2))
    ax = fig.add_subplot()
    for lr, t in pts:
        vals = [f.get("val_metric") for f in t.get("folds", []) if _finite(f.get("val_metric"))]
        ax.scatter([lr] * len(vals), vals, s=10, alpha=0.4, color="tab:blue")
    # one point per lr: the best fold-mean score among the trials at that lr (other parameters vary)
    pick = max if result.get("higher_is_better", True) else min
    by_lr: dict[float, float] = {}
    for lr, t in pts:
        if _finite(t.get("score")):
            by_lr[lr] = pick(by_lr.get(lr, t["score"]), t["score"])
    means = sorted(by_lr.items())
    if means:
        ax.plot([m[0] for m in means], [m[1] for m in means], "-o", ms=3, color="tab:orange",
                label="mean over folds (best at each lr)")
        ax.legend(fontsize=8)
    best = result.get("best")
    if best and _finite(best.get("config", {}).get("lr")):
        ax.axvline(best["config"]["lr"], color="tab:red", ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate ε")
    ax.set_ylabel(f"final validation {result.get('metric_name', 'metric')}")
    ax.set_title("learning-rate sensitivity (diverged trials not drawn)")
    ax.grid(alpha=0.3)
    return fig


def parallel_coordinates(result: Mapping[str, Any]) -> Figure | None:
    """One axis per numeric searched parameter plus the score; one line per trial, coloured by score."""
    trials = [t for t in result.get("trials", []) if _finite(t.get("score"))]
    names = sorted({k for t in trials for k, v in t["config"].items() if _finite(v) and not isinstance(v, bool)})
    names = [n for n in names if len({t["config"].get(n) for t in trials}) > 1]
    if len(names) < 2 or len(trials) < 2:
        return None
    cols = names + ["score"]
    data = np.array([[t["config"].get(n, math.nan) for n in names] + [t["score"]] for t in trials], dtype=float)
    scaled = np.zeros_like(data)
    labels = []
    for j, name in enumerate(cols):
        col = data[:, j]
        lo, hi = np.nanmin(col), np.nanmax(col)
        log = name != "score" and lo > 0 and hi / lo > 10
        c = np.log10(col) if log else col
        lo_c, hi_c = (np.log10(lo), np.log10(hi)) if log else (lo, hi)
        scaled[:, j] = (c - lo_c) / (hi_c - lo_c) if hi_c > lo_c else 0.5
        labels.append(f"{name}{' (log)' if log else ''}\n{lo:.3g} … {hi:.3g}")
    fig = Figure(figsize=(max(6.0, 1.8 * len(cols)), 4.2))
    ax = fig.add_subplot()
    score = scaled[:, -1]
    if not result.get("higher_is_better", True):
        score = 1 - score
    cmap = cm.get_cmap("viridis") if hasattr(cm, "get_cmap") else __import__("matplotlib").colormaps["viridis"]
    for row, s in sorted(zip(scaled, score, strict=True), key=lambda p: p[1]):
        ax.plot(range(len(cols)), row, color=cmap(float(s)), alpha=0.7, lw=1.2)
    ax.set_xticks(range(len(cols)), labels, fontsize=8)
    ax.set_yticks([])
    for j in range(len(cols)):
        ax.axvline(j, color="black", lw=0.6)
    ax.set_title("parallel coordinates (yellow: best scores)")
    return fig


def figures(result: Mapping[str, Any]) -> dict[str, Figure]:
    """Every figure that has data: ``loss_vs_lr``, ``sensitivity``, ``parallel``."""
    out = {}
    for stem, fn in (("loss_vs_lr", loss_vs_lr), ("sensitivity", sensitivity), ("parallel", parallel_coordinates)):
        fig = fn(result)
        if fig is not None:
            out[stem] = fig
    return out


_CAPTIONS = {
    "loss_vs_lr": "Loss against learning rate. Range test: the debiased moving average of the minibatch loss per "
                  "seed and their median; the dashed line is the suggestion (the rate at the median's minimum, "
                  "divided by 10).",
    "sensitivity": "Final validation metric against the learning rate: dots are folds, the line their mean (the best "
                   "trial at each rate when other parameters vary too). A flat "
                   "top means the result is robust to the rate; a sharp peak means tuning it matters.",
    "parallel": "Parallel coordinates: each line is a trial through its values of every searched parameter and its "
                "score (yellow = best). Lines of good trials that bunch on an axis show which values matter.",
}


def write_report(out_dir: str | Path, result: Mapping[str, Any]) -> Path:
    """Write ``report.html`` (figures embedded as PNG) and ``figures/*.png``; returns the report's path."""
    out = Path(out_dir)
    pngs = {stem: to_png(fig) for stem, fig in figures(result).items()}
    for stem, png in pngs.items():
        atomic_write_bytes(out / "figures" / f"{stem}.png", png)
    rows = []
    for t in sorted(result.get("trials", []), key=lambda t: t.get("number", 0))[:200]:
        cfg = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["config"].items())
        score = t.get("score")
        rows.append(f"<tr><td>{t.get('number')}</td><td>{html.escape(t.get('stage', ''))}</td>"
                    f"<td style='text-align:left'>{html.escape(cfg)}</td>"
                    f"<td>{score:.4g}</td>" if _finite(score) else
                    f"<tr><td>{t.get('number')}</td><td>{html.escape(t.get('stage', ''))}</td>"
                    f"<td style='text-align:left'>{html.escape(cfg)}</td><td>—</td>")
        rows[-1] += f"<td>{html.escape(t.get('status', ''))}</td><td>{t.get('time', 0):.2f}</td></tr>"
    best = result.get("best")
    summary = ""
    if best:
        summary += f"<p><b>best:</b> {html.escape(str(best.get('config')))} — score {best.get('score')}</p>"
    rt = result.get("range_test")
    if rt:
        summary += (f"<p><b>range-test suggestion:</b> ε = {rt['suggestion']:.4g} "
                    f"({html.escape(rt['rule'])})</p>")
        edge = rt.get("at_edge")
        if edge:
            where, fix = (("start", "a smaller lr_min (--lr-min)") if edge == "low"
                          else ("end", "a larger lr_max (--lr-max)"))
            summary += (f"<p><b>unreliable:</b> the minimum of the smoothed loss lies at the {where} of the swept "
                        f"range ({rt['settings']['lr_min']:.3g} … {rt['settings']['lr_max']:.3g}), so the "
                        f"suggestion has nothing to stand on; widen the range with {html.escape(fix)}.</p>")
    rr = result.get("rerun")
    if rr:
        summary += (f"<p><b>rerun over {rr['seeds']} seeds:</b> validation median {rr['val']['median']:.4g} "
                    f"(IQR {rr['val']['iqr']:.3g}), test median {rr['test']['median']:.4g} "
                    f"(IQR {rr['test']['iqr']:.3g})</p>")
        if rr.get("same_start"):
            summary += ("<p>Note: the seeds all start from the same weights (this problem initializes them to "
                        "zeros), so the reruns repeat one run and their spread is 0 by construction.</p>")
    figs = "".join(f"<figure><img src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
                   f"<figcaption>{html.escape(_CAPTIONS[stem])}</figcaption></figure>" for stem, png in pngs.items())
    title = f"ravine tune · {result.get('problem')} · {result.get('optimizer')} · {result.get('method')}"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
            "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 7px;"
            "text-align:right}figure img{max-width:100%}figcaption{color:#444;font-size:0.92em}</style></head>"
            f"<body><h1>{html.escape(title)}</h1><p>metric: {html.escape(str(result.get('metric_name')))}, "
            f"folds: {result.get('folds') or 1}, the test split was not used by the search.</p>{summary}"
            f"<h2>Figures</h2>{figs}<h2>Trials</h2><table><tr><th>#</th><th>stage</th><th>config</th>"
            f"<th>score</th><th>status</th><th>seconds</th></tr>{''.join(rows)}</table></body></html>")
    path = out / "report.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
