"""``compare(..., curvature=True)`` / ``ravine compare --curvature``: λ_max at the start and end of each run."""

from __future__ import annotations

import math

import torch

from ravine import problems
from ravine.compare import compare
from ravine.report.notes import curvature_note


def _oracle_lambda_max(seed: int = 0) -> float:
    """λ_max of (2/N) AᵀA, A = [X 1], on the sample the tracker uses (the loss is an mse of a linear model)."""
    inst = problems.get("noisy-quadratic").build(seed=seed)
    X = inst.data.X_train.double()
    idx = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))[:512]
    A = torch.cat([X[idx], torch.ones(len(idx), 1, dtype=torch.float64)], dim=1)
    return float(torch.linalg.eigvalsh(2 / len(idx) * A.T @ A)[-1])


def test_lambda_max_at_start_and_end_and_the_stability_note(tmp_path):
    lam = _oracle_lambda_max()
    safe, unsafe = 0.5 * 2 / lam, 1.5 * 2 / lam
    res = compare("noisy-quadratic", ["sgd", "momentum"], epochs=1, lr={"sgd": safe, "momentum": unsafe},
                  batch_size="full", seed=0, device="cpu", curvature=True, out_dir=tmp_path)
    for name in ("sgd", "momentum"):
        c = res.runs[name].extras["curvature"]
        assert math.isclose(c["lambda_max_start"][0], lam, rel_tol=2e-3)  # float32 model, tol 1e-3
        assert math.isclose(c["two_over_lambda_start"][0], 2 / c["lambda_max_start"][0])
    sgd = res.runs["sgd"].extras["curvature"]
    # a linear model: H does not depend on θ, so λ_max is the same at the end
    assert math.isclose(sgd["lambda_max_end"][0], lam, rel_tol=2e-3)
    assert sgd["above_limit_start"] == [False]
    assert res.runs["momentum"].extras["curvature"]["above_limit_start"] == [True]
    note = curvature_note(res)
    assert len(note) == 2 and "above 2/λ_max" in note[1] and "above" not in note[0]
    assert "curvature" in res.to_json()["runs"]["sgd"]["extras"]
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Curvature</h2>" in page and "momentum: λ_max" in page and "above 2/λ_max" in page
