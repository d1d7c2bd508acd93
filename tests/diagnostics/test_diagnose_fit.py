"""The course's diagnosis: each of the five verdicts from constructed numbers."""

from __future__ import annotations

import math

from ravine.diagnostics import KINDS, diagnose_fit, plateau_improvement, tolerance


def _history(losses: list[float], status: str = "ok") -> dict:
    return {"status": status, "message": "diverged at epoch 2, iteration 7: loss = nan",
            "iteration": {"loss": losses}}


FALLING = [2.0 * math.exp(-0.05 * i) for i in range(200)]
FLAT = [1.2] * 200


def test_good_fit() -> None:
    assert diagnose_fit(0.025, 0.03, 0.02, _history(FALLING)).kind == "good fit"


def test_underfitting_when_train_error_is_far_above_reference_and_loss_still_falls() -> None:
    d = diagnose_fit(0.30, 0.31, 0.02, _history(FALLING))
    assert d.kind == "underfitting (high bias)"
    assert math.isclose(d.numbers["avoidable_bias"], 0.28)


def test_overfitting_when_validation_error_is_far_above_train_error() -> None:
    d = diagnose_fit(0.0, 0.15, 0.02, _history(FALLING))
    assert d.kind == "overfitting (high variance)"
    assert math.isclose(d.numbers["variance"], 0.15)


def test_stalled_when_the_fit_is_poor_and_the_loss_is_flat() -> None:
    d = diagnose_fit(0.5, 0.5, 0.02, _history(FLAT))
    assert d.kind == "stalled on a plateau"
    assert d.numbers["plateau_improvement"] == 0.0


def test_diverged_from_status_or_non_finite_errors() -> None:
    assert diagnose_fit(0.1, 0.1, 0.02, _history(FALLING, status="diverged")).kind == "diverged"
    assert diagnose_fit(math.nan, 0.1, 0.02, None).kind == "diverged"
    assert "iteration 7" in diagnose_fit(0.1, 0.1, 0.02, _history(FALLING, status="diverged")).explanation


def test_every_kind_is_reachable_and_listed() -> None:
    seen = {diagnose_fit(0.025, 0.03, 0.02, _history(FALLING)).kind,
            diagnose_fit(0.30, 0.31, 0.02, _history(FALLING)).kind,
            diagnose_fit(0.0, 0.15, 0.02, _history(FALLING)).kind,
            diagnose_fit(0.5, 0.5, 0.02, _history(FLAT)).kind,
            diagnose_fit(math.inf, 0.1, 0.02, None).kind}
    assert seen == set(KINDS)


def test_tolerance_and_plateau_formulas() -> None:
    assert tolerance(0.02) == 0.02  # max(0.02, 0.25 · 0.02)
    assert tolerance(10.0) == 2.5  # a quarter of an RMSE-scale reference
    losses = [10.0] * 70 + [float(10 - i * 0.1) for i in range(30)]
    # Final 30 losses: first fifth (6 values) mean vs last fifth mean, straight from the docstring's formula.
    tail = losses[-30:]
    start, end = sum(tail[:6]) / 6, sum(tail[-6:]) / 6
    assert math.isclose(plateau_improvement(losses), (start - end) / start)
    assert plateau_improvement([1.0] * 5) is None
