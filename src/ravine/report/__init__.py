"""Figures and the self-contained HTML report of ``ravine compare``.

Example:
    >>> from ravine.report import write_report, train_loss  # doctest: +SKIP
    >>> write_report("runs/compare-demo", results, title="digits-mlp")  # doctest: +SKIP
"""

from ravine.report.figures import (
    all_figures,
    effective_step,
    learning_rate,
    time_to_target,
    to_png,
    train_loss,
    validation,
)
from ravine.report.html import render_html, write_report

__all__ = [
    "all_figures",
    "effective_step",
    "learning_rate",
    "render_html",
    "time_to_target",
    "to_png",
    "train_loss",
    "validation",
    "write_report",
]
