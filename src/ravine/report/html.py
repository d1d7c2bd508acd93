"""The self-contained HTML report of a ``ravine compare`` run.

One file, no external resources: the figures are embedded as base64 PNG
(``<img src="data:image/png;base64,...">``) and the style sheet is inline, so
the report can be mailed or archived as is.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> hist = {"iteration": {"step": [1, 2], "loss": [1.0, 0.5]},
    ...         "epoch": {"epoch": [0, 1], "val_metric": [0.1, 0.6], "lr": [0.1, 0.1]}, "status": "ok"}
    >>> res = {"problem": "toy", "runs": {"sgd": {"history": hist, "summary": {},
    ...        "diagnosis": {"kind": "good fit", "explanation": "fine"}}}}
    >>> path = write_report(Path(tempfile.mkdtemp()), res, title="toy")
    >>> "data:image/png;base64," in path.read_text()
    True
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ravine.report import figures
from ravine.utils import atomic_write_bytes

_CAPTIONS = {
    "train_loss": "Minibatch training loss at every iteration (faint) and its exponential moving average "
                  "(solid), on a log scale. Steeper and lower is faster optimization; an ✕ marks a run "
                  "stopped by divergence.",
    "validation": "Validation loss and metric after each epoch (epoch 0 is the untrained model). The gap "
                  "between these and the training curves is the generalization gap.",
    "learning_rate": "The learning rate ε the schedule set at each epoch (flat lines: constant ε).",
    "effective_step": "Effective learning rate: the median over coordinates of |Δθᵢ| / |gᵢ|, how far one update "
                      "moves per unit of gradient. For SGD it is ε; AdaGrad's is ε / (δ + √rᵢ) and can only fall, "
                      "because its accumulator r of squared gradients only grows; RMSProp and Adam forget old "
                      "gradients, so theirs rises again as the gradients shrink.",
    "time_to_target": "Wall-clock seconds and epochs until the validation metric first reached the target. "
                      "Hatched bars never reached it within the budget (bar height: the whole budget).",
}

_KIND_CLASS = {
    "good fit": "good", "underfitting (high bias)": "warn", "overfitting (high variance)": "warn",
    "stalled on a plateau": "warn", "diverged": "bad",
}

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.45}
h1{margin-bottom:0.2em} .meta{color:#555}
table{border-collapse:collapse;margin:1em 0;font-size:0.92em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right} th{background:#f3f3f3}
td.name,th.name{text-align:left;font-weight:bold}
figure{margin:1.5em 0} figure img{max-width:100%} figcaption{color:#444;font-size:0.92em}
.kind{padding:1px 6px;border-radius:4px;font-weight:bold;white-space:nowrap}
.good{background:#dff3df;color:#185c18} .warn{background:#fff1d6;color:#7a4b00}
.bad{background:#fbdcdc;color:#8a1010}
dl.diag dt{margin-top:0.8em}
"""


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.{digits}g}"
    return html.escape(str(value))


def _kind(kind: str) -> str:
    return f'<span class="kind {_KIND_CLASS.get(kind, "warn")}">{html.escape(kind)}</span>'


def _summary_table(results: Mapping[str, Any]) -> str:
    metric = html.escape(str(results.get("metric_name", "metric")))
    cols = ["optimizer", "lr", "status", "final train loss", f"best val {metric} (epoch)",
            f"test {metric}", "epochs to target", "seconds to target", "wall time (s)", "diagnosis"]
    rows = ["<tr>" + "".join(f'<th{" class=name" if i == 0 else ""}>{c}</th>' for i, c in enumerate(cols))
            + "</tr>"]
    for name, run in results.get("runs", {}).items():
        s = run.get("summary", {})
        best = f'{_fmt(s.get("best_val_metric"))} ({_fmt(s.get("best_val_epoch"))})'
        cells = [_fmt(run.get("hyper", {}).get("lr")), _fmt(s.get("status", run.get("history", {}).get("status"))),
                 _fmt(s.get("final_train_loss")), best, _fmt(s.get("test_metric")),
                 _fmt(s.get("epochs_to_target")), _fmt(s.get("time_to_target"), 3),
                 _fmt(s.get("wall_time"), 3), _kind(run.get("diagnosis", {}).get("kind", "—"))]
        rows.append(f'<tr><td class="name">{html.escape(name)}</td>' + "".join(f"<td>{c}</td>" for c in cells)
                    + "</tr>")
    return "<table>" + "\n".join(rows) + "</table>"


def _diagnoses(results: Mapping[str, Any]) -> str:
    items = []
    for name, run in results.get("runs", {}).items():
        diag = run.get("diagnosis", {})
        items.append(f"<dt><b>{html.escape(name)}</b>: {_kind(diag.get('kind', '—'))}</dt>"
                     f"<dd>{html.escape(str(diag.get('explanation', '')))}</dd>")
    return '<dl class="diag">' + "\n".join(items) + "</dl>"


def _meta(results: Mapping[str, Any]) -> str:
    keys = [("problem", "problem"), ("epochs", "epochs"), ("batch_size", "batch size"), ("seed", "seed"),
            ("device", "device"), ("schedule", "schedule"), ("target", "target validation metric"),
            ("reference_error", "reference error"), ("wall_time", "total wall time (s)")]
    parts = [f"{label}: <b>{_fmt(results.get(key))}</b>" for key, label in keys if key in results]
    return '<p class="meta">' + " · ".join(parts) + "</p>"


def render_html(results: Mapping[str, Any], pngs: Mapping[str, bytes], title: str = "ravine compare") -> str:
    """The report as one HTML string; ``pngs`` maps figure stems to PNG bytes."""
    figs = []
    for stem, png in pngs.items():
        data = base64.b64encode(png).decode("ascii")
        caption = html.escape(_CAPTIONS.get(stem, stem))
        figs.append(f'<figure id="{stem}"><img alt="{stem}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{caption}</figcaption></figure>")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{_meta(results)}\n"
            f"<h2>Summary</h2>\n{_summary_table(results)}\n"
            "<h2>Diagnosis</h2>\n<p>Each run's final training error, validation error and the problem's reference "
            "error, read as in the course: avoidable bias = train − reference, variance = validation − train.</p>\n"
            f"{_diagnoses(results)}\n<h2>Figures</h2>\n" + "\n".join(figs) + "\n</body></html>\n")


def write_report(out_dir: str | Path, results: Mapping[str, Any], title: str = "ravine compare",
                 save_pngs: bool = True) -> Path:
    """Draw the figures and write ``out_dir/report.html`` (and ``out_dir/figures/*.png``).

    Args:
        out_dir: the output folder (created).
        results: a compare result (``runs`` with ``history``, ``summary``, ``diagnosis``).
        title: the page title.
        save_pngs: also write each figure as a PNG file next to the report.

    Returns:
        The path of ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pngs = {stem: figures.to_png(fig) for stem, fig in figures.all_figures(results).items()}
    if save_pngs:
        for stem, png in pngs.items():
            atomic_write_bytes(out / "figures" / f"{stem}.png", png)
    path = out / "report.html"
    atomic_write_bytes(path, render_html(results, pngs, title).encode("utf-8"))
    return path
