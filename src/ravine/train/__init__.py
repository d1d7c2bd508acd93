"""Training: :func:`fit`, the run spec, typed results, checkpoints, metric files, data-parallel runs, configs.

Example:
    >>> from ravine.train import fit
    >>> result = fit("digits-mlp", "adam", epochs=2, seed=0)  # doctest: +SKIP
    >>> result.spec.batch_size, result.history.test.metric  # doctest: +SKIP
"""

from ravine.train.checkpoint import load_checkpoint, save_checkpoint
from ravine.train.config import TrainConfig, load_config, train_from_config
from ravine.train.loop import Callback, FitResult, TrainState, empty_history, fit, make_instance
from ravine.train.results import (
    CompareInterrupted,
    CompareResult,
    History,
    RunResult,
    Summary,
    TrainingInterrupted,
    TrainResult,
    Verdict,
)
from ravine.train.spec import RunSpec, default_lr, resolve_spec

__all__ = ["Callback", "CompareInterrupted", "CompareResult", "FitResult", "History", "RunResult", "RunSpec",
           "Summary", "TrainConfig", "TrainResult", "TrainState", "TrainingInterrupted", "Verdict", "default_lr",
           "empty_history", "fit", "load_checkpoint", "load_config", "make_instance", "resolve_spec",
           "save_checkpoint", "train_from_config"]
