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


def _valley(lrs: list[float], centre: float) -> list[float]:
    """A smooth range-test curve with its valley at lr = 10**centre: (log10 lr − centre)² + 1."""
    return [(math.log10(lr) - centre) ** 2 + 1 for lr in lrs]


def test_range_edge_on_constructed_curves() -> None:
    lrs = [10 ** (-5 + 4 * t / 99) for t in range(100)]  # 1e-5 … 1e-1, 100 steps
    assert tune.range_edge(_valley(lrs, 0.0), 100) == "high"  # valley at lr 1, beyond lr_max: still falling
    assert tune.range_edge(_valley(lrs, -7.0), 100) == "low"  # valley at 1e-7, below lr_min: rising from the start
    assert tune.range_edge(_valley(lrs, -3.0), 100) is None  # valley at 1e-3, inside
    # cut short where a seed blew up: the minimum at its last point is the edge of divergence, not of the sweep
    assert tune.range_edge(_valley(lrs, 0.0)[:60], 100) is None
    assert tune.range_edge([math.nan] * 100, 100) is None
    # the edge is the first / last 5% of the steps: 5 of 100
    vee = [lambda i, m=m: abs(i - m) + 1.0 for m in (4, 5, 94, 95)]
    assert [tune.range_edge([f(i) for i in range(100)], 100) for f in vee] == ["low", None, None, "high"]


def test_a_too_narrow_range_is_flagged_high_with_a_warning() -> None:
    with pytest.warns(RuntimeWarning, match="raise lr_max"):
        narrow = tune.lr_range_test("breast-cancer-logreg", "sgd", lr_min=1e-5, lr_max=1e-3, iterations=60, seeds=2)
    assert narrow.at_edge == "high" and narrow.to_json()["at_edge"] == "high"
    assert narrow.stopped_at == [None, None]
    for raw in narrow.loss:  # independent of the smoothing: each seed's loss is lower at the end than at the start
        assert sum(raw[-10:]) < sum(raw[:10])
    # the same problem swept up to divergence: its minimum lies well above the narrow range's lr_max
    wide = tune.lr_range_test("breast-cancer-logreg", "sgd", lr_min=1e-3, lr_max=1e4, iterations=60, seeds=2)
    assert wide.at_edge is None and wide.lr_at_min > 1e-3


def test_a_range_that_starts_too_high_is_flagged_low() -> None:
    with pytest.warns(RuntimeWarning, match="lower lr_min"):
        res = tune.lr_range_test("breast-cancer-logreg", "sgd", lr_min=1e2, lr_max=1e4, iterations=60, seeds=2)
    assert res.at_edge == "low"
    assert all(s is not None and s < 10 for s in res.stopped_at)  # blown up within a few steps


def test_a_range_with_an_inner_minimum_gives_no_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = tune.lr_range_test("breast-cancer-logreg", "sgd", lr_min=1e-3, lr_max=1e4, iterations=60, seeds=2)
    assert res.at_edge is None
