"""Figures and the self-contained HTML report of ``ravine compare`` and ``ravine train``.

Example:
    >>> from ravine.report import write_report, train_loss  # doctest: +SKIP
    >>> write_report("runs/compare-demo", result, title="digits-mlp")  # doctest: +SKIP
"""

from ravine.report.figures import (
    all_figures,
    effective_step,
    learning_curves,
    learning_rate,
    styles,
    time_to_target,
    to_png,
    train_loss,
    validation,
    zoom,
)
from ravine.report.html import render_html, write_report

__all__ = [
    "all_figures",
    "effective_step",
    "learning_curves",
    "learning_rate",
    "render_html",
    "styles",
    "time_to_target",
    "to_png",
    "train_loss",
    "validation",
    "write_report",
    "zoom",
]
