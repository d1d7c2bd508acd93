"""The self-contained HTML report of a ``ravine compare`` run.

One file, no external resources: the figures are embedded as base64 PNG
(``<img src="data:image/png;base64,...">``) and the style sheet is inline, so
the report can be mailed or archived as is.

It reads a :class:`ravine.train.results.CompareResult` (or a ``TrainResult``)
and shows the *resolved* settings of every run (batch size as a number, every
hyperparameter with its default, the schedule), so a report says exactly what ran.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from ravine.train.results import CompareResult, History, RunResult, Verdict
    >>> from ravine.train.spec import RunSpec
    >>> run = RunResult("sgd", RunSpec("toy", "sgd", 0.1, 8, 16, 1), History("accuracy", True),
    ...                 diagnosis=Verdict("good fit", "fine"))
    >>> res = CompareResult("toy", optimizers=["sgd"], runs={"sgd": run})
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
from ravine.report.notes import curvature_note
from ravine.train.results import CompareResult, TrainResult
from ravine.utils import atomic_write_bytes

_CAPTIONS = {
    "train_loss": "Minibatch training loss at every iteration (faint) and its exponential moving average, "
                  "on a log scale; left by iteration, right by gradient evaluations (whole training sets), so a "
                  "full-batch step and a minibatch step are drawn at their cost. Steeper and lower is faster "
                  "optimization; an ✕ marks a run stopped by divergence.",
    "learning_curves": "Per run: training (solid) and validation (dashed) loss and metric after each epoch, on "
                       "one axis, so the generalization gap (validation − training) is visible. The metric "
                       "axis is zoomed to the trained epochs.",
    "validation": "Validation loss and metric after each epoch, every run on one axis (epoch 0 is the "
                  "untrained model; the metric axis is zoomed to the trained epochs).",
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
    # the learning-curve diagnosis (ravine.diagnostics.curves)
    "healthy": "good", "diverging": "bad", "oscillating": "bad", "plateau": "warn", "too slow": "warn",
    "underfitting": "warn", "overfitting": "warn",
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


def _summary_table(results: CompareResult) -> str:
    metric = html.escape(results.metric_name)
    cols = ["optimizer", "lr", "batch size", "status", "final train loss", f"best val {metric} (epoch)",
            f"test {metric}", "epochs to target", "seconds to target", "wall time (s)", "diagnosis"]
    rows = ["<tr>" + "".join(f'<th{" class=name" if i == 0 else ""}>{c}</th>' for i, c in enumerate(cols))
            + "</tr>"]
    for name, run in results.runs.items():
        s, spec = run.summary, run.spec
        best = f"{_fmt(s.best_val_metric)} ({_fmt(s.best_val_epoch)})"
        batch = f"{spec.batch_size} (full)" if spec.full_batch else str(spec.batch_size)
        cells = [_fmt(spec.lr), batch, _fmt(run.history.status), _fmt(s.final_train_loss), best,
                 _fmt(s.test_metric), _fmt(s.epochs_to_target), _fmt(s.time_to_target, 3), _fmt(s.wall_time, 3),
                 _kind(run.diagnosis.kind)]
        rows.append(f'<tr><td class="name">{html.escape(name)}</td>' + "".join(f"<td>{c}</td>" for c in cells)
                    + "</tr>")
    return "<table>" + "\n".join(rows) + "</table>"


def _settings_table(results: CompareResult) -> str:
    """The resolved settings of every run: what actually ran, defaults included."""
    cols = ["optimizer", "lr (from)", "batch size / training rows", "epochs", "hyperparameters", "schedule",
            "closure"]
    rows = ["<tr>" + "".join(f'<th{" class=name" if i == 0 else ""}>{c}</th>' for i, c in enumerate(cols))
            + "</tr>"]
    for name, run in results.runs.items():
        spec = run.spec
        hyper = ", ".join(f"{k}={v}" for k, v in spec.hyper.items()) or "—"
        sched = "; ".join(", ".join(f"{k}={v}" for k, v in t.items()) for t in spec.schedule) or "constant"
        cells = [f"{_fmt(spec.lr)} ({html.escape(spec.lr_source)})", f"{spec.batch_size} / {spec.n_train}",
                 str(spec.epochs), html.escape(hyper), html.escape(sched), html.escape(spec.closure)]
        rows.append(f'<tr><td class="name">{html.escape(name)}</td>' + "".join(f"<td>{c}</td>" for c in cells)
                    + "</tr>")
    return "<table>" + "\n".join(rows) + "</table>"


def _diagnoses(results: CompareResult) -> str:
    items = []
    for name, run in results.runs.items():
        diag = run.diagnosis
        began = diag.extra.get("began_at")
        since = f" since {html.escape(str(diag.extra.get('began_unit', 'epoch')))} {began}" if began is not None else ""
        items.append(f"<dt><b>{html.escape(name)}</b>: {_kind(diag.kind)}{since}</dt>"
                     f"<dd>{html.escape(diag.explanation)}</dd>")
    return '<dl class="diag">' + "\n".join(items) + "</dl>"


def _meta(results: CompareResult) -> str:
    ref = results.reference_error
    items = [("problem", results.problem), ("epochs", results.epochs), ("seed", results.seed),
             ("device", results.device), ("target validation " + results.metric_name, results.target),
             ("reference error", ref if math.isfinite(ref) else "unknown"),
             ("total wall time (s)", results.wall_time)]
    parts = [f"{label}: <b>{_fmt(value)}</b>" for label, value in items]
    text = '<p class="meta">' + " · ".join(parts) + "</p>"
    shared = [run.batched_with for run in results.runs.values() if len(run.batched_with) > 1]
    if shared:
        text += f'<p class="meta">{html.escape(batched_note(shared)[0].upper() + batched_note(shared)[1:])}.</p>'
    if not results.complete:
        text += (f'<p class="kind bad">Partial: interrupted before {html.escape(", ".join(results.missing))} '
                 "finished; <code>ravine compare --resume</code> with the same options and --out trains them.</p>")
    return text


def batched_note(groups: list[list[str]]) -> str:
    """One sentence on runs that trained as one batched computation (``groups``: each run's
    ``RunResult.batched_with``): their times are shared, not each run's own."""
    unique = list(dict.fromkeys(", ".join(g) for g in groups))
    return (f"runs trained together as one batched computation ({'; '.join(unique)}; the same numbers as one at a "
            "time): their wall times and seconds to target are those of the shared computation; --sequential "
            "times each run alone")


