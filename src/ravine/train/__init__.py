"""Training: :func:`fit`, checkpoints, metric files, data-parallel runs and config files.

Example:
    >>> from ravine.train import fit
    >>> result = fit("digits-mlp", "adam", epochs=2, seed=0)  # doctest: +SKIP
    >>> result.history["test"]  # doctest: +SKIP
"""

from ravine.train.checkpoint import load_checkpoint, save_checkpoint
from ravine.train.config import TrainConfig, load_config, train_from_config
from ravine.train.loop import Callback, FitResult, TrainState, empty_history, fit, make_instance

__all__ = ["Callback", "FitResult", "TrainConfig", "TrainState", "empty_history", "fit", "load_checkpoint",
           "load_config", "make_instance", "save_checkpoint", "train_from_config"]
