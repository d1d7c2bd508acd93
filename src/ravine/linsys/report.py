"""Figures and the HTML report of ``ravine linsys``, from the plain dicts of :mod:`ravine.linsys.study`.

Figures are Matplotlib ``Figure`` objects (Agg canvas, no pyplot state); the report is one HTML file
with the figures embedded as base64 PNG.

Example:
    >>> from ravine.linsys.systems import spd
    >>> from ravine.linsys.study import compare
    >>> fig = residual_figure(compare(spd(30, 10.0), ["cg", "gd"]))
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ravine.utils import atomic_write_bytes

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf", "#393b79", "#637939"]


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def residual_figure(result: Mapping[str, Any]) -> Figure:
    """Relative residual against iteration (log y) per iterative method; dashed: r₀ ρᵏ, the theoretical rate."""
    fig = Figure(figsize=(8.5, 4.8))
    ax = fig.add_subplot()
    tol = result["tol"]
    for i, (name, row) in enumerate(result["methods"].items()):
        if row.get("kind") != "iterative" or "residuals" not in row:
            continue
        color = _PALETTE[i % len(_PALETTE)]
        ys = [max(v, 1e-300) for v in row["residuals"] if v is not None and math.isfinite(v)]
        ax.plot(range(len(ys)), ys, color=color, lw=1.6, label=f"{name} ({row['status']})")
        rate = row.get("rate")
        if rate is not None and rate > 0 and ys:  # ρ ≥ 1 is drawn too: the line that diverges
            k = range(len(ys))
            ax.plot(k, [ys[0] * rate**j for j in k], color=color, ls="--", lw=1,
                    label=f"{name} theory ρ = {rate:.6g}")
    ax.axhline(tol, color="k", lw=0.8, ls=":", label=f"tolerance {tol:g}")
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, tol * 1e-3), min(high, 1e4))  # a diverging method would flatten the others
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(left=0)
    ax.set_xlabel("iteration")
    ax.set_ylabel("‖b − A x_k‖ / ‖b‖")
    ax.set_title(f"{result['system']['name']}: residual vs iteration (κ = {result['system']['kappa']:.3g})")
    ax.legend(fontsize=7, ncol=2, loc="best")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def sweep_figure(sweep: Mapping[str, Any]) -> Figure:
    """Iterations to the tolerance against κ on log-log axes, with the fitted slope of each method."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    kappas = sweep["kappas"]
    for i, (name, its) in enumerate(sweep["iterations"].items()):
        color = _PALETTE[i % len(_PALETTE)]
        pts = [(k, n) for k, n in zip(kappas, its, strict=True) if n]
        if not pts:
            continue
        slope = sweep["slopes"].get(name)
        label = f"{name}: slope {slope:.2f}" if slope is not None and math.isfinite(slope) else name
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=color, label=label)
        pred = [(k, p) for k, p in zip(kappas, sweep["predicted"][name], strict=True) if p and math.isfinite(p)]
        if pred:
            ax.plot([p[0] for p in pred], [p[1] for p in pred], ls="--", color=color, lw=0.9,
                    label=f"{name}: ln τ / ln ρ")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("condition number κ")
    ax.set_ylabel(f"iterations to {sweep['tol']:g}")
    ax.set_title(f"κ sweep (n = {sweep['n']}, {sweep.get('spectrum', '')} spectrum)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig


_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
          "table{border-collapse:collapse;margin:1em 0;font-size:0.92em}"
          "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
          "td:first-child{text-align:left;font-weight:bold}img{max-width:100%}figcaption{color:#444}")


def _fmt(v: Any, spec: str = ".3g") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return format(v, spec) if isinstance(v, int | float) and not isinstance(v, bool) else html.escape(str(v))


def _table(result: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("method", "status", "iterations", "matvecs", "time (s)", "flops",
                                             "final residual", "rate ρ", "ln τ/ln ρ", "‖x − x*‖/‖x*‖"))
    rows = []
    for name, r in result["methods"].items():
        cells = [html.escape(name), html.escape(r["status"]), _fmt(r.get("iterations"), "d"),
                 _fmt(r.get("matvecs"), "d"), _fmt(r.get("time"), ".3g"), _fmt(r.get("flops"), ".3g"),
                 _fmt(r.get("final_residual"), ".2e"), _fmt(r.get("rate"), ".6g"),
                 _fmt(r.get("predicted_iterations"), ".0f"), _fmt(r.get("error"), ".2e")]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_report(out: str | Path, result: Mapping[str, Any], sweep: Mapping[str, Any] | None = None) -> Path:
    """Write ``out/report.html`` (and ``out/figures/*.png``); returns the report's path."""
    out = Path(out)
    figs = {"residuals": residual_figure(result)}
    if sweep is not None and sweep.get("kappas"):
        figs["kappa_sweep"] = sweep_figure(sweep)
    parts = []
    captions = {
        "residuals": "Relative residual per iteration (log scale). Dashed lines: r₀ ρᵏ with each method's "
                     "theoretical rate ρ (GD 1 − 1/κ, CG and heavy ball (√κ − 1)/(√κ + 1), Jacobi and "
                     "Gauss–Seidel the spectral radius of their iteration matrix).",
        "kappa_sweep": "Iterations to the tolerance against κ (log-log). The fitted slope is the exponent p in "
                       "iterations ∝ κᵖ: the course predicts 1 for GD and ½ for CG and heavy ball.",
    }
    for stem, fig in figs.items():
        png = to_png(fig)
        atomic_write_bytes(out / "figures" / f"{stem}.png", png)
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure><img alt="{stem}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{html.escape(captions[stem])}</figcaption></figure>")
    sysinfo = result["system"]
    sweep_html = ""
    if sweep is not None and sweep.get("kappas"):
        sweep_html = "<h2>κ sweep</h2><p>" + ", ".join(
            f"{html.escape(m)}: slope {_fmt(s, '.2f')} (course: {_fmt(sweep['expected_slopes'].get(m), '.1f')})"
            for m, s in sweep["slopes"].items()) + "</p>"
    page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ravine linsys</title>"
            f"<style>{_STYLE}</style></head><body><h1>ravine linsys</h1>"
            f"<p>{html.escape(sysinfo['name'])}: n = {sysinfo['n']}, κ = {sysinfo['kappa']:.4g}, "
            f"SPD: {sysinfo['spd']}; tolerance {result['tol']:g}. {html.escape(sysinfo['notes'])}</p>"
            f"{_table(result)}{sweep_html}{''.join(parts)}</body></html>\n")
    path = out / "report.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