def _as_result(results: CompareResult | TrainResult | Mapping[str, Any]) -> CompareResult:
    if isinstance(results, TrainResult):
        return results.as_compare()
    if isinstance(results, CompareResult):
        return results
    return CompareResult.from_json(results)  # a results.json read back


def render_html(results: CompareResult | TrainResult | Mapping[str, Any], pngs: Mapping[str, bytes],
                title: str = "ravine compare") -> str:
    """The report as one HTML string; ``pngs`` maps figure stems to PNG bytes."""
    results = _as_result(results)
    figs = []
    for stem, png in pngs.items():
        data = base64.b64encode(png).decode("ascii")
        caption = html.escape(_CAPTIONS.get(stem, stem))
        figs.append(f'<figure id="{stem}"><img alt="{stem}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{caption}</figcaption></figure>")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{_meta(results)}\n"
            f"<h2>Summary</h2>\n{_summary_table(results)}\n"
            f"<h2>Settings (resolved)</h2>\n{_settings_table(results)}\n"
            "<h2>Diagnosis</h2>\n<p>Read from each run's learning curves (ravine.diagnostics.curves): diverging, "
            "oscillating, plateau, too slow, underfitting, overfitting (the validation loss rose from its minimum by "
            "more than its noise) or healthy, with the epoch or step where it began.</p>\n"
            f"{_diagnoses(results)}\n{_curvature(results)}<h2>Figures</h2>\n" + "\n".join(figs)
            + "\n</body></html>\n")


def _curvature(results: CompareResult | TrainResult) -> str:
    """The ``compare --curvature`` section: λ_max at start and end, and the runs that stepped above 2/λ_max."""
    if not isinstance(results, CompareResult):
        return ""
    lines = curvature_note(results)
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return ("<h2>Curvature</h2>\n<p>λ_max is the largest Hessian eigenvalue of the training loss at the start and at "
            "the end of each run. Plain gradient descent diverges along the top eigenvector when ε &gt; 2/λ_max.</p>"
            f"\n<ul>{items}</ul>\n")


def write_report(out_dir: str | Path, results: CompareResult | TrainResult | Mapping[str, Any],
                 title: str = "ravine compare", save_pngs: bool = True) -> Path:
    """Draw the figures and write ``out_dir/report.html`` (and ``out_dir/figures/*.png``).

    Args:
        out_dir: the output folder (created).
        results: a :class:`CompareResult`, a :class:`TrainResult`, or a results.json dict.
        title: the page title.
        save_pngs: also write each figure as a PNG file next to the report.

    Returns:
        The path of ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = _as_result(results)
    pngs = {stem: figures.to_png(fig) for stem, fig in figures.all_figures(results).items()}
    if save_pngs:
        for stem, png in pngs.items():
            atomic_write_bytes(out / "figures" / f"{stem}.png", png)
    path = out / "report.html"
    atomic_write_bytes(path, render_html(results, pngs, title).encode("utf-8"))
    return path
