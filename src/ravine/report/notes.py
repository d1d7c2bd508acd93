"""Plain-words notes drawn from typed results, shared by the console and the HTML report."""

from __future__ import annotations

import math

from ravine.train.results import CompareResult


def curvature_note(result: CompareResult) -> list[str]:
    """One line per run measured with ``compare(..., curvature=True)``: λ_max at start and end, lr above 2/λ_max.

    Gradient descent on a quadratic diverges when ε > 2/λ_max (the course's Taylor picture), so a run whose
    learning rate exceeded that limit was unstable along the top eigenvector at that point.

    Example:
        >>> from ravine.compare import compare
        >>> res = compare("noisy-quadratic", ["sgd"], epochs=1, curvature=True)  # doctest: +SKIP
        >>> curvature_note(res)  # doctest: +SKIP
        ['sgd: λ_max 2.03 → 2.03, largest lr 0.1']
    """
    lines = []
    for name, run in result.runs.items():
        c = run.extras.get("curvature")
        if not c:
            continue
        start, end, lr = c["lambda_max_start"][0], c["lambda_max_end"][0], c["lr_max"][0]
        text = f"{name}: λ_max {_num(start)} → {_num(end)}, largest lr {_num(lr)}"
        over = [w for w in ("start", "end") if c[f"above_limit_{w}"][0]]
        if over:
            text += " — above 2/λ_max at the " + " and the ".join(over) + " (unstable for plain gradient descent)"
        lines.append(text)
    return lines


def _num(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.4g}"
