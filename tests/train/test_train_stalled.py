"""The trainer stops with a plain message when the solver reports ``state["stalled"]``."""

from __future__ import annotations

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
