"""The HTML report of ``ravine diagnose``: findings in plain words, then the instruments' figures.

Example:
    >>> html_text = render({"problem": "p", "optimizer": "sgd", "lr": 0.1, "epochs": 1, "findings": []}, {})
    >>> "<h2>Findings</h2>" in html_text
    True
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ravine.diagnostics import figures
from ravine.utils import atomic_write_bytes

_CAPTIONS = {
    "learning_curves": "Training and validation loss after each epoch (epoch 0: the untrained model). "
                       "A validation loss that rises from its minimum while the training loss falls is overfitting.",
    "activation_histograms": "Distribution of each activation layer's outputs on a fixed batch (Glorot & Bengio's "
                             "figure): dashed at initialization, solid after training. Spikes at 0 or 1 "
                             "(sigmoid), ±1 (tanh) mean saturation; a narrowing from layer to layer means the "
                             "signal fades with depth; a ReLU layer with everything at 0 is dead.",
    "gradient_norms": "Left: the gradient norm of each weight matrix over the iterations; gradients that are "
                      "orders of magnitude smaller in the first layers vanish. Right: ‖ΔW‖/‖W‖ per step "
                      "(about 10⁻³ is a common rule of thumb; much larger: the learning rate is too large, much "
                      "smaller: too small).",
    "unit_health": "Fraction of ReLU units dead (never positive on any sample since the previous report) and "
                   "of sigmoid / tanh outputs within 1% of their range's ends.",
    "variance_vs_batch": "Variance of the minibatch gradient against the batch size on log-log axes, measured by "
                         "drawing disjoint minibatches of per-sample gradients (torch.func), and the formula "
                         "tr(Σ)/S·(N−S)/N. A slope of −1 is the course's Var ∝ 1/S. B_simple = tr(Σ)/|G|² is the "
                         "batch size above which larger batches stop paying off.",
    "inits_std_by_depth": "Activation std by depth under each of the course's five initializations (log scale).",
}

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45}
.meta{color:#555} table{border-collapse:collapse;margin:1em 0;font-size:0.92em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left} th{background:#f3f3f3}
figure{margin:1.5em 0} figure img{max-width:100%} figcaption{color:#444;font-size:0.92em}
.kind{padding:1px 6px;border-radius:4px;font-weight:bold;white-space:nowrap}
.good{background:#dff3df;color:#185c18} .warn{background:#fff1d6;color:#7a4b00} .bad{background:#fbdcdc;color:#8a1010}
"""

_BAD = ("diverging", "dead units", "symmetry", "exploding gradients", "vanishing gradients")


def _css(kind: str) -> str:
    if kind in ("healthy", "gradient noise"):
        return "good"
    return "bad" if kind in _BAD else "warn"


def _findings(findings: list[Mapping[str, Any]]) -> str:
    if not findings:
        return "<p>No findings.</p>"
    rows = []
    for f in findings:
        began = "" if f.get("began_at") is None else f"{f.get('unit', 'epoch')} {f['began_at']}"
        rows.append(f"<tr><td><span class='kind {_css(f['kind'])}'>{html.escape(f['kind'])}</span></td>"
                    f"<td>{html.escape(began)}</td><td>{html.escape(f['message'])}</td>"
                    f"<td>{html.escape(f['suggestion'])}</td></tr>")
    return ("<table><tr><th>finding</th><th>since</th><th>what the numbers say</th><th>suggestion</th></tr>"
            + "".join(rows) + "</table>")


def _inits_table(compare: Mapping[str, Mapping[str, Any]] | None) -> str:
    if not compare:
        return ""
    rows = []
    for name, run in compare.items():
        stds = ", ".join(f"{s:.3g}" for s in run["std_start"])
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{stds}</td><td>{run['final_train_loss']:.4g}</td>"
                    f"<td>{run['final_val_metric']:.4g}</td><td>{html.escape(', '.join(run['findings']))}</td></tr>")
    return ("<h2>Initializations compared</h2><table><tr><th>init</th><th>activation std by depth at init</th>"
            "<th>final train loss</th><th>final val metric</th><th>findings</th></tr>" + "".join(rows) + "</table>")


def figures_of(result: Mapping[str, Any]) -> dict[str, Any]:
    """The report's figures by name (Figure objects)."""
    figs = {"learning_curves": figures.learning_curves(result["history"])}
    ins = result.get("instruments")
    if ins:
        if ins.get("probe_start") or ins.get("probe_end"):  # a linear model has no activation layer to draw
            figs["activation_histograms"] = figures.activation_histograms(ins)
        if ins["steps"]:
            figs["gradient_norms"] = figures.gradient_norms(ins)
            figs["unit_health"] = figures.unit_health(ins)
    noise = result.get("noise") or {}
    if any(noise.values()):
        figs["variance_vs_batch"] = figures.variance_vs_batch(noise)
    if result.get("compare_inits"):
        figs["inits_std_by_depth"] = figures.inits_std_by_depth(result["compare_inits"])
    return figs


def render(result: Mapping[str, Any], pngs: Mapping[str, bytes]) -> str:
    """The self-contained HTML page (figures embedded as base64 PNG)."""
    title = f"ravine diagnose · {result['problem']}"
    meta = (f"optimizer {result['optimizer']}, lr {result['lr']:.4g}, {result['epochs']} epochs, batch size "
            f"{result.get('batch_size') or 'full'}, "
            + "".join(f"{key} {result[key]}, " for key in ("activation", "init") if result.get(key) is not None)
            + f"seed {result.get('seed')}, instruments every {result.get('every')} iterations")
    figs = []
    for name, png in pngs.items():
        data = base64.b64encode(png).decode("ascii")
        figs.append(f"<figure><img alt='{name}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{html.escape(_CAPTIONS.get(name, ''))}</figcaption></figure>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='meta'>{html.escape(meta)}</p><h2>Findings</h2>{_findings(result['findings'])}"
            f"{_inits_table(result.get('compare_inits'))}<h2>Figures</h2>" + "\n".join(figs) + "</body></html>\n")


def write_report(out_dir: str | Path, result: Mapping[str, Any]) -> Path:
    """Write ``report.html`` into ``out_dir``; returns its path."""
    from ravine.report.figures import to_png

    pngs = {name: to_png(fig) for name, fig in figures_of(result).items()}
    path = Path(out_dir) / "report.html"
    atomic_write_bytes(path, render(result, pngs).encode("utf-8"))
    return path
