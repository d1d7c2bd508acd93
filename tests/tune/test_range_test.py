"""LR range test: the lr schedule, the smoothing, the stop and the suggestion, against formulas written out here."""

from __future__ import annotations

import math

import pytest

from ravine import tune


def test_debiased_ema_matches_the_closed_form() -> None:
    xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    beta = 0.7
    for t in range(len(xs)):
        # m_t = (1 − β) Σ_s β^{t−s} x_s, debiased by 1 − β^{t+1}
        m = (1 - beta) * sum(beta ** (t - s) * xs[s] for s in range(t + 1))
        assert tune.debiased_ema(xs, beta)[t] == pytest.approx(m / (1 - beta ** (t + 1)), rel=1e-12)


def test_suggestion_is_the_minimum_divided_by_ten() -> None:
    lrs = [10 ** (k / 4) for k in range(-16, 5)]
    curve = [(math.log10(lr) + 1) ** 2 + 1 for lr in lrs]  # minimum at lr = 0.1
    suggestion, at_min = tune.suggest(lrs, curve)
    assert at_min == pytest.approx(0.1) and suggestion == pytest.approx(0.01)
    assert math.isnan(tune.suggest(lrs, [math.nan] * len(lrs))[0])


def test_lr_grows_exponentially_and_a_blow_up_stops_the_seeds() -> None:
    res = tune.lr_range_test("breast-cancer-logreg", "sgd", lr_min=1e-3, lr_max=1e4, iterations=60, seeds=2)
    ratios = [b / a for a, b in zip(res.lr, res.lr[1:])]
    assert res.lr[0] == pytest.approx(1e-3) and res.lr[-1] == pytest.approx(1e4)
    assert max(ratios) == pytest.approx(min(ratios)) == pytest.approx(1e7 ** (1 / 59))
    assert all(s is not None for s in res.stopped_at)  # lr 1e4 on a logistic loss blows up
    for stop, smooth in zip(res.stopped_at, res.smoothed, strict=True):
        assert len(smooth) == stop + 1
        assert smooth[-1] > 4 * min(smooth[:-1]) or not math.isfinite(smooth[-1])
    assert len(res.median) == min(len(s) for s in res.smoothed)
    assert res.suggestion == pytest.approx(res.lr_at_min / 10)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_range_test_suggestion_is_within_3x_of_the_protocol_best_on_digits(optimizer: str) -> None:
    res = tune.lr_range_test("digits-mlp", optimizer, seeds=3)
    ctx = tune.prepare("digits-mlp", optimizer)
    trials = tune.log_then_fine(ctx, coarse_epochs=3)
    best = tune.best_trial(ctx, [t for t in trials if t.stage == "fine"]).config["lr"]
    assert best / 3 <= res.suggestion <= best * 3, (res.suggestion, best)
