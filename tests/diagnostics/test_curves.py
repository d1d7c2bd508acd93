"""The learning-curve diagnosis: constructed curves of each kind, then the course's cases on digits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ravine.diagnostics.curves import KINDS, diagnose_curves, diagnose_history, fluctuation, noise_sigma, summary

EPOCHS = list(range(21))
FALLING = [2.3 * math.exp(-0.4 * e) for e in EPOCHS]


def kinds(findings) -> list[str]:
    return [f.kind for f in findings]


def test_healthy_run_is_healthy() -> None:
    acc = [0.1] + [0.99] * 20
    f = diagnose_curves(EPOCHS, FALLING, [v * 1.1 for v in FALLING], acc, acc, higher_is_better=True,
                        reference_error=0.02)
    assert kinds(f) == ["healthy"]
    assert f[0].suggestion


def test_nan_loss_is_diverging_at_its_step() -> None:
    it = [2.3, 2.0, 1.8, float("nan")]
    f = diagnose_curves([0, 1], [2.3, 1.5], [2.3, 1.5], iteration_loss=it)
    assert f[0].kind == "diverging" and f[0].began_at == 4 and f[0].unit == "step"


def test_spike_beyond_five_times_the_first_loss_is_diverging() -> None:
    it = [2.0, 1.5, 4.0, 11.0, 2.2, 2.3]  # 11 > 5 × 2.0 at step 4; 4.0 is below the factor
    f = diagnose_curves([0, 1], [2.0, 2.3], [2.0, 2.3], iteration_loss=it)
    assert f[0].kind == "diverging" and f[0].began_at == 4


def test_trainer_status_diverged_is_diverging() -> None:
    f = diagnose_curves([0], [2.0], [2.0], status="diverged", message="diverged at epoch 1, iteration 3")
    assert kinds(f) == ["diverging"]
    assert "iteration 3" in f[0].message


def test_sawtooth_loss_is_oscillating_from_its_first_rise() -> None:
    loss = [2.3, 1.0, 0.8, 1.2, 0.7, 1.1, 0.6, 1.0, 0.65]
    f = diagnose_curves(list(range(9)), loss, loss)
    assert "oscillating" in kinds(f)
    osc = next(x for x in f if x.kind == "oscillating")
    assert osc.began_at == 3
    # F written out: from epoch 1, ups 0.4 + 0.4 + 0.4 = 1.2, downs 0.2 + 0.5 + 0.5 + 0.35 = 1.55
    assert osc.evidence["fluctuation"] == pytest.approx(1.2 / (1.2 + 1.55))


def test_steady_shallow_descent_with_high_error_is_too_slow() -> None:
    loss = [2.3 - 0.05 * e for e in EPOCHS]  # 2.3 -> 1.3, still falling
    acc = [0.1 + 0.02 * e for e in EPOCHS]   # 0.5 after 20 epochs
    f = diagnose_curves(EPOCHS, loss, loss, acc, acc, higher_is_better=True, reference_error=0.02)
    assert kinds(f) == ["too slow"]
    assert "Raise the learning rate" in f[0].suggestion


def test_flat_loss_with_high_error_is_a_plateau_from_the_epoch_it_flattened() -> None:
    loss = [2.3, 1.5, 1.0, 0.8] + [0.8] * 17
    acc = [0.1, 0.5, 0.6, 0.7] + [0.7] * 17
    f = diagnose_curves(EPOCHS, loss, loss, acc, acc, higher_is_better=True, reference_error=0.02)
    assert kinds(f) == ["plateau", "underfitting"]
    assert f[0].began_at == 3


def test_unknown_reference_gives_no_underfitting_verdict() -> None:
    loss = [1.0, 0.5, 0.3] + [0.3] * 18
    rmse = [math.sqrt(v) for v in loss]
    f = diagnose_curves(EPOCHS, loss, loss, rmse, rmse, higher_is_better=False, reference_error=None)
    assert "underfitting" not in kinds(f) and "plateau" not in kinds(f)


def test_validation_loss_rising_from_its_minimum_is_overfitting_with_that_epoch() -> None:
    val = [2.3, 1.0, 0.5, 0.4, 0.35, 0.3] + [0.3 + 0.02 * k for k in range(1, 16)]
    acc = [0.1] + [0.99] * 20
    f = diagnose_curves(EPOCHS, FALLING, val, acc, acc, higher_is_better=True, reference_error=0.02)
    assert kinds(f) == ["overfitting"]
    assert f[0].began_at == 5
    assert "epoch 5" in f[0].suggestion


def test_noisy_but_flat_validation_loss_is_not_overfitting() -> None:
    rng = np.random.default_rng(0)
    val = [2.3, 1.0, 0.5] + list(0.3 + 0.01 * rng.standard_normal(18))
    acc = [0.1] + [0.99] * 20
    f = diagnose_curves(EPOCHS, FALLING, val, acc, acc, higher_is_better=True, reference_error=0.02)
    assert "overfitting" not in kinds(f)


def test_overfitting_needs_patience_epochs_above_the_noise() -> None:
    val = [2.3, 1.0, 0.5, 0.4, 0.35] + [0.3] * 14 + [0.5, 0.5]  # only 2 epochs above
    acc = [0.1] + [0.99] * 20
    f = diagnose_curves(EPOCHS, FALLING, val, acc, acc, higher_is_better=True, reference_error=0.02)
    assert "overfitting" not in kinds(f)
    f = diagnose_curves(EPOCHS, FALLING, val, acc, acc, higher_is_better=True, reference_error=0.02, patience=2)
    assert "overfitting" in kinds(f)


def test_noise_sigma_of_white_noise_is_its_std() -> None:
    rng = np.random.default_rng(1)
    x = list(5.0 + 0.1 * np.arange(4000) / 4000 + 0.3 * rng.standard_normal(4000))
    assert noise_sigma(x) == pytest.approx(0.3, rel=0.05)


def test_fluctuation_of_a_monotone_curve_is_zero() -> None:
    assert fluctuation([3.0, 2.0, 1.5, 1.0])[0] == 0.0


def test_findings_are_ordered_by_severity_and_summarized() -> None:
    loss = [2.3, 1.0, 0.8, 1.2, 0.7, 1.1, 0.6, 1.0, 0.65]
    f = diagnose_curves(list(range(9)), loss, loss, iteration_loss=[2.0, 50.0])
    order = [KINDS.index(x.kind) for x in f]
    assert order == sorted(order)
    s = summary(f)
    assert s["kind"].startswith("diverging") and len(s["findings"]) == len(f)


# --- the course's cases on digits ---------------------------------------------------------------

def _fit(optimizer: str, lr: float, epochs: int = 10):
    from ravine.train import fit

    return fit("digits-mlp", optimizer, lr=lr, epochs=epochs, seed=0, tensorboard=False).history


@pytest.mark.parametrize(("optimizer", "default_lr"), [("sgd", 0.1), ("momentum", 0.02), ("adam", 1e-3)])
def test_learning_rate_30x_too_large_is_oscillating_or_diverging(optimizer: str, default_lr: float) -> None:
    found = kinds(diagnose_history(_fit(optimizer, 30 * default_lr), 0.02))
    assert found[0] in ("oscillating", "diverging"), found


@pytest.mark.parametrize(("optimizer", "default_lr"), [("sgd", 0.1), ("momentum", 0.02), ("adam", 1e-3)])
def test_learning_rate_100x_too_small_is_too_slow(optimizer: str, default_lr: float) -> None:
    found = kinds(diagnose_history(_fit(optimizer, default_lr / 100), 0.02))
    assert found == ["too slow"], found


@pytest.mark.slow
def test_default_compare_on_digits_calls_overfitting_only_where_validation_loss_rose() -> None:
    from ravine.compare import compare

    res = compare("digits-mlp", seed=0)
    for name, run in res["runs"].items():
        val = [v for v in run["history"]["epoch"]["val_loss"]]
        i_min = int(np.argmin(val))
        rose = i_min <= len(val) - 4 and all(v > 1.02 * val[i_min] for v in val[-3:])
        flat = not (i_min <= len(val) - 4 and all(v > val[i_min] for v in val[-3:]))
        found = [f["kind"] for f in run["diagnosis"]["findings"]]
        if "overfitting" in found:
            assert not flat, (name, val)
            over = next(f for f in run["diagnosis"]["findings"] if f["kind"] == "overfitting")
            assert over["began_at"] == run["history"]["epoch"]["epoch"][i_min]
        if rose:
            assert "overfitting" in found, (name, val)
