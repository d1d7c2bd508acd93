"""The trainer stops with a plain message when the solver reports ``state["stalled"]``, and stops a
full-batch solver that reached the minimum as converged, without a stall warning."""

from __future__ import annotations

import warnings

import pytest

from train_helpers import regression

import ravine.optim
from ravine.train import fit


def test_a_stalled_gauss_newton_stops_training_with_a_message():
    inst = regression()
    opt = ravine.optim.create("gauss-newton", inst.model.parameters(), max_tries=1)
    real_step = opt.step

    def never_decreasing(closure=None):
        loss = real_step(closure)
        opt._set_stalled(True, "forced for the test")  # what a GN step with no decreasing trial sets
        return loss

    opt.step = never_decreasing
    result = fit(inst, opt, epochs=5, closure="residual")
    h = result.history
    assert len(h["epoch"]["train_loss"]) == 2  # epoch 0 and the first epoch, then the stop
    assert "cannot decrease the training loss" in h["message"]


def _lstsq_half_mse(inst) -> float:
    """The least-squares minimum of ½·mean((Xw + b − y)²) on the training split, from NumPy."""
    import numpy as np

    X, y = inst.data.X_train.double().numpy(), inst.data.y_train.double().numpy()
    A = np.hstack([X, np.ones((len(X), 1))])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    return float(((A @ coef - y) ** 2).sum() / (2 * len(y)))


@pytest.mark.parametrize("name, closure", [("gauss-newton", "residual"), ("levenberg-marquardt", "residual"),
                                           ("newton", "graph"), ("lbfgs", "loss")])
def test_a_full_batch_solver_at_the_minimum_stops_as_converged_without_warning(name, closure):
    inst = regression()
    opt = ravine.optim.create(name, inst.model.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "cannot decrease" warning at the minimum fails the test
        result = fit(inst, opt, epochs=40, closure=closure)
    h = result.history
    assert h["status"] == "ok"
    assert h["message"].startswith("converged at epoch"), h["message"]
    assert len(h["epoch"]["train_loss"]) < 41  # stopped before the 40 epochs
    assert h["epoch"]["train_loss"][-1] == pytest.approx(_lstsq_half_mse(inst), rel=1e-4)
