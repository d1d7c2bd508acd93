"""Fixtures shared by the curvature tests: one small MLP and its reference Hessian, computed once."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from curv_oracle import classification_data, mlp, reference_hessian


@pytest.fixture(scope="session")
def small_problem() -> dict:
    """A 1.2k-parameter tanh MLP on 48 samples (float64) with its exact Hessian and eigenvalues."""
    model = mlp([8, 32, 24, 5], seed=3)
    x, y = classification_data(48, 8, 5, seed=4)
    loss_fn = nn.functional.cross_entropy
    H = reference_hessian(model, loss_fn, x, y)
    return {"model": model, "x": x, "y": y, "loss_fn": loss_fn, "H": H, "eig": torch.linalg.eigvalsh(H)}
