"""Tuning: the LR range test, grid / random / log-then-fine search, k-fold CV and Optuna, on batched runs.

Example:
    >>> from ravine import tune
    >>> res = tune.lr_range_test("digits-mlp", "sgd", iterations=100, seeds=3)  # doctest: +SKIP
    >>> ctx = tune.prepare("digits-mlp", "adam", folds=3)  # doctest: +SKIP
    >>> trials = tune.log_then_fine(ctx)  # doctest: +SKIP
"""

from ravine.tune.range_test import RangeTestResult, debiased_ema, lr_range_test, range_edge, suggest
from ravine.tune.search import (
    Context,
    Dimension,
    Trial,
    best_trial,
    evaluate,
    grid,
    kfold_indices,
    log_then_fine,
    parse_space,
    prepare,
    random_configs,
    rerun,
    run_config,
    search_instances,
)

__all__ = ["Context", "Dimension", "RangeTestResult", "Trial", "best_trial", "debiased_ema", "evaluate", "grid",
           "kfold_indices", "log_then_fine", "lr_range_test", "parse_space", "prepare", "random_configs", "range_edge",
           "rerun", "run_config", "search_instances", "suggest"]
