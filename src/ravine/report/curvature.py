"""Figures and the HTML page of ``ravine curvature``, from a :class:`~ravine.curvature.summary.CurvatureSummary`.

Matplotlib ``Figure`` objects only (no pyplot state), like :mod:`ravine.report.figures`.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from ravine.curvature.summary import analyze
    >>> m = nn.Linear(3, 1).double()
    >>> x = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> s = analyze(m, nn.functional.mse_loss, (x, torch.zeros(20, 1, dtype=torch.float64)), k=1,
    ...             trace_products=30, density_steps=4)
    >>> sorted(all_figures(s))
    ['density', 'eigenvalues', 'taylor']
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ravine.curvature.summary import CurvatureSummary
from ravine.report.figures import to_png
from ravine.utils import atomic_write_bytes

CAPTIONS = {
    "density": "Spectral density of the Hessian by stochastic Lanczos quadrature (Gaussian-smoothed, log "
               "scale): the fraction of eigenvalues per unit of λ. Network Hessians have a bulk near 0 and a "
               "few large outliers; red lines mark the extreme eigenvalues computed to the stated tolerance. "
               "Eigenvalues left of 0 are directions of negative curvature (a saddle, if the gradient is 0).",
    "eigenvalues": "The largest and smallest eigenvalues of the Hessian, one dot each (certified error bars are "
                   "smaller than the dots). Their ratio λ_max/λ_min is the condition number κ when all are "
                   "positive: the elongation of the loss contours, the ravine whose walls gradient descent "
                   "bounces between.",
    "taylor": "The course's Taylor picture of one gradient step: the true loss J(θ − εg) (solid) and its "
              "second-order prediction J − ε gᵀg + ½ ε² gᵀHg (dashed). The prediction's minimum is at "
              "ε* = gᵀg / gᵀHg; gradient descent diverges along the top eigenvector for ε > 2/λ_max.",
}


def density(summary: CurvatureSummary) -> Figure:
    """The SLQ spectral density on a log scale, with λ_min and λ_max marked."""
    fig = Figure(figsize=(8.0, 4.2))
    ax = fig.add_subplot()
    d = summary.density
    floor = max(float(d.density.max()) * 1e-7, 1e-300)
    ax.semilogy(d.grid.tolist(), d.density.clamp_min(floor).tolist(), color="#1f77b4")
    ax.set_ylim(bottom=floor * 10)
    for value in (summary.eigen.lambda_max, summary.eigen.lambda_min):
        ax.axvline(value, color="#d62728", lw=0.8, ls="--")
    ax.axvline(0.0, color="#777", lw=0.6)
    ax.set_xlabel("eigenvalue λ")
    ax.set_ylabel("density")
    ax.set_title(f"Hessian spectral density ({d.nodes.shape[0]} probes × {d.nodes.shape[1]} Lanczos steps, "
                 f"σ = {d.sigma:.3g})")
    return fig


def extreme_eigenvalues(summary: CurvatureSummary) -> Figure:
    """The extreme eigenvalues found, as dots on a symmetric-log axis."""
    fig = Figure(figsize=(8.0, 4.2))
    ax = fig.add_subplot()
    values = summary.eigen.values.tolist()
    colors = ["#2ca02c" if v > 0 else "#d62728" for v in values]
    ranks = list(range(1, len(values) + 1))
    ax.scatter(ranks, values, c=colors, zorder=3)
    for r, v in zip(ranks, values, strict=True):
        ax.annotate(f"{v:.4g}", (r, v), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.axhline(0.0, color="#777", lw=0.6)
    ax.set_xticks(ranks)
    ax.set_xlabel("rank (largest first)")
    ax.set_ylabel("eigenvalue λ")
    kappa = summary.condition_number
    shape = {"saddle": "eigenvalues of both signs", "minimum": "all positive", "maximum": "all negative",
             "degenerate": "some ≈ 0"}[summary.critical_point.kind]
    ax.set_title(f"Extreme Hessian eigenvalues ({shape}" + (f", κ = {kappa:.3g})" if math.isfinite(kappa) else ")"))
    return fig


def taylor(summary: CurvatureSummary) -> Figure:
    """True vs predicted loss along −g, with ε* and 2/λ_max marked."""
    fig = Figure(figsize=(8.0, 4.2))
    ax = fig.add_subplot()
    t = summary.taylor
    ax.plot(t.eps, t.actual, color="#1f77b4", label="true J(θ − εg)")
    ax.plot(t.eps, t.predicted, color="#ff7f0e", ls="--", label="Taylor: J − ε gᵀg + ½ε² gᵀHg")
    lo, hi = min(t.eps), max(t.eps)
    if math.isfinite(t.eps_star) and lo <= t.eps_star <= hi:
        ax.axvline(t.eps_star, color="#2ca02c", lw=0.9, label=f"ε* = gᵀg/gᵀHg = {t.eps_star:.3g}")
    if t.lr_max is not None and math.isfinite(t.lr_max) and lo <= t.lr_max <= hi:
        ax.axvline(t.lr_max, color="#d62728", lw=0.9, ls=":", label=f"2/λ_max = {t.lr_max:.3g}")
    finite = [v for v in t.actual + t.predicted if math.isfinite(v)]
    if finite:
        span = max(finite) - min(finite)
        top = min(max(finite), t.loss + 2 * max(span, 1e-12))
        ax.set_ylim(min(finite) - 0.05 * span, top + 0.05 * span)
    ax.set_xlabel("step size ε")
    ax.set_ylabel("loss")
    ax.set_title("One gradient step: predicted vs true loss")
    ax.legend(fontsize=8)
    return fig


def all_figures(summary: CurvatureSummary) -> dict[str, Figure]:
    """Every figure of the page, by file stem."""
    return {"density": density(summary), "eigenvalues": extreme_eigenvalues(summary), "taylor": taylor(summary)}


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "∞" if math.isinf(value) else f"{value:.6g}"
    return html.escape(str(value))


def render_html(summary: CurvatureSummary, pngs: dict[str, bytes], title: str) -> str:
    """A self-contained page: the numbers and the figures (base64 PNG)."""
    e, t, p = summary.eigen, summary.taylor, summary.critical_point
    rows = [
        ("loss J(θ)", summary.loss), ("‖∇J‖", summary.grad_norm), ("parameters P", summary.n_params),
        ("samples N", summary.n_samples),
        ("critical point", f"{p.kind} ({p.n_positive} +, {p.n_negative} −, {p.n_zero} ≈0 of the values found; "
                           f"{'critical' if p.critical else 'not critical: ‖g‖ > tol'})"),
        ("λ_max", e.lambda_max if e.which != "smallest" else None),
        ("λ_min", e.lambda_min if e.which != "largest" else None),
        ("condition number κ", summary.condition_number),
        ("trace (Hutch++)", f"{summary.trace.value:.6g} ± {1.96 * summary.trace.stderr:.2g} (95%)"),
        ("ε* = gᵀg/gᵀHg", t.eps_star), ("2/λ_max", t.lr_max), ("gᵀHg/gᵀg", t.curvature),
        ("Hessian-vector products", summary.n_products), ("time (s)", summary.time_s),
    ]
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in rows)
    figs = "".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(png).decode()}" alt="{name}">'
        f"<figcaption>{html.escape(CAPTIONS[name])}</figcaption></figure>" for name, png in pngs.items())
    style = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}"
             "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}"
             "th{background:#f3f3f3}figure img{max-width:100%}figcaption{color:#444;font-size:.92em}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><table>{table}</table>{figs}"
            "</body></html>")


def write_figures(out_dir: str | Path, summary: CurvatureSummary, title: str = "ravine curvature") -> list[Path]:
    """Write ``<name>.png`` for every figure and ``report.html``; return the paths."""
    out = Path(out_dir)
    pngs = {name: to_png(fig) for name, fig in all_figures(summary).items()}
    paths = []
    for name, png in pngs.items():
        atomic_write_bytes(out / f"{name}.png", png)
        paths.append(out / f"{name}.png")
    atomic_write_bytes(out / "report.html", render_html(summary, pngs, title).encode())
    return [*paths, out / "report.html"]
