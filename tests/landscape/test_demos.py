"""The course's sparse-sigmoid figure: the exact (w, b) surface and the five optimizers' paths."""

from __future__ import annotations

import pytest
import torch

from ravine import problems
from ravine.errors import ConfigError
from ravine.landscape.demos import two_parameter_paths


def test_sparse_feature_makes_w_crawl_for_all_but_the_adaptive_rules() -> None:
    demo = two_parameter_paths("sparse-sigmoid", epochs=1, resolution=4)
    assert list(demo.paths) == ["sgd", "momentum", "nesterov", "adagrad", "rmsprop"]
    ratio = {}
    for name, path in demo.paths.items():
        (w0, b0), (w1, b1) = path[0], path[-1]
        assert (w0, b0) == (-2.0, 2.0)
        ratio[name] = abs(w1 - w0) / abs(b1 - b0)  # how far w moved for each unit b moved, in one epoch
    # 80 % of the inputs are 0: w's gradient is 5× rarer than b's, and only the adaptive rules rescale it
    assert min(ratio["adagrad"], ratio["rmsprop"]) > 1.5 * max(ratio["sgd"], ratio["momentum"], ratio["nesterov"])


def test_surface_is_the_training_mse_over_w_and_b() -> None:
    demo = two_parameter_paths("sparse-sigmoid", ["sgd"], epochs=1, resolution=3,
                               span=((-1.0, 3.0), (-2.0, 0.0)))
    inst = problems.get("sparse-sigmoid").build(seed=0)
    x, y = inst.data.X_train.reshape(-1), inst.data.y_train.reshape(-1)
    for j, b in enumerate(demo.surface.betas):
        for i, w in enumerate(demo.surface.alphas):
            expected = float(((torch.sigmoid(w * x + b) - y) ** 2).mean())  # ŷ = σ(w x + b), mse
            assert demo.surface.loss[j][i] == pytest.approx(expected, rel=1e-5)


def test_only_two_parameter_models() -> None:
    with pytest.raises(ConfigError, match="two scalar parameters"):
        two_parameter_paths("digits-mlp", ["sgd"], epochs=1)
